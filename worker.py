"""The Temporal worker: `python worker.py`, configured like the API (see the README)."""

from __future__ import annotations

import asyncio
import compileall
import logging
import signal
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import uvloop
from stripe import StripeClient
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from activities.inventory import Inventory
from activities.reconcile_reads import ReconcileReads
from activities.reconcile_repairs import ReconcileRepairs
from activities.stripe_payments import StripePayments
from infra.announcer import Announcer
from infra.db import SessionFactory, create_engine, session_factory
from infra.search_attributes import ensure_search_attributes
from infra.settings import Settings, get_settings
from infra.stripe_api import connect_stripe
from infra.telemetry import WORKER_SERVICE, start_telemetry, worker_runtime
from infra.temporal import connect_temporal, data_converter, payload_codec
from notifications.dispatcher import MailDispatcher
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.reconcile_checkouts import ReconcileCheckoutsWorkflow
from workflows.reconcile_schedule import ensure_reconcile_schedule
from workflows.reconcile_types import RECONCILE_SCHEDULE_ID

log = logging.getLogger("worker")

# Modules the sandbox hands to every workflow run as the worker imported them, rather than
# importing them again for each new run: deterministic, and holding no state a run could
# change. pydantic, pydantic_core and annotated_types the SDK passes through already; the
# stripe SDK is large, and imported with the activities only; `domain` is our pure rules. The
# saga's own module is still loaded afresh for each run, as the sandbox means it to be; what
# it imports comes through `workflow.unsafe.imports_passed_through()`
# (tests/workflows/test_sandbox.py replays every recorded shape holding it to that).
SANDBOX_RESTRICTIONS = SandboxRestrictions.default.with_passthrough_modules(
    "pydantic", "pydantic_core", "annotated_types", "stripe", "domain"
)


def workflow_runner(
    restrictions: SandboxRestrictions = SANDBOX_RESTRICTIONS,
) -> SandboxedWorkflowRunner:
    """The sandbox every worker and replayer of this service runs workflows in."""
    return SandboxedWorkflowRunner(restrictions=restrictions)


def write_workflow_bytecode(*packages: ModuleType) -> bool:
    """Writes the bytecode of these packages' modules where it is missing or stale.

    The sandbox imports a workflow's module afresh for every run. Without bytecode beside the
    source (PYTHONDONTWRITEBYTECODE, or a checkout no import wrote it for), every one of those
    imports compiles the source: 1.8 ms of CPU per run for the saga's module instead of 0.7.
    Written here whatever PYTHONDONTWRITEBYTECODE says; where the folder is read-only the
    package was installed, and pip wrote its bytecode then. False when some could not be
    written."""
    written = True
    for package in packages:
        assert package.__file__ is not None
        written &= bool(compileall.compile_dir(Path(package.__file__).parent, quiet=2))
    return written


def build_worker(
    client: Client, settings: Settings, sessions: SessionFactory, stripe_client: StripeClient
) -> Worker:
    """The worker with its activities bound to real clients, built once per process."""
    announcer = Announcer(settings.mail_from)
    inventory = Inventory(sessions, announcer)
    payments = StripePayments(stripe_client, sessions, announcer, settings.idempotency_prefix)
    reads = ReconcileReads(client, sessions, stripe_client, settings.idempotency_prefix)
    repairs = ReconcileRepairs(client, sessions, stripe_client, settings)
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[PaymentSagaWorkflow, ReconcileCheckoutsWorkflow],
        activities=[
            inventory.reserve_artwork,
            inventory.record_decline,
            inventory.complete_sale,
            inventory.reopen_bidding,
            inventory.recorded_payment_intent,
            inventory.extend_payment_deadline,
            payments.open_payment_intent,
            payments.retrieve_payment_intent,
            payments.cancel_payment_intent,
            reads.list_recent_intents,
            reads.read_intents,
            reads.read_checkouts,
            reads.describe_sagas,
            repairs.restart_saga,
            repairs.notify_saga,
            repairs.cancel_intent,
            repairs.record_report,
        ],
        workflow_runner=workflow_runner(),
        # Each checkout waiting for its buyer stays in memory (about 90 KiB): one evicted
        # replays its whole history, in a new sandbox, for its next signal or timer.
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        # On SIGTERM, activities in flight get this long to finish before the worker exits.
        graceful_shutdown_timeout=timedelta(seconds=20),
    )


def build_dispatcher(settings: Settings, sessions: SessionFactory) -> MailDispatcher:
    """The mail dispatcher that runs beside the worker: the emails never wait on a saga's
    activity, and no activity ever waits on the mail server."""
    return MailDispatcher(settings, sessions)


async def main() -> None:
    settings = get_settings()
    settings.refuse_development_secrets("stripe_secret_key")
    codec = payload_codec(settings)  # before anything starts: no keys, no worker
    if not write_workflow_bytecode(workflows):
        log.info("Could not write the workflows' bytecode: each run compiles their source")
    engine = create_engine(
        settings.require_database_url(),
        pool_size=settings.database_pool_size,
        pool_timeout_seconds=settings.database_pool_timeout_seconds,
    )
    stripe_connection = connect_stripe(settings)
    telemetry = start_telemetry(settings, WORKER_SERVICE)
    client = await connect_temporal(
        settings,
        data_converter(settings, codec),
        runtime=worker_runtime(settings),
        interceptors=telemetry.temporal_interceptors(),
    )
    await ensure_search_attributes(client, settings.temporal_namespace)
    sessions = session_factory(engine)
    worker = build_worker(client, settings, sessions, stripe_connection.client)
    await ensure_reconcile_schedule(client, settings)
    log.info(
        "Reconciliation scheduled every %d minutes (schedule %s)",
        settings.reconcile_interval_minutes,
        RECONCILE_SCHEDULE_ID,
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    log.info(
        "Worker polling %s on %s (namespace %s), payloads encrypted with key %s",
        settings.temporal_task_queue,
        settings.temporal_address,
        settings.temporal_namespace,
        codec.key_id,
    )
    if settings.worker_metrics_port:
        log.info(
            "Metrics on http://%s:%d/metrics",
            settings.worker_metrics_host,
            settings.worker_metrics_port,
        )
    if telemetry.tracing:
        log.info("Traces to %s as %s", settings.otel_exporter_otlp_endpoint, telemetry.service_name)
    # The mail has a pool of its own: sends and retries never wait for the activities'
    # connections, nor the activities for theirs.
    mail_engine = create_engine(
        settings.require_database_url(),
        pool_size=2,
        pool_timeout_seconds=settings.database_pool_timeout_seconds,
    )
    async with AsyncExitStack() as running:
        running.push_async_callback(mail_engine.dispose)
        await running.enter_async_context(worker)
        if settings.mail_dispatcher:
            dispatcher = build_dispatcher(settings, session_factory(mail_engine))
            await running.enter_async_context(dispatcher)
        else:
            log.info("Mail dispatcher off (MAIL_DISPATCHER=false): emails stay queued")
        await stop.wait()
        log.info("Stopping: finishing activities and emails in flight")
    await stripe_connection.aclose()
    await engine.dispose()
    telemetry.shutdown()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvloop.run(main())
