"""The reconciliation's hands: restart a saga, tell one it was paid, cancel an intent.

Each repair looks again first, in the order a saga writes (Temporal, then the database, then
Stripe), and acts only if the finding still stands: a saga that moved on since the
reconciliation looked is never overtaken. Each is safe to retry.

`record_report` is where a run's findings leave the workflow: logged here, one line each, so
metrics hang off this one place too.
"""

from __future__ import annotations

import logging
import time

import stripe
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.reconcile_contracts import RepairOutcome, RepairRequest
from activities.reconcile_reads import (
    ReconcileReads,
    checkout_rows,
    describe_saga,
    refused_by_stripe,
)
from domain.checkout import IntentState, intent_state
from domain.reconciliation import (
    Finding,
    IntentSeen,
    Repair,
    SagaState,
    checkout_finding,
    intent_finding,
)
from domain.stripe_events import PaymentEvent, PaymentEventKind
from infra.checkout_metrics import count_reconciliation_finding
from infra.db import SessionFactory
from infra.settings import Settings
from infra.tables import Artwork, Bid
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.reconcile_types import RESTARTED_BY_MEMO, ReconcileResult
from workflows.search_attributes import start_attributes
from workflows.starts import RESTART_FAILED_ONLY, saga_input, saga_summary
from workflows.types import saga_workflow_id

log = logging.getLogger("reconcile")

# Names the events reconciliation tells a saga, which no Stripe event id starts with.
NOTICE_EVENT_PREFIX = "reconcile:"


