"""The worker's own Prometheus series, recorded through Temporal's metric meter.

Workflow code records through `workflow.metric_meter()`, which records nothing while a
workflow replays its history, so a checkout replayed after a restart or a cache eviction is
not counted twice. Activity code records through `activity.metric_meter()`. Both land on the
Temporal runtime's Prometheus endpoint (WORKER_METRICS_PORT), beside the SDK's `temporal_*`
series, with the meter's own labels (`namespace`, `task_queue`, `workflow_type` or
`activity_type`, `service_name`). See docs/metrics.md for each series.

Only temporalio and the standard library are imported: workflows import this module through
the sandbox's pass-through, and activities of any package may use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum

from temporalio import activity, workflow
from temporalio.common import MetricMeter

CHECKOUTS = "auction_checkouts_total"
PAYMENT_SECONDS = "auction_payment_seconds"
DECLINES = "auction_payment_declines_total"
RECONCILIATION_FINDINGS = "auction_reconciliation_findings_total"

# From the intent being payable to the sale: seconds to the payment window (600 s by
# default) and beyond, for sales settled after the window closed.
PAYMENT_SECONDS_BUCKETS: Sequence[float] = (
    5,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    21600,
    86400,
)
HISTOGRAM_BUCKETS: Mapping[str, Sequence[float]] = {PAYMENT_SECONDS: PAYMENT_SECONDS_BUCKETS}

# A label value that came from outside (a decline code, a finding's kind) is kept only if it
# looks like an identifier: anything else would let one odd event mint a new series.
_LABEL_VALUE = re.compile(r"[a-z][a-z0-9_]{0,47}")
OTHER = "other"
UNKNOWN = "unknown"


class CheckoutOutcome(StrEnum):
    """How a checkout ended: the `outcome` label of auction_checkouts_total."""

    SOLD = "sold"
    REOPENED = "reopened"
    CANCELED = "canceled"
    REJECTED = "rejected"
    FAILED = "failed"


def count_checkout(outcome: CheckoutOutcome) -> None:
    """One checkout ended; from the workflow, once per checkout (never on replay)."""
    _meter().create_counter(
        CHECKOUTS, "Checkouts ended, by outcome (sold, reopened, canceled, rejected, failed)."
    ).add(1, {"outcome": outcome.value})


def observe_payment_seconds(seconds: float) -> None:
    """From the intent being payable to the sale, in seconds; from the workflow."""
    _meter().create_histogram_float(
        PAYMENT_SECONDS,
        "Seconds from the PaymentIntent becoming payable to the sale.",
        "s",
    ).record(max(seconds, 0.0))


def count_decline(code: str | None) -> None:
    """A declined payment attempt, recorded once; `code` is Stripe's decline code."""
    _meter().create_counter(DECLINES, "Declined payment attempts, by Stripe's code.").add(
        1, {"code": label_value(code)}
    )


def count_reconciliation_finding(kind: str, count: int = 1) -> None:
    """For the reconciliation: `count` findings of `kind` (e.g. `intent_not_recorded`).

    Callable from a workflow (replay-safe) or an activity; outside both it records nothing.
    """
    if count > 0:
        _meter().create_counter(
            RECONCILIATION_FINDINGS, "Discrepancies the reconciliation found, by kind."
        ).add(count, {"kind": label_value(kind)})


def label_value(raw: str | None) -> str:
    if raw is None or not raw.strip():
        return UNKNOWN
    lowered = raw.strip().lower()
    return lowered if _LABEL_VALUE.fullmatch(lowered) else OTHER


def _meter() -> MetricMeter:
    if workflow.in_workflow():
        return workflow.metric_meter()
    if activity.in_activity():
        return activity.metric_meter()
    return MetricMeter.noop
