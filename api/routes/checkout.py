"""The checkout page's API: what the winner sees, a SetupIntent to collect a card with
Stripe.js, and that card paying the saga's PaymentIntent.

The page only starts a payment; the saga still decides on Stripe's webhook and its own look
at the intent, and the page follows what the saga wrote.
"""

from __future__ import annotations

import logging

import stripe
from fastapi import APIRouter, HTTPException, status
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.auth import Caller
from api.checkout.schemas import (
    CheckoutState,
    CheckoutView,
    PayAnswer,
    PayRequest,
    SetupIntentAnswer,
)
from api.deps import BidId, CallerDep, ServicesDep, SessionDep
from api.errors import conflict, error_responses, forbidden, not_found
from api.services import Services
from domain.checkout import BidStatus, PaymentStatus
from infra.checkout_stripe import CardDeclined, PaymentRefused, open_setup_intent, pay_with_method
from infra.tables import Artwork, Bid, Payment
from workflows.types import AwaitedStage, CheckoutPhase

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/payments", tags=["checkout page"])

NOT_WAITING = "this checkout is not waiting for a payment"
_WINNER_ONLY = {403: "Only the winning bidder sees and pays this checkout.", 404: "No such bid."}


@router.get(
    "/{bid_id}/checkout", responses=error_responses(401, 403, 404, 503, meaning=_WINNER_ONLY)
)
async def checkout_view(bid_id: BidId, caller: CallerDep, session: SessionDep) -> CheckoutView:
    """The checkout as the page shows it, from what the saga recorded."""
    bid, artwork = await _winners_bid(session, bid_id, caller)
    payment = (await session.exec(select(Payment).where(Payment.bid_id == bid_id))).first()
    return CheckoutView(
        bid_id=bid_id,
        artwork_id=artwork.id or 0,
        title=artwork.title,
        hammer_price=bid.amount,
        fee_amount=payment.fee_amount if payment else None,
        amount=payment.amount if payment else None,
        currency=artwork.currency,
        state=_state(bid, payment),
        failure_reason=payment.failure_reason if payment else None,
        declines=int(payment.payment_metadata.get("declines", 0)) if payment else 0,
        expires_at=payment.expires_at if payment else None,
        artwork_status=artwork.status,
    )


@router.post(
    "/{bid_id}/setup-intent",
    responses=error_responses(401, 403, 404, 409, 503, meaning={**_WINNER_ONLY, 409: NOT_WAITING}),
)
async def setup_intent(
    bid_id: BidId, caller: CallerDep, session: SessionDep, services: ServicesDep
) -> SetupIntentAnswer:
    """A SetupIntent for the winner's card: Stripe.js confirms it in the page
    (`confirmCardSetup`) and gets the PaymentMethod the page then pays with."""
    await _awaiting_checkout(session, services, bid_id, caller)
    try:
        secret = await open_setup_intent(services.stripe, bid_id=bid_id, buyer_id=caller.id)
    except stripe.StripeError as failed:
        raise _stripe_unavailable(failed) from failed
    return SetupIntentAnswer(client_secret=secret)


@router.post(
    "/{bid_id}/pay",
    responses=error_responses(
        400,
        401,
        402,
        403,
        404,
        409,
        503,
        meaning={
            **_WINNER_ONLY,
            402: "The card was declined; `detail` is the reason. Another card may be tried.",
            409: "The checkout is not waiting for a payment, or Stripe refused this payment "
            "method for it; `detail` says why.",
        },
    ),
)
async def pay(
    bid_id: BidId, body: PayRequest, caller: CallerDep, session: SessionDep, services: ServicesDep
) -> PayAnswer:
    """Sets the PaymentMethod on the saga's PaymentIntent and confirms it, once per method.

    `requires_action` comes with the intent's client secret: the page finishes 3-D Secure
    with `stripe.confirmCardPayment`. The sale itself is the saga's, on Stripe's webhook.
    """
    intent_id = await _awaiting_checkout(session, services, bid_id, caller)
    prefix = services.settings.idempotency_prefix
    try:
        attempt = await pay_with_method(
            services.stripe,
            intent_id,
            body.payment_method,
            key_prefix=f"{prefix}-" if prefix else "",
        )
    except CardDeclined as declined:
        raise HTTPException(status.HTTP_402_PAYMENT_REQUIRED, detail=declined.reason) from None
    except PaymentRefused as refused:
        raise conflict(f"the payment was refused: {refused.reason}") from None
    except stripe.StripeError as failed:
        raise _stripe_unavailable(failed) from failed
    return PayAnswer(status=attempt.status, client_secret=attempt.client_secret)


async def _winners_bid(session: AsyncSession, bid_id: int, caller: Caller) -> tuple[Bid, Artwork]:
    bid = await session.get(Bid, bid_id)
    if bid is None:
        raise not_found("bid")
    if bid.bidder_id != caller.id:
        raise forbidden("not your checkout: only the winning bidder can pay for this bid")
    artwork = await session.get(Artwork, bid.artwork_id)
    assert artwork is not None
    return bid, artwork


async def _awaiting_checkout(
    session: AsyncSession, services: Services, bid_id: int, caller: Caller
) -> str:
    """The saga's PaymentIntent id, when its checkout waits for the buyer; else a 409."""
    bid, artwork = await _winners_bid(session, bid_id, caller)
    if bid.status != BidStatus.WON:
        raise conflict(NOT_WAITING)
    saga = services.sagas.input_for(bid, artwork)
    await session.commit()  # release the snapshot before waiting on the saga
    try:
        checkout = await services.sagas.await_stage(saga, AwaitedStage.PAYMENT_INTENT)
    except WorkflowAlreadyStartedError:
        raise conflict(NOT_WAITING) from None
    if checkout.phase is not CheckoutPhase.AWAITING_PAYMENT or not checkout.payment_intent_id:
        raise conflict(NOT_WAITING)
    return checkout.payment_intent_id


def _state(bid: Bid, payment: Payment | None) -> CheckoutState:
    if payment is None:
        if bid.status == BidStatus.ACTIVE:
            return CheckoutState.NOT_WON
        return CheckoutState.OPENING if bid.status == BidStatus.WON else CheckoutState.CANCELED
    return {
        PaymentStatus.SUCCEEDED: CheckoutState.PAID,
        PaymentStatus.EXPIRED: CheckoutState.EXPIRED,
        PaymentStatus.CANCELED: CheckoutState.CANCELED,
        PaymentStatus.FAILED: CheckoutState.DECLINED,
    }.get(PaymentStatus(payment.status), CheckoutState.AWAITING_PAYMENT)


def _stripe_unavailable(error: stripe.StripeError) -> HTTPException:
    log.warning("Stripe did not answer the checkout page's call: %s", error)
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail="the payment service is temporarily unavailable; retry shortly",
        headers={"Retry-After": "5"},
    )
