"""The schedule `reconcile-checkouts`: made by the worker when it starts, updated (never
duplicated) by the next start, and reconciling when triggered as an operator would."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from temporalio.client import ScheduleActionExecutionStartWorkflow, ScheduleHandle

from devstack.processes import start_worker
from domain.reconciliation import FindingKind
from tests.reconcile.conftest import Deployment
from tests.reconcile.drift import about, latest_run, open_checkout, stop_saga
from tests.support.polling import eventually
from tests.support.stack import PAYLOAD_KEYS, temporal_address
from workflows.reconcile_checkouts import ReconcileCheckoutsWorkflow
from workflows.reconcile_schedule import ensure_reconcile_schedule
from workflows.reconcile_types import RECONCILE_SCHEDULE_ID, ReconcileResult
from workflows.types import CheckoutPhase

REPO = Path(__file__).resolve().parents[2]


def run_worker_once(deployment: Deployment, log_dir: Path, interval_minutes: int) -> None:
    """`python worker.py` for this deployment, started until it polls, then stopped."""
    settings = deployment.settings
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": deployment.database_url,
        "TEMPORAL_ADDRESS": temporal_address(deployment.temporal),
        "TEMPORAL_TASK_QUEUE": f"{settings.temporal_task_queue}-process",
        "STRIPE_API_BASE": str(settings.stripe_api_base),
        "IDEMPOTENCY_PREFIX": settings.idempotency_prefix,
        "MAIL_DISPATCHER": "false",
        "RECONCILE_INTERVAL_MINUTES": str(interval_minutes),
        # The suite's payload key, so the schedule's action reads as the test worker's.
        "TEMPORAL_PAYLOAD_KEYS": PAYLOAD_KEYS,
        "WORKER_METRICS_PORT": "0",
    }
    start_worker(REPO, env, log_dir, settle_seconds=0.2).stop()


async def schedules(deployment: Deployment) -> list[str]:
    listed = await deployment.temporal.list_schedules()
    return [schedule.id async for schedule in listed]


async def interval_of(handle: ScheduleHandle) -> timedelta:
    [interval] = (await handle.describe()).schedule.spec.intervals
    return interval.every


async def test_the_worker_creates_the_schedule_then_updates_it(
    deployment: Deployment, tmp_path: Path
) -> None:
    await asyncio.to_thread(run_worker_once, deployment, tmp_path, 5)
    handle = deployment.temporal.get_schedule_handle(RECONCILE_SCHEDULE_ID)
    assert await interval_of(handle) == timedelta(minutes=5)
    await handle.pause(note="paused by an operator")

    await asyncio.to_thread(run_worker_once, deployment, tmp_path, 7)
    assert await schedules(deployment) == [RECONCILE_SCHEDULE_ID]  # one, updated
    described = await handle.describe()
    assert await interval_of(handle) == timedelta(minutes=7)
    assert described.schedule.state.paused  # the operator's pause outlives the restart
    assert described.schedule.state.note == "paused by an operator"
    assert described.schedule.policy.overlap.name == "SKIP"
    assert described.schedule.policy.catchup_window == timedelta(minutes=7)
    await handle.unpause()


async def test_a_triggered_schedule_finds_and_repairs(deployment: Deployment) -> None:
    handle = await ensure_reconcile_schedule(deployment.temporal, deployment.settings)
    checkout = await open_checkout(deployment, timeout_seconds=2)
    await stop_saga(checkout)
    await asyncio.sleep(2.5)

    first = await triggered_run(deployment, handle)
    assert [f.kind for f in about(first, checkout.bid_id)] == [FindingKind.SAGA_NOT_RUNNING]
    assert (await latest_run(deployment, checkout.bid_id)).phase is CheckoutPhase.REOPENED

    second = await triggered_run(deployment, handle)
    assert second.findings == []
    assert second.actions == []


async def triggered_run(deployment: Deployment, handle: ScheduleHandle) -> ReconcileResult:
    """What an operator's Trigger (Web UI or CLI) starts, once it has finished."""
    before = len((await handle.describe()).info.recent_actions)
    await handle.trigger()
    described = await eventually(
        handle.describe,
        lambda described: len(described.info.recent_actions) > before,
        what="the schedule's run started",
    )
    action = described.info.recent_actions[-1].action
    assert isinstance(action, ScheduleActionExecutionStartWorkflow)
    assert action.workflow_id.startswith(f"{RECONCILE_SCHEDULE_ID}-")
    run = deployment.temporal.get_workflow_handle_for(
        ReconcileCheckoutsWorkflow.run, action.workflow_id, run_id=action.first_execution_run_id
    )
    return await run.result()
