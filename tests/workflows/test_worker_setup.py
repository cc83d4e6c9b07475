"""How the worker runs workflows: in the sandbox every worker and replayer shares, where a
new run loads nothing afresh but the saga's own module (from bytecode, not by compiling it),
and with the cache and concurrency its settings give it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import stripe
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import worker
from infra.db import SessionFactory
from infra.settings import Settings
from infra.temporal import data_converter
from tests.support.stack import codec_settings
from tests.workflows.test_replay import recorded
from worker import SANDBOX_RESTRICTIONS, build_worker, workflow_runner
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.reconcile_checkouts import ReconcileCheckoutsWorkflow

# The sandbox refuses, rather than loads afresh, any module a run imports that is not passed
# through: with it, a module loaded again for each new run fails the replay below.
ONLY_PASSED_THROUGH = SANDBOX_RESTRICTIONS.with_import_notification_policy(
    workflow.SandboxImportNotificationPolicy.RAISE_ON_UNINTENTIONAL_PASSTHROUGH
)


async def test_a_run_loads_nothing_afresh_but_the_sagas_own_module() -> None:
    replayer = Replayer(
        # Registered, each workflow's module is loaded once in the sandbox to check it.
        workflows=[PaymentSagaWorkflow, ReconcileCheckoutsWorkflow],
        data_converter=data_converter(codec_settings()),
        workflow_runner=workflow_runner(ONLY_PASSED_THROUGH),
    )
    for path in recorded():
        text = await asyncio.to_thread(path.read_text)
        history = WorkflowHistory.from_json(f"sandbox-{path.stem}", text)
        replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert replayed.replay_failure is None, (path.stem, replayed.replay_failure)


async def test_the_worker_runs_in_the_shared_sandbox_with_its_settings(
    temporal_dev: WorkflowEnvironment, sessions: SessionFactory
) -> None:
    settings = Settings(
        worker_max_cached_workflows=15_000,
        worker_max_concurrent_workflow_tasks=8,
        worker_max_concurrent_activities=40,
    )
    worker = build_worker(
        temporal_dev.client, settings, sessions, stripe.StripeClient("sk_test_not_called")
    )
    config = worker.config()
    runner = config.get("workflow_runner")
    assert isinstance(runner, SandboxedWorkflowRunner)
    assert runner.restrictions == SANDBOX_RESTRICTIONS
    assert {"domain", "stripe", "pydantic"} <= runner.restrictions.passthrough_modules
    assert config.get("max_cached_workflows") == 15_000
    assert config.get("max_concurrent_workflow_tasks") == 8
    assert config.get("max_concurrent_activities") == 40
    # Eager activities stay on: a saga's next activity starts without a round trip to the
    # task queue.
    assert not config.get("disable_eager_activity_execution")


def test_the_default_cache_holds_the_checkouts_expected_to_wait_at_once() -> None:
    expected_waiting = 10_000
    assert Settings().worker_max_cached_workflows > expected_waiting


FRESH_IMPORTS = """
import importlib.util, sys
import workflows, worker

if sys.argv[1] == "written":
    assert worker.write_workflow_bytecode(workflows)

compiled = []
def count(event, args):
    if event == "compile" and str(args[1]).endswith("payment_saga.py"):
        compiled.append(args[1])
sys.addaudithook(count)
for _ in range(3):  # as the sandbox does for each new run
    spec = importlib.util.find_spec("workflows.payment_saga")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(len(compiled))
"""


def fresh_imports_compiling(tmp_path: Path, *, written: bool) -> int:
    """How many of three fresh imports of the saga's module compiled its source, with
    Python told not to write bytecode and no bytecode written before."""
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPYCACHEPREFIX": str(tmp_path / ("written" if written else "unwritten")),
    }
    done = subprocess.run(
        [sys.executable, "-c", FRESH_IMPORTS, "written" if written else "as-is"],
        cwd=Path(worker.__file__).parent,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.strip())


def test_runs_import_the_saga_from_bytecode_the_worker_wrote(tmp_path: Path) -> None:
    assert fresh_imports_compiling(tmp_path, written=False) == 3
    assert fresh_imports_compiling(tmp_path, written=True) == 0
