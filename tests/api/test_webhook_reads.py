"""What the webhook reads, and whom it asks: one statement finds the checkout, and a checkout
already decided is answered from the database alone, Temporal or not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from api.main import create_app
from tests.api.test_webhook import checkout_with_intent
from tests.api.test_webhook_routing import an_intent_made_elsewhere
from tests.support.buyer import pay
from tests.support.polling import eventually
from tests.support.prometheus import parse, value
from tests.support.stack import Stack, engine_of, running_stack, serve_api, settings_for
from tests.support.statements import Statements
from tests.support.stripe_events import event_body, signed

FINISHED = {"received": True, "handled": False, "detail": "checkout already finished"}


async def post_event(http: httpx.AsyncClient, stack: Stack, body: dict[str, Any]) -> Any:
    payload, header = signed(body, stack.settings.stripe_webhook_secret)
    response = await http.post(
        "/api/payments/webhook", content=payload, headers={"Stripe-Signature": header}
    )
    assert response.status_code == 200, response.text
    return response.json()


@asynccontextmanager
async def watched_api(stack: Stack) -> AsyncIterator[tuple[httpx.AsyncClient, Statements]]:
    """An API of the stack's deployment (same secrets, Temporal and database), whose
    statements to PostgreSQL the test sees."""
    app = create_app(stack.settings)
    async with serve_api(stack.settings, app=app) as url, httpx.AsyncClient(base_url=url) as http:
        yield http, Statements(engine_of(app))


async def test_an_event_finds_its_checkout_in_one_statement(stack: Stack) -> None:
    closed, intent_id = await checkout_with_intent(stack)
    declined = await event_body(stack.stripe, intent_id, "payment_intent.payment_failed")
    # An intent of ours whose `payments` row is not written yet: found by its metadata.
    early = await an_intent_made_elsewhere(stack, closed.bid_id, stack.settings.idempotency_prefix)
    beat_the_row = await event_body(stack.stripe, early, "payment_intent.payment_failed")

    async with watched_api(stack) as (http, statements):
        for body in (declined, beat_the_row):
            mark, trips = len(statements.sent), len(statements.transaction_control)
            receipt = await post_event(http, stack, body)
            assert receipt["handled"] is True, receipt
            assert statements.since(mark) == ["SELECT"]
            # One round trip to PostgreSQL: no transaction is begun and committed around it.
            assert await statements.transaction_control_since(trips) == []


async def sold(stack: Stack) -> dict[str, Any]:
    closed, intent_id = await checkout_with_intent(stack)
    assert await pay(stack.stripe, intent_id) == "succeeded"
    await eventually(
        lambda: stack.get(f"/api/artworks/{closed.artwork_id}", closed.seller),
        lambda artwork: artwork.json()["status"] == "sold",
        what="artwork sold",
    )
    return await event_body(stack.stripe, intent_id, "payment_intent.succeeded")


async def reopened(stack: Stack) -> dict[str, Any]:
    """Called off by an operator: the intent canceled at Stripe, the artwork back on sale.
    The event is a success arriving after that, as a late one would."""
    closed, intent_id = await checkout_with_intent(stack)
    canceled = await stack.http.post(
        f"/api/operator/checkouts/{closed.bid_id}/cancel",
        json={"reason": "the seller withdrew the work"},
        headers=stack.headers("olga", roles=["operator"]),
    )
    assert canceled.json()["phase"] == "canceled", canceled.text
    return await event_body(stack.stripe, intent_id, "payment_intent.succeeded")


@pytest.mark.parametrize("decided", [sold, reopened])
async def test_an_event_for_a_decided_checkout_is_answered_without_temporal(
    stack: Stack, database_url: str, localstripe_url: str, decided: Any
) -> None:
    body = await decided(stack)
    without_temporal = settings_for(
        database_url,
        localstripe_url,
        temporal_address="127.0.0.1:1",  # nothing listens: any call to Temporal fails
        stripe_webhook_secret=stack.settings.stripe_webhook_secret,
    )
    async with running_stack(
        without_temporal, stack.sessions, stack.temporal, with_worker=False
    ) as cut_off:
        assert await post_event(cut_off.http, cut_off, body) == FINISHED
        metrics = parse((await cut_off.http.get("/metrics")).text)
    assert value(metrics, "auction_webhook_events_total", outcome="finished") == 1
    assert value(metrics, "auction_webhook_signal_duration_seconds_count") == 0
