"""The reconciliation's public contract: its input, its result, its schedule's id."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from domain.reconciliation import Finding, Repair

RECONCILE_SCHEDULE_ID = "reconcile-checkouts"
# Set on the runs of a saga that reconciliation restarted: names the reconciliation run.
RESTARTED_BY_MEMO = "restarted_by_reconciliation"


@dataclass(frozen=True)
class ReconcileInput:
    """What one run looks at, and how much it may do. Every field has a default: the schedule
    starts runs with none given; an operator may start one with others (see the docs)."""

    dry_run: bool = False  # find and report, repair nothing
    # Stripe is listed back this far; older intents are not looked at.
    intents_created_within_days: int = 7
    max_intents: int = 2000  # listed at Stripe, ours or not
    max_checkouts: int = 1000  # undecided checkouts read from the database
    max_repairs: int = 100  # the rest waits for the next run
    # An intent no checkout records is left alone this long: it may be being created now.
    orphan_grace_minutes: int = 15


class ActionOutcome(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"  # looked at again just before acting, it no longer needed it
    FAILED = "failed"


@dataclass(frozen=True)
class Action:
    repair: Repair
    outcome: ActionOutcome
    detail: str
    bid_id: int | None = None
    payment_intent_id: str | None = None


@dataclass
class ReconcileResult:
    started_at: datetime
    dry_run: bool
    intents_created_since: datetime
    intents_examined: int  # this deployment's, in the window
    checkouts_examined: int
    sagas_described: int
    findings: list[Finding] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    # Counts by finding kind and by "repair:outcome": what metrics are made of.
    finding_counts: dict[str, int] = field(default_factory=dict)
    action_counts: dict[str, int] = field(default_factory=dict)
    # Bounds this run reached: what it did not look at, or left for the next run.
    limits_reached: list[str] = field(default_factory=list)
