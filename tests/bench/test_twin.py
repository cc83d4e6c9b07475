"""The no-op twin the benchmark measures against, on Temporal's time-skipping server: paid,
it ends sold; never paid, it ends when its buyer's window does, as the saga's window does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.phases import twin_input
from bench.twin import TWIN_ACTIVITIES, TwinWorkflow
from domain.stripe_events import PaymentEvent, PaymentEventKind
from infra.settings import Settings
from worker import workflow_runner
from workflows.types import CheckoutPhase, CheckoutStatus

WINDOW_SECONDS = 600


@pytest_asyncio.fixture
async def twin_queue(time_skipping: WorkflowEnvironment) -> AsyncIterator[str]:
    queue = f"twin-{uuid.uuid4()}"
    async with Worker(
        time_skipping.client,
        task_queue=queue,
        workflows=[TwinWorkflow],
        activities=list(TWIN_ACTIVITIES),
        workflow_runner=workflow_runner(),
    ):
        yield queue


async def started(
    env: WorkflowEnvironment, queue: str, number: int
) -> WorkflowHandle[TwinWorkflow, CheckoutStatus]:
    saga = twin_input(number, Settings(payment_timeout_seconds=WINDOW_SECONDS))
    return await env.client.start_workflow(
        TwinWorkflow.run, saga, id=f"twin-test-{uuid.uuid4()}", task_queue=queue
    )


async def test_a_paid_twin_ends_sold(time_skipping: WorkflowEnvironment, twin_queue: str) -> None:
    handle = await started(time_skipping, twin_queue, 1)
    paid = PaymentEvent("evt_1", PaymentEventKind.SUCCEEDED, "pi_twin_1", created=0)
    await handle.signal(TwinWorkflow.stripe_event, paid)
    status = await asyncio.wait_for(handle.result(), timeout=30)
    assert status.phase is CheckoutPhase.SOLD


async def test_an_unpaid_twin_ends_at_its_deadline_without_spinning(
    time_skipping: WorkflowEnvironment, twin_queue: str
) -> None:
    handle = await started(time_skipping, twin_queue, 2)
    # Its window was looped on once spent: a workflow task that never ended, on a core.
    status = await asyncio.wait_for(handle.result(), timeout=30)
    assert status.phase is CheckoutPhase.REOPENED
    assert status.expires_at is not None
    history = await handle.fetch_history()
    assert len(history.events) < 40
