"""Inputs and results of the activities: one dataclass each, so fields can grow safely."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.checkout import PaymentStatus

# Error types the activities raise for failures no retry can fix; the workflow's retry
# policies name them so Temporal stops at once instead of retrying for ever.
STRIPE_REQUEST_REFUSED = "StripeRequestRefused"
CHECKOUT_CONFLICT = "CheckoutConflict"
PERMANENT_ERRORS = (STRIPE_REQUEST_REFUSED, CHECKOUT_CONFLICT)


@dataclass(frozen=True)
class ReserveArtwork:
    artwork_id: int
    bid_id: int


@dataclass(frozen=True)
class Reservation:
    reserved: bool
    reason: str | None = None


@dataclass(frozen=True)
class OpenPaymentIntent:
    workflow_id: str
    bid_id: int
    artwork_id: int
    buyer_id: int
    amount: Decimal
    amount_minor: int
    fee_amount: Decimal
    currency: str
    expires_at: datetime

    @property
    def idempotency_key(self) -> str:
        return f"{self.workflow_id}-payment-intent"


@dataclass(frozen=True)
class OpenedPaymentIntent:
    payment_id: int
    payment_intent_id: str
    client_secret: str
    stripe_status: str
    # Set by the first opening; a restarted saga keeps it. Optional so that histories
    # recorded before the field existed still replay.
    expires_at: datetime | None = None


@dataclass(frozen=True)
class PaymentIntentRef:
    payment_intent_id: str


@dataclass(frozen=True)
class IntentSnapshot:
    payment_intent_id: str
    stripe_status: str
    charge_id: str | None = None


@dataclass(frozen=True)
class RecordDecline:
    bid_id: int
    failure_reason: str
    declines: int
    event_id: str


@dataclass(frozen=True)
class SettleCheckout:
    """Closes a checkout: the sale (with its charge) or the artwork back on sale."""

    bid_id: int
    artwork_id: int
    payment_intent_id: str
    charge_id: str | None = None
    unpaid_status: PaymentStatus = PaymentStatus.EXPIRED  # or CANCELED, by an operator
    reason: str | None = None
