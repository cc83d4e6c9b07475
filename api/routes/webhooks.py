"""Stripe's webhook: verify the raw bytes, find the checkout, signal it, answer fast.

A 2xx is only sent once Temporal has durably accepted the signal; otherwise a 5xx makes
Stripe deliver the event again, so none is lost.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import stripe
from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.deps import ServicesDep, SessionDep
from api.schemas import WebhookReceipt
from domain.checkout import BidStatus
from domain.stripe_events import MalformedEvent, PaymentEvent, parse_payment_event
from infra.tables import Artwork, Bid, Payment

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/payments", tags=["webhooks"])


async def verified_event(
    request: Request,
    services: ServicesDep,
    stripe_signature: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """The event, only if Stripe signed these exact bytes recently; 400 otherwise."""
    if not stripe_signature:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="missing Stripe-Signature")
    payload = await request.body()
    try:
        event = stripe.Webhook.construct_event(
            payload,
            stripe_signature,
            services.settings.stripe_webhook_secret,
            tolerance=services.settings.webhook_tolerance_seconds,
        )
    except (stripe.SignatureVerificationError, ValueError) as refused:
        log.warning("Refused a webhook: %s", refused)
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="invalid signature") from None
    verified: dict[str, Any] = event.to_dict()
    return verified


@router.post("/webhook")
async def stripe_webhook(
    event: Annotated[dict[str, Any], Depends(verified_event)],
    session: SessionDep,
    services: ServicesDep,
) -> WebhookReceipt:
    try:
        payment_event = parse_payment_event(event)
    except MalformedEvent as malformed:
        log.error("Signed but malformed Stripe event %s: %s", event.get("id"), malformed)
        return WebhookReceipt(handled=False, detail=str(malformed))
    if payment_event is None:
        log.info("Ignoring Stripe event %s of type %s", event.get("id"), event.get("type"))
        return WebhookReceipt(handled=False, detail="event type not used")

    checkout = await _checkout_of(session, payment_event)
    if checkout is None:
        log.warning(
            "Stripe event %s for unknown PaymentIntent %s",
            payment_event.event_id,
            payment_event.payment_intent_id,
        )
        return WebhookReceipt(handled=False, detail="no checkout for this PaymentIntent")
    bid, artwork = checkout
    await session.commit()
    try:
        await services.sagas.deliver(services.sagas.input_for(bid, artwork), payment_event)
    except WorkflowAlreadyStartedError:
        log.info("Stripe event %s after its checkout finished", payment_event.event_id)
        return WebhookReceipt(handled=False, detail="checkout already finished")
    return WebhookReceipt(handled=True, detail="delivered to the checkout")


async def _checkout_of(session: AsyncSession, event: PaymentEvent) -> tuple[Bid, Artwork] | None:
    """The bid this intent pays for: from our records, else from the intent's metadata.

    The metadata path covers an event that beats the `payments` row being written.
    """
    query = select(Payment.bid_id).where(
        Payment.stripe_payment_intent_id == event.payment_intent_id
    )
    bid_id = (await session.exec(query)).first() or event.bid_id
    bid = await session.get(Bid, bid_id) if bid_id is not None else None
    artwork = await session.get(Artwork, bid.artwork_id) if bid is not None else None
    if bid is None or artwork is None or bid.status == BidStatus.ACTIVE:
        return None
    return bid, artwork
