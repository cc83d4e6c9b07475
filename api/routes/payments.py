"""Checkout for the winning bidder, and the payments a buyer can look at. No refunds."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.auth import Caller
from api.deps import CallerDep, PaymentId, ReadSessionDep, ServicesDep, SessionDep
from api.errors import conflict, error_responses, forbidden, not_found
from api.schemas import CheckoutIntent, CreateIntentRequest, PaymentPublic
from domain.checkout import BidStatus
from infra.tables import Artwork, Bid, Payment
from workflows.types import AwaitedStage, CheckoutPhase

router = APIRouter(prefix="/api/payments", tags=["payments"])


@router.post(
    "/create-intent",
    responses=error_responses(
        400,
        401,
        403,
        404,
        409,
        503,
        meaning={
            403: "Only the winning bidder can pay for a bid.",
            409: "The bid has not won, its checkout was refused, failed or ended unpaid.",
        },
    ),
)
async def create_intent(
    body: CreateIntentRequest, caller: CallerDep, session: ReadSessionDep, services: ServicesDep
) -> CheckoutIntent:
    """The winning bidder's PaymentIntent: the same answer however often it is asked."""
    bid = await session.get(Bid, body.bid_id)
    if bid is None:
        raise not_found("bid")
    if bid.bidder_id != caller.id:
        raise forbidden("only the winning bidder can pay for this bid")
    if bid.status == BidStatus.ACTIVE:
        raise conflict("this bid has not won: the auction is still open")
    artwork = await session.get(Artwork, bid.artwork_id)
    assert artwork is not None
    await session.commit()  # the connection goes back to the pool while the saga works

    if bid.status == BidStatus.WON:
        try:
            checkout = await services.sagas.await_stage(
                services.sagas.input_for(bid, artwork), AwaitedStage.PAYMENT_INTENT
            )
        except WorkflowAlreadyStartedError:
            pass  # it finished meanwhile: the database has the outcome
        else:
            if checkout.phase is CheckoutPhase.REJECTED:
                raise conflict(f"checkout refused: {checkout.rejection_reason}")
            if checkout.payment_id is not None and not checkout.phase.is_final:
                # Only a checkout waiting for the buyer can take a payment: settling at the
                # deadline, or being called off, the secret is withheld.
                awaiting = checkout.phase is CheckoutPhase.AWAITING_PAYMENT
                secret = checkout.client_secret if awaiting else None
                return await _intent_view(session, checkout.payment_id, secret)
    payment = await _payment_of_bid(session, body.bid_id)
    assert payment.id is not None
    # A decided checkout has nothing left to pay, so its client secret is withheld.
    return await _intent_view(session, payment.id, client_secret=None)


@router.get("/my-payments", responses=error_responses(401, 503))
async def my_payments(caller: CallerDep, session: SessionDep) -> list[PaymentPublic]:
    query = (
        select(Payment, Bid)
        .join(Bid, col(Bid.id) == Payment.bid_id)
        .where(Bid.bidder_id == caller.id)
        .order_by(col(Payment.created_at).desc(), col(Payment.id).desc())
    )
    return [_payment_view(payment, bid) for payment, bid in (await session.exec(query)).all()]


@router.get(
    "/{payment_id}",
    responses=error_responses(
        401, 404, 503, meaning={404: "No such payment among those the caller may see."}
    ),
)
async def get_payment(
    payment_id: PaymentId, caller: CallerDep, session: SessionDep
) -> PaymentPublic:
    found = await _visible_payment(session, payment_id, caller)
    if found is None:
        raise not_found("payment")  # another buyer's payment is not found, not forbidden
    return _payment_view(*found)


async def _visible_payment(
    session: AsyncSession, payment_id: int, caller: Caller
) -> tuple[Payment, Bid] | None:
    query = (
        select(Payment, Bid)
        .join(Bid, col(Bid.id) == Payment.bid_id)
        .where(Payment.id == payment_id)
    )
    if not caller.is_operator:
        query = query.where(Bid.bidder_id == caller.id)
    row = (await session.exec(query)).first()
    return (row[0], row[1]) if row else None


async def _payment_of_bid(session: AsyncSession, bid_id: int) -> Payment:
    payment = (await session.exec(select(Payment).where(Payment.bid_id == bid_id))).first()
    if payment is None:
        raise conflict("this bid's checkout ended before a payment was opened")
    return payment


async def _intent_view(
    session: AsyncSession, payment_id: int, client_secret: str | None
) -> CheckoutIntent:
    payment = await session.get(Payment, payment_id, populate_existing=True)
    assert payment is not None and payment.id is not None
    if payment.stripe_payment_intent_id is None:
        raise conflict("this bid's PaymentIntent is still being opened; retry shortly")
    return CheckoutIntent(
        payment_id=payment.id,
        payment_intent_id=payment.stripe_payment_intent_id,
        client_secret=client_secret,
        amount=payment.amount,
        fee_amount=payment.fee_amount,
        currency=payment.currency,
        status=payment.status,
        expires_at=payment.expires_at,
    )


def _payment_view(payment: Payment, bid: Bid) -> PaymentPublic:
    assert payment.id is not None and payment.created_at and payment.updated_at
    return PaymentPublic(
        id=payment.id,
        bid_id=payment.bid_id,
        artwork_id=bid.artwork_id,
        status=payment.status,
        amount=payment.amount,
        fee_amount=payment.fee_amount,
        currency=payment.currency,
        failure_reason=payment.failure_reason,
        payment_intent_id=payment.stripe_payment_intent_id,
        charge_id=payment.stripe_charge_id,
        workflow_id=payment.workflow_id,
        expires_at=payment.expires_at,
        created_at=payment.created_at,
        updated_at=payment.updated_at,
    )
