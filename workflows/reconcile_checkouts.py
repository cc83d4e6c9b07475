"""ReconcileCheckoutsWorkflow: the database, Stripe and Temporal compared, drift repaired.

Run by the schedule `reconcile-checkouts` (see `workflows/reconcile_schedule.py`), or by an
operator. One run reads, in this order: this deployment's recent intents at Stripe, the
checkouts they name and every undecided one in the database, the sagas of those that may
need a repair; then the database and the intents concerned once more, so that a saga that
moved on meanwhile is seen as it is now (a saga writes Stripe, then the database, then
completes). What is wrong is judged by `domain/reconciliation.py`; the safe repairs are
made one by one, each looking again before it acts. Running it twice in a row repairs
nothing the second time: what remains are the findings only an operator can act on.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.reconcile_contracts import (
        DescribeSagas,
        ListIntents,
        ReadCheckouts,
        ReadIntents,
        RepairRequest,
    )
    from activities.reconcile_reads import ReconcileReads
    from activities.reconcile_repairs import ReconcileRepairs
    from domain.reconciliation import (
        CheckoutRow,
        Finding,
        IntentSeen,
        Repair,
        assess,
        bids_to_look_at,
        intents_to_read_again,
    )
    from workflows.reconcile_types import (
        Action,
        ActionOutcome,
        ReconcileInput,
        ReconcileResult,
    )

# A run that cannot read one of the three views fails after a few minutes; the schedule's
# next run starts afresh.
READ_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=5),
    "heartbeat_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=8),
}
# A repair that keeps failing is reported as failed; its finding is found again next run.
REPAIR_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=5),
}
_REPAIRS = {
    Repair.RESTART_SAGA: ReconcileRepairs.restart_saga,
    Repair.NOTIFY_SAGA: ReconcileRepairs.notify_saga,
    Repair.CANCEL_INTENT: ReconcileRepairs.cancel_intent,
}


@workflow.defn
class ReconcileCheckoutsWorkflow:
    @workflow.run
    async def run(self, request: ReconcileInput) -> ReconcileResult:
        started = workflow.now()
        since = started - timedelta(days=request.intents_created_within_days)
        limits: list[str] = []

        listing = await workflow.execute_activity_method(
            ReconcileReads.list_recent_intents,
            ListIntents(int(since.timestamp()), request.max_intents),
            summary="List this deployment's recent PaymentIntents at Stripe",
            **READ_OPTIONS,
        )
        if listing.truncated:
            limits.append(
                f"listed {listing.listed} intents at Stripe (max_intents) before reaching "
                f"{since.isoformat()}: older ones were not looked at"
            )
        first = await workflow.execute_activity_method(
            ReconcileReads.read_checkouts,
            ReadCheckouts(sorted({i.bid_id for i in listing.intents}), request.max_checkouts),
            summary="Read the undecided checkouts and those the intents name",
            **READ_OPTIONS,
        )
        if first.truncated:
            limits.append(
                f"more than {request.max_checkouts} undecided checkouts (max_checkouts): "
                "those of the newest bids were not looked at"
            )
        bids = bids_to_look_at(first.rows, listing.intents)
        sagas = await workflow.execute_activity_method(
            ReconcileReads.describe_sagas,
            DescribeSagas(bids),
            summary=f"Describe the sagas of {len(bids)} checkouts",
            **READ_OPTIONS,
        )
        rows, intents = await self._look_again(bids, first.rows, listing.intents)
        findings = assess(
            rows,
            intents,
            {saga.bid_id: saga for saga in sagas.sagas},
            first.reserved_without_winner,
            now=int(workflow.now().timestamp()),
            orphan_grace_seconds=request.orphan_grace_minutes * 60,
        )
        actions = [] if request.dry_run else await self._repair(findings, request, limits)
        result = ReconcileResult(
            started_at=started,
            dry_run=request.dry_run,
            intents_created_since=since,
            intents_examined=len(listing.intents),
            checkouts_examined=len(rows),
            sagas_described=len(sagas.sagas),
            findings=findings,
            actions=actions,
            finding_counts=dict(sorted(Counter(f.kind.value for f in findings).items())),
            action_counts=dict(
                sorted(Counter(f"{a.repair.value}:{a.outcome.value}" for a in actions).items())
            ),
            limits_reached=limits,
        )
        await workflow.execute_activity_method(
            ReconcileRepairs.record_report,
            result,
            summary="Log the findings and actions",
            **READ_OPTIONS,
        )
        return result

    async def _look_again(
        self, bids: list[int], rows: list[CheckoutRow], intents: list[IntentSeen]
    ) -> tuple[list[CheckoutRow], list[IntentSeen]]:
        """The checkouts and intents that may need a repair, read after their sagas."""
        again = await workflow.execute_activity_method(
            ReconcileReads.read_checkouts,
            ReadCheckouts(bids),
            summary="Read the checkouts concerned again",
            **READ_OPTIONS,
        )
        fresh_rows = {row.bid_id: row for row in rows} | {row.bid_id: row for row in again.rows}
        current = list(fresh_rows.values())
        reread = await workflow.execute_activity_method(
            ReconcileReads.read_intents,
            ReadIntents(intents_to_read_again(current, intents)),
            summary="Read the intents concerned again at Stripe",
            **READ_OPTIONS,
        )
        gone = set(reread.missing)
        fresh = {i.payment_intent_id: i for i in intents if i.payment_intent_id not in gone}
        fresh |= {i.payment_intent_id: i for i in reread.intents}
        return current, list(fresh.values())

    async def _repair(
        self, findings: list[Finding], request: ReconcileInput, limits: list[str]
    ) -> list[Action]:
        repairable = [f for f in findings if f.repair is not None]
        if len(repairable) > request.max_repairs:
            limits.append(
                f"{len(repairable) - request.max_repairs} repairs left for the next run "
                "(max_repairs)"
            )
        actions = []
        for finding in repairable[: request.max_repairs]:
            assert finding.repair is not None
            try:
                outcome = await workflow.execute_activity_method(
                    _REPAIRS[finding.repair],
                    RepairRequest(
                        finding,
                        reconciliation_run=workflow.info().run_id,
                        orphan_grace_seconds=request.orphan_grace_minutes * 60,
                    ),
                    summary=f"{finding.repair.value} for bid {finding.bid_id}",
                    **REPAIR_OPTIONS,
                )
            except ActivityError as failed:
                cause = failed.cause or failed
                workflow.logger.error("Repair %s failed: %s", finding, cause)
                actions.append(_action(finding, ActionOutcome.FAILED, str(cause)))
                continue
            done = ActionOutcome.DONE if outcome.done else ActionOutcome.SKIPPED
            actions.append(_action(finding, done, outcome.detail))
        return actions


def _action(finding: Finding, outcome: ActionOutcome, detail: str) -> Action:
    assert finding.repair is not None
    return Action(finding.repair, outcome, detail, finding.bid_id, finding.payment_intent_id)
