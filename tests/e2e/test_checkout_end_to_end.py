"""The whole service: API, worker, Temporal dev server, PostgreSQL, and localstripe, whose own
signed webhooks reach the API. No test code signals a workflow here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from infra.db import SessionFactory
from tests.support.buyer import DECLINED, pay
from tests.support.polling import eventually
from tests.support.stack import Stack, stack_on, unique
from workflows.types import saga_workflow_id

pytestmark = pytest.mark.e2e

# Short enough to watch a checkout expire, long enough for a payment to land first.
PAYMENT_WINDOW_SECONDS = 8


@pytest_asyncio.fixture(scope="module")
async def stack(
    database_url: str,
    localstripe_url: str,
    sessions: SessionFactory,
    temporal_dev: WorkflowEnvironment,
) -> AsyncIterator[Stack]:
    async with stack_on(
        temporal_dev,
        sessions,
        database_url,
        localstripe_url,
        payment_timeout_seconds=PAYMENT_WINDOW_SECONDS,
    ) as running:
        yield running


async def won_and_opened(stack: Stack, amount: str) -> tuple[str, str, int, int, dict[str, str]]:
    seller, buyer, rival = unique("seller"), unique("buyer"), unique("rival")
    artwork = await stack.post(
        "/api/artworks", seller, {"title": "Harbour", "starting_price": "100.00"}
    )
    artwork_id = artwork.json()["id"]
    await stack.post(f"/api/artworks/{artwork_id}/bids", rival, {"amount": "150.00"})
    bid = await stack.post(f"/api/artworks/{artwork_id}/bids", buyer, {"amount": amount})
    assert bid.status_code == 201, bid.text
    closed = await stack.post(f"/api/artworks/{artwork_id}/close", seller)
    assert closed.status_code == 200, closed.text
    intent = await stack.post("/api/payments/create-intent", buyer, {"bid_id": bid.json()["id"]})
    assert intent.status_code == 200, intent.text
    return seller, buyer, artwork_id, bid.json()["id"], intent.json()


async def test_a_winning_bid_becomes_a_sale_through_stripes_webhook(stack: Stack) -> None:
    seller, buyer, artwork_id, bid_id, intent = await won_and_opened(stack, "1250.00")
    assert intent["amount"] == "1287.64"  # the buyer pays the processing fee

    assert await pay(stack.stripe, intent["payment_intent_id"]) == "succeeded"

    artwork = await eventually(
        lambda: stack.get(f"/api/artworks/{artwork_id}", seller),
        lambda r: r.json()["status"] == "sold",
        what="artwork sold after localstripe's webhook",
    )
    assert artwork.json()["winning_bid_id"] == bid_id
    payment = (await stack.get(f"/api/payments/{intent['payment_id']}", buyer)).json()
    assert payment["status"] == "succeeded"
    assert payment["charge_id"].startswith("ch_")
    handle = stack.temporal.get_workflow_handle(saga_workflow_id(bid_id))
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    # The sale is final: bidding stays closed.
    late_bid = await stack.post(
        f"/api/artworks/{artwork_id}/bids", unique("late"), {"amount": "9000"}
    )
    assert late_bid.status_code == 409


async def test_a_declined_card_then_the_deadline_reopens_bidding(stack: Stack) -> None:
    seller, buyer, artwork_id, _, intent = await won_and_opened(stack, "480.00")
    intent_id = intent["payment_intent_id"]

    assert await pay(stack.stripe, intent_id, DECLINED) == "requires_payment_method"
    failed = await eventually(
        lambda: stack.get(f"/api/payments/{intent['payment_id']}", buyer),
        lambda r: r.json()["status"] == "failed",
        what="decline recorded from localstripe's webhook",
    )
    assert "card_declined" in failed.json()["failure_reason"]
    artwork = (await stack.get(f"/api/artworks/{artwork_id}", seller)).json()
    assert artwork["status"] == "pending_payment"  # the buyer may still retry

    expired = await eventually(
        lambda: stack.get(f"/api/payments/{intent['payment_id']}", buyer),
        lambda r: r.json()["status"] == "expired",
        timeout=PAYMENT_WINDOW_SECONDS + 15,
        what="payment expired at the deadline",
    )
    assert "card_declined" in expired.json()["failure_reason"]
    artwork = (await stack.get(f"/api/artworks/{artwork_id}", seller)).json()
    assert artwork["status"] == "active"
    assert artwork["winning_bid_id"] is None
    assert artwork["highest_bid"] == "150.00"  # the unpaid bid no longer counts
    at_stripe = await stack.stripe.v1.payment_intents.retrieve_async(intent_id)
    assert at_stripe.status == "canceled"

    # Bidding is open again, and the auction can close on the next bidder.
    rebid = await stack.post(
        f"/api/artworks/{artwork_id}/bids", unique("next"), {"amount": "200.00"}
    )
    assert rebid.status_code == 201
    reclosed = await stack.post(f"/api/artworks/{artwork_id}/close", seller)
    assert reclosed.status_code == 200
    assert reclosed.json()["winning_bid_id"] == rebid.json()["id"]
