"""The client secret is handed out only while the checkout waits for the buyer to pay."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from infra.db import SessionFactory
from infra.stripe_api import connect_stripe
from tests.api.conftest import closed_auction
from tests.support.edge_proxy import EdgeProxy, Fault
from tests.support.polling import eventually
from tests.support.stack import Stack, serve_api, settings_for, temporal_address
from worker import build_worker
from workflows.types import CheckoutPhase, CheckoutStatus, saga_workflow_id

PAYMENT_WINDOW_SECONDS = 2
# Long enough to ask for the intent while the saga settles, short enough to wait out.
STRIPE_SLOWNESS_SECONDS = 2.0


@pytest_asyncio.fixture(scope="module")
async def proxy(localstripe_url: str) -> AsyncIterator[EdgeProxy]:
    edge = EdgeProxy(upstream=localstripe_url)
    await edge.start()
    yield edge
    await edge.stop()


@pytest_asyncio.fixture(scope="module")
async def short_stack(
    database_url: str,
    proxy: EdgeProxy,
    sessions: SessionFactory,
    temporal_dev: WorkflowEnvironment,
) -> AsyncIterator[Stack]:
    """Checkouts that expire at once, the worker reaching Stripe through the edge proxy.

    No webhook is registered: nobody pays here, and localstripe's registration call would
    block the event loop the proxy runs on.
    """
    settings = settings_for(
        database_url,
        proxy.url,
        temporal_address=temporal_address(temporal_dev.client),
        payment_timeout_seconds=PAYMENT_WINDOW_SECONDS,
    )
    stripe_connection = connect_stripe(settings)
    worker = build_worker(temporal_dev.client, settings, sessions, stripe_connection.client)
    async with (
        serve_api(settings) as base_url,
        httpx.AsyncClient(base_url=base_url) as http,
        worker,
    ):
        yield Stack(settings, http, stripe_connection.client, sessions, temporal_dev.client)
    await stripe_connection.aclose()


async def test_no_client_secret_while_the_checkout_settles(
    short_stack: Stack, proxy: EdgeProxy
) -> None:
    stack = short_stack
    closed = await closed_auction(stack)
    request = {"bid_id": closed.bid_id}
    awaiting = await stack.post("/api/payments/create-intent", closed.buyer, request)
    assert awaiting.status_code == 200, awaiting.text
    assert awaiting.json()["client_secret"] is not None

    # At the deadline the saga asks Stripe about the intent; Stripe is slow to answer.
    intent_id = awaiting.json()["payment_intent_id"]
    slow_lookup = Fault(
        "GET", f"/v1/payment_intents/{intent_id}", delay_seconds=STRIPE_SLOWNESS_SECONDS
    )
    proxy.faults.append(slow_lookup)
    handle = stack.temporal.get_workflow_handle(saga_workflow_id(closed.bid_id))

    async def phase() -> CheckoutPhase:
        status: CheckoutStatus = await handle.query("status", result_type=CheckoutStatus)
        return status.phase

    await eventually(phase, lambda p: p is CheckoutPhase.SETTLING, what="checkout settling")
    settling = await stack.post("/api/payments/create-intent", closed.buyer, request)
    assert settling.status_code == 200, settling.text
    assert settling.json()["client_secret"] is None
    assert settling.json()["payment_intent_id"] == intent_id
    # Settlement takes a moment: the answer waited for Stripe's final word.
    assert settling.json()["status"] == "expired"

    await eventually(phase, lambda p: p.is_final, what="checkout decided", timeout=30)
    decided = await stack.post("/api/payments/create-intent", closed.buyer, request)
    assert decided.json()["client_secret"] is None
