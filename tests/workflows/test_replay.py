"""Recorded histories of every shape the saga takes, replayed against the current code.

Checkouts in flight replay their history on the new code after a deploy: a change that
alters the saga's steps for an existing history (without `workflow.patched`) fails here.
Record them again on purpose, and only for a change no checkout in flight will meet, with
`make histories`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.worker import Replayer

from infra.temporal import data_converter
from tests.support.stack import codec_settings
from tests.workflows.conftest import HISTORIES
from worker import workflow_runner
from workflows.payment_saga import PaymentSagaWorkflow

SHAPES = frozenset(
    {
        "paid",
        "failed_attempt_then_paid",
        "expired",
        "paid_as_the_deadline_fired",
        "made_up_success_then_expired",
        "canceled_by_an_operator",
        "canceled_from_temporal",
        "canceled_while_processing",
        "processing_continued_as_new",
        "processing_then_paid_after_continue_as_new",
        "restarted_then_paid",
        "failed_before_the_intent",
        "failed_on_a_mismatched_payment",
        "failed_after_the_money_landed",
        # Recorded once the saga indexed itself (behind its patch) and took extensions.
        "deadline_extended_then_expired",
        "deadline_extended_then_paid",
        # Recorded with payloads encrypted (under the suite's replay-fixtures key).
        "restarted_and_canceled_while_reserving_canceled",
        "restarted_and_canceled_while_reserving_paid",
    }
)


def recorded() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def test_every_shape_of_the_saga_has_a_recorded_history() -> None:
    assert {path.stem for path in recorded()} == SHAPES


@pytest.fixture(scope="module")
def metrics() -> tuple[Runtime, MetricBuffer]:
    """A runtime for the replays, and what they record through it."""
    buffer = MetricBuffer(100_000)
    return Runtime(telemetry=TelemetryConfig(metrics=buffer)), buffer


# The worker replays with its client's interceptors (tracing, when it is on) and records
# metrics: neither may change a replay, and replayed code records nothing, so a checkout
# replayed after a restart is not counted twice.
@pytest.mark.parametrize("traced", [False, True], ids=["untraced", "traced"])
@pytest.mark.parametrize("path", recorded(), ids=lambda path: path.stem)
async def test_a_recorded_history_replays_with_the_current_code(
    path: Path, traced: bool, metrics: tuple[Runtime, MetricBuffer]
) -> None:
    runtime, buffer = metrics
    text = await asyncio.to_thread(path.read_text)
    history = WorkflowHistory.from_json(f"replay-{path.stem}", text)
    # The service's own converter: histories recorded before payloads were encrypted pass
    # through its codec unchanged.
    replayer = Replayer(
        workflows=[PaymentSagaWorkflow],
        data_converter=data_converter(codec_settings()),
        interceptors=[TracingInterceptor()] if traced else [],
        runtime=runtime,
        workflow_runner=workflow_runner(),
    )
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None, replayed.replay_failure
    recorded = {update.metric.name for update in buffer.retrieve_updates()}
    assert not {name for name in recorded if name.startswith("auction_")}, recorded
