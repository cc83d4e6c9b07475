from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import stripe
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from devstack.pay import fail_3d_secure
from domain.stripe_events import PaymentEvent
from infra.db import SessionFactory
from infra.settings import Settings
from tests.support.buyer import DECLINED, pay
from tests.support.factories import Auction
from tests.support.polling import eventually
from tests.support.stripe_events import payment_event
from worker import build_worker
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.types import CheckoutStatus, PaymentSagaInput, saga_workflow_id


@asynccontextmanager
async def saga_worker(
    client: Client, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> AsyncIterator[Worker]:
    """The production worker (same workflow, same activities), on a queue of its own."""
    settings = Settings(temporal_task_queue=f"saga-test-{uuid.uuid4().hex[:8]}")
    worker = build_worker(client, settings, sessions, stripe_client)
    async with worker:
        yield worker


async def start_saga(
    client: Client, worker: Worker, auction: Auction, timeout_seconds: int = 600
) -> WorkflowHandle[PaymentSagaWorkflow, CheckoutStatus]:
    return await client.start_workflow(
        PaymentSagaWorkflow.run,
        PaymentSagaInput(
            bid_id=auction.bid_id,
            artwork_id=auction.artwork_id,
            buyer_id=auction.buyer_id,
            hammer_price=auction.hammer_price,
            currency=auction.currency,
            payment_timeout_seconds=timeout_seconds,
        ),
        id=saga_workflow_id(auction.bid_id),
        task_queue=worker.task_queue,
    )


async def opened_intent(handle: WorkflowHandle[PaymentSagaWorkflow, CheckoutStatus]) -> str:
    intent_id = (await opened(handle)).payment_intent_id
    assert intent_id is not None
    return intent_id


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
