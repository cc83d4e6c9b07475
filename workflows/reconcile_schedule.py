"""The schedule `reconcile-checkouts`: a reconciliation every RECONCILE_INTERVAL_MINUTES.

Every worker makes sure of it when it starts: created the first time, brought up to this
worker's interval and action afterwards. It is never duplicated, and a pause an operator
set survives a worker's restart.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from infra.settings import Settings
from workflows.reconcile_checkouts import ReconcileCheckoutsWorkflow
from workflows.reconcile_types import RECONCILE_SCHEDULE_ID, ReconcileInput

# A run hung on a part that is away is ended this long after it started; while it lasts,
# the schedule skips its turns (two runs never overlap).
RUN_TIMEOUT = timedelta(minutes=30)


def reconcile_schedule(settings: Settings) -> Schedule:
    interval = timedelta(minutes=settings.reconcile_interval_minutes)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconcileCheckoutsWorkflow.run,
            ReconcileInput(),
            # Temporal appends each run's scheduled time to this id.
            id=RECONCILE_SCHEDULE_ID,
            task_queue=settings.temporal_task_queue,
            execution_timeout=RUN_TIMEOUT,
            static_summary="Reconcile the checkouts: database, Stripe and Temporal",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        # After Temporal was away, only a turn missed within the last interval is made up.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=interval),
    )


async def ensure_reconcile_schedule(client: Client, settings: Settings) -> ScheduleHandle:
    """Creates the schedule, or updates the one there to this worker's settings."""
    wanted = reconcile_schedule(settings)
    try:
        return await client.create_schedule(RECONCILE_SCHEDULE_ID, wanted)
    except ScheduleAlreadyRunningError:
        pass
    handle = client.get_schedule_handle(RECONCILE_SCHEDULE_ID)

    def to_wanted(current: ScheduleUpdateInput) -> ScheduleUpdate:
        # Whether it is paused, and the operator's note, are the operator's to change.
        return ScheduleUpdate(replace(wanted, state=current.description.schedule.state))

    await handle.update(to_wanted)
    return handle
