"""Stripe's webhook: verify the raw bytes, find the checkout, signal it, answer fast.

A 2xx is only sent once Temporal has durably accepted the signal; otherwise a 5xx makes
Stripe deliver the event again, so none is lost.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from typing import Annotated, Any

import stripe
from fastapi import APIRouter, Depends, HTTPException, Request, status
from sqlalchemy import BigInteger, func, literal
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ServicesDep
from api.errors import error_responses
from api.metrics import ApiMetrics, MetricsDep, WebhookOutcome
from api.sagas import CheckoutFinished
from api.schemas import BIGINT_MAX, WebhookReceipt, storable_text
from api.services import Services
from domain.checkout import BidStatus
from domain.stripe_events import MalformedEvent, PaymentEvent, parse_payment_event
from infra.tables import Artwork, Bid, Payment

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/payments", tags=["webhooks"])


def bad_request(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, detail=detail)


async def verified_event(
    request: Request, services: ServicesDep, metrics: MetricsDep
) -> dict[str, Any]:
    """The event, only if Stripe signed these exact bytes recently; 400 otherwise.

    The signature is checked before the body is parsed: unsigned JSON is never looked at.
    """
    stripe_signature = request.headers.get("Stripe-Signature")
    if not stripe_signature:
        metrics.webhook(WebhookOutcome.BAD_SIGNATURE)
        raise bad_request("missing Stripe-Signature")
    payload = await request.body()
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        # Stripe signs the UTF-8 text of a JSON event: these bytes cannot be one.
        metrics.webhook(WebhookOutcome.BAD_BODY)
        raise bad_request("the body is not JSON") from None
    # The SDK compares digests as text, which raises on non-ASCII rather than refusing it.
    if not stripe_signature.isascii() or not _signed_by_stripe(text, stripe_signature, services):
        metrics.webhook(WebhookOutcome.BAD_SIGNATURE)
        raise bad_request("invalid signature")
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):
        metrics.webhook(WebhookOutcome.BAD_BODY)
        raise bad_request("the body is not JSON") from None
    if not isinstance(event, dict):
        metrics.webhook(WebhookOutcome.BAD_BODY)
        raise bad_request("the event must be a JSON object")
    return event


def _signed_by_stripe(text: str, header: str, services: Services) -> bool:
    try:
        stripe.WebhookSignature.verify_header(
            text,
            header,
            services.settings.stripe_webhook_secret,
            services.settings.webhook_tolerance_seconds,
        )
    except stripe.SignatureVerificationError as refused:
        log.warning("Refused a webhook: %s", refused)
        return False
    return True


@router.post(
    "/webhook",
    responses=error_responses(
        400,
        503,
        meaning={
            400: "No valid Stripe signature, or a signed body that is not a JSON object."
            " Stripe does not retry it.",
            503: "Temporal or the database is unavailable: Stripe delivers the event again.",
        },
    ),
    # Header and body are read raw (the signature covers the body's exact bytes), so they
    # are declared here rather than parsed by FastAPI.
    openapi_extra={
        "parameters": [
            {
                "name": "Stripe-Signature",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": "Stripe's signature of the body, `t=...,v1=...`.",
            }
        ],
        "requestBody": {
            "required": True,
            "description": "A Stripe event, exactly as Stripe signed it.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
)
async def stripe_webhook(
    event: Annotated[dict[str, Any], Depends(verified_event)],
    services: ServicesDep,
    metrics: MetricsDep,
) -> WebhookReceipt:
    try:
        outcome, receipt = await _handle(event, services, metrics)
    except Exception:
        metrics.webhook(WebhookOutcome.ERROR)  # answered 503: Stripe delivers it again
        raise
    metrics.webhook(outcome)
    return receipt


async def _handle(
    event: dict[str, Any], services: Services, metrics: ApiMetrics
) -> tuple[WebhookOutcome, WebhookReceipt]:
    try:
        payment_event = parse_payment_event(event)
    except MalformedEvent as malformed:
        log.error("Signed but malformed Stripe event %s: %s", event.get("id"), malformed)
        return WebhookOutcome.MALFORMED, WebhookReceipt(handled=False, detail=str(malformed))
    if payment_event is None:
        log.info("Ignoring Stripe event %s of type %s", event.get("id"), event.get("type"))
        return WebhookOutcome.IGNORED, WebhookReceipt(handled=False, detail="event type not used")
    payment_event = _storable(payment_event)
    if payment_event is None:
        log.error("Signed Stripe event %r has text PostgreSQL cannot store", event.get("id"))
        unstorable = WebhookReceipt(handled=False, detail="event fields are not storable text")
        return WebhookOutcome.MALFORMED, unstorable

    # One statement, so no transaction around it: nothing is held while Temporal is asked.
    async with services.autocommit_sessions() as session:
        checkout = await _checkout_of(session, payment_event, services.settings.idempotency_prefix)
    if checkout is None:
        log.warning(
            "Stripe event %s for unknown PaymentIntent %s",
            payment_event.event_id,
            payment_event.payment_intent_id,
        )
        unknown = WebhookReceipt(handled=False, detail="no checkout for this PaymentIntent")
        return WebhookOutcome.UNKNOWN_INTENT, unknown
    bid, artwork = checkout
    if bid.status != BidStatus.WON:
        # Decided (`paid` or `unpaid`), so answered from the database, without asking
        # Temporal. The saga writes the decision as its last step, once Stripe has settled:
        # the sale once Stripe showed the money, the reopening once the intent was canceled
        # at Stripe (or none was ever opened). No step after it reads an event, a closed run
        # is not found, and a decided checkout is never restarted: a signal could change
        # nothing. A success arriving after a reopening is money taken without a sale; no
        # saga acts on it, whoever is asked. Reconciliation, which compares Stripe with the
        # database, reports it (`money_without_sale`) for an operator to refund.
        return _finished(payment_event)
    saga = services.sagas.input_for(bid, artwork)
    started = time.perf_counter()
    outcome = WebhookOutcome.ERROR
    try:
        # Signalled, or started again if an operator stopped it while it waited for the buyer.
        delivery = await services.sagas.deliver(saga, payment_event)
        outcome = WebhookOutcome(delivery.value)
    except CheckoutFinished:
        outcome = WebhookOutcome.FINISHED  # its run completed (a rejected reservation)
        return _finished(payment_event)
    finally:
        elapsed = time.perf_counter() - started
        metrics.signal_seconds.labels(outcome.value).observe(elapsed)
    return outcome, WebhookReceipt(handled=True, detail="delivered to the checkout")


def _finished(event: PaymentEvent) -> tuple[WebhookOutcome, WebhookReceipt]:
    log.info("Stripe event %s after its checkout finished", event.event_id)
    return WebhookOutcome.FINISHED, WebhookReceipt(
        handled=False, detail="checkout already finished"
    )


def _storable(event: PaymentEvent) -> PaymentEvent | None:
    """The event as the database and the saga can take it, or None if its text cannot be.

    A bid id in the metadata that no bigint can hold names no bid: it is dropped.
    """
    texts = (
        event.event_id,
        event.payment_intent_id,
        event.charge_id,
        event.failure_code,
        event.failure_message,
        event.workflow_id,
        event.environment,
    )
    try:
        for text in texts:
            if text is not None:
                storable_text(text)
    except ValueError:
        return None
    if event.bid_id is not None and not 1 <= event.bid_id <= BIGINT_MAX:
        return replace(event, bid_id=None)
    return event


async def _checkout_of(
    session: AsyncSession, event: PaymentEvent, environment: str
) -> tuple[Bid, Artwork] | None:
    """The bid this intent pays for, and its artwork, in one query: the bid our records name
    for the intent, else the one its metadata names.

    The metadata path covers an event that beats the `payments` row being written; it is
    taken only for intents this deployment made (another one sharing the Stripe account has
    bids with the same ids).
    """
    recorded = (
        select(Payment.bid_id)
        .where(Payment.stripe_payment_intent_id == event.payment_intent_id)
        .scalar_subquery()
    )
    from_metadata = event.bid_id if (event.environment or "") == environment else None
    query = (
        select(Bid, Artwork)
        .join(Artwork, col(Artwork.id) == Bid.artwork_id)
        .where(col(Bid.id) == func.coalesce(recorded, literal(from_metadata, BigInteger)))
    )
    found = (await session.exec(query)).first()
    if found is None or found[0].status == BidStatus.ACTIVE:
        return None
    return found[0], found[1]
