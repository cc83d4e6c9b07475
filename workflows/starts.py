"""How a checkout saga is started: its input from the database's rows, its id, its summary.

The API starts and restarts sagas, and so does the reconciliation's worker side: both build
the input here, so a restarted saga charges under the same settings whoever restarts it.
"""

from __future__ import annotations

from temporalio.common import WorkflowIDReusePolicy

from infra.settings import Settings
from infra.tables import Artwork, Bid
from workflows.types import PaymentSagaInput

# A new run for a bid only replaces a run that failed or was terminated: a checkout that
# sold or reopened bidding is decided for good.
RESTART_FAILED_ONLY = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY


def saga_input(bid: Bid, artwork: Artwork, settings: Settings) -> PaymentSagaInput:
    assert bid.id is not None and artwork.id is not None
    return PaymentSagaInput(
        bid_id=bid.id,
        artwork_id=artwork.id,
        buyer_id=bid.bidder_id,
        hammer_price=bid.amount,
        currency=artwork.currency,
        fee_percent=settings.stripe_fee_percent,
        fee_fixed=settings.stripe_fee_fixed,
        payment_timeout_seconds=settings.payment_timeout_seconds,
        processing_alert_seconds=settings.payment_processing_alert_seconds,
        seller_id=artwork.seller_id,
        max_extension_minutes=settings.max_payment_extension_minutes,
    )


def saga_summary(saga: PaymentSagaInput) -> str:
    return (
        f"Checkout of bid {saga.bid_id} on artwork {saga.artwork_id}: "
        f"{saga.hammer_price} {saga.currency.upper()}"
    )
