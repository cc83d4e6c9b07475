"""Stripe's webhook: verified over the raw bytes, delivered durably, deduplicated."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from sqlmodel import select
from temporalio.api.enums.v1 import EventType

from infra.tables import Payment
from tests.api.conftest import Closed, closed_auction
from tests.support.buyer import pay
from tests.support.polling import eventually
from tests.support.stack import Stack, running_stack, settings_for
from tests.support.stripe_events import event_body, signed
from workflows.types import saga_workflow_id


async def payment_status(stack: Stack, bid_id: int) -> str:
    async with stack.sessions() as session:
        payment = (await session.exec(select(Payment).where(Payment.bid_id == bid_id))).one()
        return payment.status


async def signals_received(stack: Stack, bid_id: int) -> int:
    handle = stack.temporal.get_workflow_handle(saga_workflow_id(bid_id))
    count = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            count += 1
    return count


async def checkout_with_intent(stack: Stack) -> tuple[Closed, str]:
    closed = await closed_auction(stack)
    intent = await stack.post(
        "/api/payments/create-intent", closed.buyer, {"bid_id": closed.bid_id}
    )
    return closed, intent.json()["payment_intent_id"]


async def deliver(
    stack: Stack, body: dict[str, Any], secret: str | None = None, at: int | None = None
) -> int:
    payload, header = signed(body, secret or stack.settings.stripe_webhook_secret, at)
    response = await stack.http.post(
        "/api/payments/webhook",
        content=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    return response.status_code


async def test_forged_stale_or_unsigned_events_are_400_and_change_nothing(stack: Stack) -> None:
    closed, intent_id = await checkout_with_intent(stack)
    await stack.stripe.v1.payment_intents.update_async(
        intent_id, params={"payment_method": "pm_card_visa"}
    )
    body = await event_body(stack.stripe, intent_id, "payment_intent.succeeded")

    assert await deliver(stack, body, secret="whsec_forged_by_someone_else") == 400
    assert await deliver(stack, body, at=int(time.time()) - 3600) == 400
    payload, header = signed(body, stack.settings.stripe_webhook_secret)
    tampered = payload.replace(b'"livemode": false', b'"livemode": true')
    response = await stack.http.post(
        "/api/payments/webhook", content=tampered, headers={"Stripe-Signature": header}
    )
    assert response.status_code == 400
    unsigned = await stack.http.post("/api/payments/webhook", content=payload)
    assert unsigned.status_code == 400

    assert await payment_status(stack, closed.bid_id) == "pending"
    assert await signals_received(stack, closed.bid_id) == 0
    artwork = (await stack.get(f"/api/artworks/{closed.artwork_id}", closed.seller)).json()
    assert artwork["status"] == "pending_payment"


async def test_events_the_saga_does_not_use_are_acknowledged(stack: Stack) -> None:
    body = {
        "id": "evt_unused",
        "type": "customer.created",
        "created": int(time.time()),
        "data": {"object": {}},
    }
    payload, header = signed(body, stack.settings.stripe_webhook_secret)
    response = await stack.http.post(
        "/api/payments/webhook", content=payload, headers={"Stripe-Signature": header}
    )
    assert response.status_code == 200
    assert response.json()["handled"] is False


async def test_one_success_delivered_five_times_sells_once(stack: Stack) -> None:
    closed, intent_id = await checkout_with_intent(stack)
    # The buyer pays; localstripe's own webhook would race ours, so pay out of its sight.
    await pay(stack.stripe, intent_id)
    body = await event_body(stack.stripe, intent_id, "payment_intent.succeeded", "evt_dup_test")
    statuses = [await deliver(stack, body) for _ in range(5)]
    assert all(code == 200 for code in statuses)

    artwork = await eventually(
        lambda: stack.get(f"/api/artworks/{closed.artwork_id}", closed.seller),
        lambda r: r.json()["status"] == "sold",
        what="artwork sold",
    )
    assert artwork.json()["winning_bid_id"] == closed.bid_id
    handle = stack.temporal.get_workflow_handle(saga_workflow_id(closed.bid_id))
    sales = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            sales += (
                event.activity_task_scheduled_event_attributes.activity_type.name == "complete_sale"
            )
    assert sales == 1
    assert await payment_status(stack, closed.bid_id) == "succeeded"

    # Stripe retrying after the checkout ended is acknowledged, with no effect.
    assert await deliver(stack, body) == 200


async def test_an_event_temporal_cannot_take_is_5xx_so_stripe_retries(
    stack: Stack, database_url: str, localstripe_url: str
) -> None:
    closed, intent_id = await checkout_with_intent(stack)
    body = await event_body(stack.stripe, intent_id, "payment_intent.payment_failed")
    unreachable = settings_for(
        database_url,
        localstripe_url,
        temporal_address="127.0.0.1:1",
        stripe_webhook_secret=stack.settings.stripe_webhook_secret,
    )
    async with running_stack(
        unreachable, stack.sessions, stack.temporal, with_worker=False
    ) as cut_off:
        assert await deliver(cut_off, body) == 503
    assert await signals_received(stack, closed.bid_id) == 0
    # Stripe's retry, once Temporal is back, is taken.
    assert await deliver(stack, body) == 200
    await eventually(
        lambda: payment_status(stack, closed.bid_id),
        lambda s: s == "failed",
        what="decline recorded",
    )


def signed_bytes(payload: bytes, secret: str) -> dict[str, str]:
    """Stripe's signature over raw bytes, whatever they are."""
    at = int(time.time())
    digest = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={at},v1={digest}", "Content-Type": "application/json"}


