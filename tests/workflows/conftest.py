from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest_asyncio
import stripe
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from devstack.pay import fail_3d_secure
from domain.stripe_events import PaymentEvent
from infra.db import SessionFactory
from infra.settings import Settings
from infra.stripe_api import connect_stripe
from tests.support.buyer import DECLINED, pay
from tests.support.edge_proxy import FOREVER, EdgeProxy, Fault
from tests.support.factories import Auction
from tests.support.polling import eventually
from tests.support.stack import settings_for
from tests.support.stripe_events import payment_event
from worker import build_worker
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.types import CheckoutStatus, PaymentSagaInput, saga_workflow_id

HISTORIES = Path(__file__).parent / "histories"


@asynccontextmanager
async def saga_worker(
    client: Client,
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
    task_queue: str | None = None,
) -> AsyncIterator[Worker]:
    """The production worker (same workflow, same activities), on a queue of its own."""
    queue = task_queue or new_task_queue()
    worker = build_worker(client, Settings(temporal_task_queue=queue), sessions, stripe_client)
    async with worker:
        yield worker


def new_task_queue() -> str:
    return f"saga-test-{uuid.uuid4().hex[:8]}"


async def start_saga(
    client: Client,
    worker: Worker | str,
    auction: Auction,
    timeout_seconds: int = 600,
    **options: Any,
) -> WorkflowHandle[PaymentSagaWorkflow, CheckoutStatus]:
    """Starts the saga on `worker`'s queue (or a queue nobody polls yet)."""
    return await client.start_workflow(
        PaymentSagaWorkflow.run,
        PaymentSagaInput(
            bid_id=auction.bid_id,
            artwork_id=auction.artwork_id,
            buyer_id=auction.buyer_id,
            hammer_price=auction.hammer_price,
            currency=auction.currency,
            payment_timeout_seconds=timeout_seconds,
            seller_id=auction.seller_id,
            **options,
        ),
        id=saga_workflow_id(auction.bid_id),
        task_queue=worker if isinstance(worker, str) else worker.task_queue,
    )


async def keep_history(handle: WorkflowHandle[Any, Any], shape: str) -> None:
    """With RECORD_HISTORIES=1 (`make histories`), saves the run's history as a replay
    fixture: every shape the saga takes is replayed against the code in CI."""
    if os.environ.get("RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    path = HISTORIES / f"{shape}.json"
    await asyncio.to_thread(path.write_text, history.to_json() + "\n")


@pytest_asyncio.fixture
async def proxy(localstripe_url: str) -> AsyncIterator[EdgeProxy]:
    edge = EdgeProxy(upstream=localstripe_url)
    await edge.start()
    yield edge
    await edge.stop()


@pytest_asyncio.fixture
async def stripe_via_proxy(
    proxy: EdgeProxy, database_url: str
) -> AsyncIterator[stripe.StripeClient]:
    connection = connect_stripe(settings_for(database_url, proxy.url))
    yield connection.client
    await connection.aclose()


async def history_events(handle: WorkflowHandle[Any, Any]) -> list[HistoryEvent]:
    return [event async for event in handle.fetch_history_events()]


async def activities_run(handle: WorkflowHandle[Any, Any]) -> list[str]:
    scheduled = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in await history_events(handle)
        if event.event_type == scheduled
    ]


async def opened_intent(handle: WorkflowHandle[PaymentSagaWorkflow, CheckoutStatus]) -> str:
    intent_id = (await opened(handle)).payment_intent_id
    assert intent_id is not None
    return intent_id


async def stripe_tells_the_saga(
    client: stripe.StripeClient,
    handle: WorkflowHandle[PaymentSagaWorkflow, CheckoutStatus],
    payment_intent_id: str,
    event_type: str = "payment_intent.succeeded",
) -> PaymentEvent:
    """Stripe's webhook for the intent as it is now, signalled to the saga."""
    event = await payment_event(client, payment_intent_id, event_type)
    await handle.signal(PaymentSagaWorkflow.stripe_event, event)
    return event


async def buyer_pays(
    client: stripe.StripeClient,
    handle: WorkflowHandle[PaymentSagaWorkflow, CheckoutStatus],
    payment_intent_id: str,
) -> PaymentEvent:
    """The buyer pays at Stripe, and Stripe's success event reaches the saga."""
    assert await pay(client, payment_intent_id) == "succeeded"
    return await stripe_tells_the_saga(client, handle, payment_intent_id)


def reported_processing(proxy: EdgeProxy, payment_intent_id: str) -> Fault:
    """From now on, Stripe reports the intent `processing` (a bank debit in flight) when the
    saga looks at it; `proxy.clear(fault)` lets its real state through again."""
    fault = Fault(
        "GET", f"/v1/payment_intents/{payment_intent_id}", rewrite={"status": "processing"}
    )
    fault.remaining = FOREVER
    proxy.faults.append(fault)
    return fault


async def buyer_is_declined(client: stripe.StripeClient, payment_intent_id: str) -> PaymentEvent:
    """The buyer's card is declined at Stripe; returns the event Stripe sends about it."""
    assert await pay(client, payment_intent_id, DECLINED) == "requires_payment_method"
    return await payment_event(client, payment_intent_id, "payment_intent.payment_failed")


async def buyer_fails_3d_secure(
    client: stripe.StripeClient, api_base: str, payment_intent_id: str
) -> PaymentEvent:
    """The buyer fails 3-D Secure: the intent can be paid again. localstripe sends no event for
    this, so the one Stripe sends is built from the intent's real state."""
    assert await fail_3d_secure(client, api_base, payment_intent_id) == "requires_payment_method"
    return await payment_event(client, payment_intent_id, "payment_intent.payment_failed")


async def opened(handle: WorkflowHandle[PaymentSagaWorkflow, CheckoutStatus]) -> CheckoutStatus:
    """The saga's status once its PaymentIntent exists."""
    return await eventually(
        lambda: handle.query(PaymentSagaWorkflow.status),
        lambda status: status.payment_intent_id is not None,
        what="PaymentIntent opened",
    )
