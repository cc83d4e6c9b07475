"""The helpers the saga, its activities and the reconciliation record through."""

from __future__ import annotations

from temporalio import activity
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.testing import ActivityEnvironment

from infra.checkout_metrics import (
    RECONCILIATION_FINDINGS,
    CheckoutOutcome,
    count_reconciliation_finding,
    label_value,
)
from workflows.types import CheckoutPhase


def test_every_way_a_checkout_ends_is_an_outcome() -> None:
    final = {phase.value for phase in CheckoutPhase if phase.is_final}
    assert final == {outcome.value for outcome in CheckoutOutcome}


def test_label_values_from_outside_cannot_mint_series() -> None:
    assert label_value("card_declined") == "card_declined"
    assert label_value("Insufficient_Funds ") == "insufficient_funds"
    assert label_value(None) == label_value("  ") == "unknown"
    for odd in ("card declined", "x" * 49, "1abc", "é", "a-b", "{job}"):
        assert label_value(odd) == "other", odd


@activity.defn
async def reconcile() -> None:
    count_reconciliation_finding("intent_not_recorded", 2)
    count_reconciliation_finding("Amount Mismatch")
    count_reconciliation_finding("intent_not_recorded", 0)  # nothing found: nothing recorded


async def test_the_reconciliation_counts_its_findings_from_an_activity() -> None:
    buffer = MetricBuffer(1000)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    env = ActivityEnvironment()
    env.metric_meter = runtime.metric_meter
    await env.run(reconcile)
    updates = [
        (update.value, dict(update.attributes)["kind"])
        for update in buffer.retrieve_updates()
        if update.metric.name == RECONCILIATION_FINDINGS
    ]
    assert updates == [(2, "intent_not_recorded"), (1, "other")]


def test_outside_a_workflow_or_an_activity_nothing_is_recorded() -> None:
    count_reconciliation_finding("intent_not_recorded")  # no meter to record through: a no-op