async def post_signed(stack: Stack, payload: bytes) -> tuple[int, dict[str, Any]]:
    response = await stack.http.post(
        "/api/payments/webhook",
        content=payload,
        headers=signed_bytes(payload, stack.settings.stripe_webhook_secret),
    )
    return response.status_code, response.json()


@pytest.mark.parametrize("payload", [b"[1]", b"null", b"42", b'"evt_1"', b"true"])
async def test_a_signed_body_that_is_not_an_object_is_400(stack: Stack, payload: bytes) -> None:
    assert await post_signed(stack, payload) == (
        400,
        {"detail": "the event must be a JSON object"},
    )


@pytest.mark.parametrize(
    "payload", [b"not json", b'{"id": ', b"\x80\x81 latin-1 bytes", b"[" * 100_000, b""]
)
async def test_a_signed_body_that_is_not_json_is_400(stack: Stack, payload: bytes) -> None:
    assert await post_signed(stack, payload) == (400, {"detail": "the body is not JSON"})


async def test_an_unsigned_body_is_refused_before_it_is_parsed(stack: Stack) -> None:
    headers = signed_bytes(b"[1]", "whsec_forged_by_someone_else")
    response = await stack.http.post("/api/payments/webhook", content=b"[1]", headers=headers)
    assert (response.status_code, response.json()) == (400, {"detail": "invalid signature"})


async def test_a_signature_header_with_non_ascii_text_is_400(stack: Stack) -> None:
    payload = b'{"id": "evt_1", "type": "customer.created"}'
    header = signed_bytes(payload, stack.settings.stripe_webhook_secret)["Stripe-Signature"]
    response = await stack.http.post(
        "/api/payments/webhook",
        content=payload,
        headers={b"Stripe-Signature": header.encode()[:-2] + "é".encode("latin-1") + b"0"},
    )
    assert (response.status_code, response.json()) == (400, {"detail": "invalid signature"})


async def test_signed_events_naming_what_no_row_can_hold_are_acknowledged(stack: Stack) -> None:
    def event(intent: dict[str, Any]) -> bytes:
        body = {
            "id": f"evt_{time.time_ns()}",
            "type": "payment_intent.payment_failed",
            "data": {"object": intent},
        }
        return json.dumps(body).encode()

    beyond_bigint = {"id": "pi_unknown_to_us", "metadata": {"bid_id": str(2**63)}}
    status, receipt = await post_signed(stack, event(beyond_bigint))
    assert (status, receipt["handled"]) == (200, False), receipt
    assert receipt["detail"] == "no checkout for this PaymentIntent"

    with_nul = {"id": "pi_with_\u0000_inside", "metadata": {}}
    status, receipt = await post_signed(stack, event(with_nul))
    assert (status, receipt["handled"]) == (200, False), receipt