class ReconcileRepairs:
    def __init__(
        self,
        temporal: Client,
        sessions: SessionFactory,
        stripe_client: stripe.StripeClient,
        settings: Settings,
    ) -> None:
        self._temporal = temporal
        self._sessions = sessions
        self._intents = stripe_client.v1.payment_intents
        self._settings = settings
        self._reads = ReconcileReads(temporal, sessions, stripe_client, settings.idempotency_prefix)

    @activity.defn
    async def restart_saga(self, request: RepairRequest) -> RepairOutcome:
        """Starts the checkout's saga again under its id: it reuses the recorded intent and
        deadline, and settles at once what Stripe already decided."""
        bid_id = _bid_of(request.finding)
        saga, restarted_by = await describe_saga(self._temporal, bid_id)
        if saga.state is SagaState.RUNNING:
            if restarted_by == request.reconciliation_run:
                return RepairOutcome(True, "restarted (an earlier attempt of this repair)")
            return RepairOutcome(False, "its saga runs again: someone else restarted it")
        async with self._sessions() as session:
            row = (await checkout_rows(session, [bid_id])).get(bid_id)
            bid = await session.get(Bid, bid_id)
            artwork = await session.get(Artwork, bid.artwork_id) if bid else None
        now = checkout_finding(row, {}, saga) if row and row.undecided else None
        if now is None or now.repair is not Repair.RESTART_SAGA or bid is None or not artwork:
            return RepairOutcome(False, f"no longer needed: {now or 'the checkout is decided'}")
        checkout = saga_input(bid, artwork, self._settings)
        try:
            await self._temporal.start_workflow(
                PaymentSagaWorkflow.run,
                checkout,
                id=saga_workflow_id(bid_id),
                task_queue=self._settings.temporal_task_queue,
                id_reuse_policy=RESTART_FAILED_ONLY,
                memo={RESTARTED_BY_MEMO: request.reconciliation_run},
                static_summary=f"{saga_summary(checkout)} (restarted by reconciliation)",
                search_attributes=start_attributes(checkout),
            )
        except WorkflowAlreadyStartedError:
            return RepairOutcome(False, "another run started meanwhile, or the last completed")
        return RepairOutcome(True, f"restarted its saga (the last run was {saga.state.value})")

    @activity.defn
    async def notify_saga(self, request: RepairRequest) -> RepairOutcome:
        """Tells the running saga that Stripe holds its payment, as the lost webhook would
        have. The saga reads the intent itself before it believes anything."""
        bid_id = _bid_of(request.finding)
        intent_id = request.finding.payment_intent_id
        assert intent_id is not None
        async with self._sessions() as session:
            row = (await checkout_rows(session, [bid_id])).get(bid_id)
        if row is None or not row.waiting or row.payment_intent_id != intent_id:
            return RepairOutcome(False, "no longer needed: the checkout is decided")
        intent = await self._intent(intent_id)
        if intent is None or intent_state(intent.status) is not IntentState.PAID:
            return RepairOutcome(False, "no longer needed: Stripe does not show it paid")
        event = PaymentEvent(
            # One id per intent: the saga drops the same news told twice.
            event_id=f"{NOTICE_EVENT_PREFIX}{intent_id}:succeeded",
            kind=PaymentEventKind.SUCCEEDED,
            payment_intent_id=intent_id,
            created=intent.created,
            workflow_id=saga_workflow_id(bid_id),
            bid_id=bid_id,
            environment=self._settings.idempotency_prefix or None,
        )
        handle = self._temporal.get_workflow_handle(saga_workflow_id(bid_id))
        try:
            await handle.signal(PaymentSagaWorkflow.stripe_event, event)
        except RPCError as refused:
            if refused.status is RPCStatusCode.NOT_FOUND:
                return RepairOutcome(False, "its saga ended meanwhile")
            raise
        return RepairOutcome(True, "told its running saga that Stripe holds the payment")

    @activity.defn
    async def cancel_intent(self, request: RepairRequest) -> RepairOutcome:
        """Cancels an intent still payable for a decided checkout, or one no checkout records."""
        finding = request.finding
        bid_id, intent_id = _bid_of(finding), finding.payment_intent_id
        assert intent_id is not None
        saga, _ = await describe_saga(self._temporal, bid_id)
        async with self._sessions() as session:
            row = (await checkout_rows(session, [bid_id])).get(bid_id)
        intent = await self._intent(intent_id)
        if intent is None:
            return RepairOutcome(False, "Stripe no longer knows the intent")
        now = intent_finding(
            intent, row, saga, now=int(time.time()), grace=request.orphan_grace_seconds
        )
        if now is None or now.repair is not Repair.CANCEL_INTENT:
            return RepairOutcome(False, f"no longer needed: {now or f'it is {intent.status}'}")
        try:
            await self._intents.cancel_async(intent_id)
        except stripe.InvalidRequestError as refused:
            # Stripe refuses to cancel an intent that was paid or canceled meanwhile: what
            # happened is read from the intent, never from the error text.
            after = await self._intent(intent_id)
            status = after.status if after else "gone"
            if after is not None and intent_state(status) is IntentState.PAID:
                return RepairOutcome(False, "the buyer paid it meanwhile: reported next run")
            if status == "canceled":
                return RepairOutcome(False, "it was canceled meanwhile")
            raise ApplicationError(
                f"Stripe refused to cancel {intent_id} ({status}): {refused.user_message}"
            ) from refused
        return RepairOutcome(True, f"canceled at Stripe (it was {intent.status})")

    @activity.defn
    async def record_report(self, result: ReconcileResult) -> None:
        """Logs what the run found and did. The one place where a run's findings leave the
        workflow: metrics are counted here, from `result.finding_counts` and
        `result.action_counts`."""
        for finding in result.findings:
            if finding.kind.urgent:
                log.error("Reconciliation: %s", finding)
            else:
                log.warning("Reconciliation: %s", finding)
        for action in result.actions:
            log.info(
                "Reconciliation %s %s for bid %s: %s",
                action.repair.value,
                action.outcome.value,
                action.bid_id,
                action.detail,
            )
        for limit in result.limits_reached:
            log.warning("Reconciliation limit reached: %s", limit)
        if not result.dry_run:  # a dry run's findings are counted by the run that acts on them
            for kind, count in result.finding_counts.items():
                count_reconciliation_finding(kind, count)
        log.info(
            "Reconciliation%s: %d intents, %d checkouts, %d sagas looked at; found %s; did %s",
            " (dry run)" if result.dry_run else "",
            result.intents_examined,
            result.checkouts_examined,
            result.sagas_described,
            result.finding_counts or "nothing",
            result.action_counts or "nothing",
        )

    async def _intent(self, intent_id: str) -> IntentSeen | None:
        try:
            intent = await self._intents.retrieve_async(
                intent_id, params={"expand": ["latest_charge"]}
            )
        except stripe.InvalidRequestError as refused:
            if refused.http_status == 404:
                return None
            raise refused_by_stripe(refused) from refused
        return self._reads.seen(intent.to_dict())


def _bid_of(finding: Finding) -> int:
    if finding.bid_id is None:
        raise ApplicationError(f"a repair needs a bid: {finding}", non_retryable=True)
    return finding.bid_id
