from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import stripe
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from infra.db import SessionFactory
from infra.settings import Settings
from tests.support.factories import Auction
from tests.support.polling import eventually
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


async def opened(handle: WorkflowHandle[PaymentSagaWorkflow, CheckoutStatus]) -> CheckoutStatus:
    """The saga's status once its PaymentIntent exists."""
    return await eventually(
        lambda: handle.query(PaymentSagaWorkflow.status),
        lambda status: status.payment_intent_id is not None,
        what="PaymentIntent opened",
    )
