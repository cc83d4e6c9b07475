"""PaymentSagaWorkflow: one winning bid, turned into a sale or given back to the auction."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        PERMANENT_ERRORS,
        IntentSnapshot,
        OpenPaymentIntent,
        PaymentIntentRef,
        RecordDecline,
        ReserveArtwork,
        SettleCheckout,
    )
    from activities.inventory import Inventory
    from activities.stripe_payments import StripePayments
    from domain.checkout import IntentState, PaymentStatus, intent_state
    from domain.money import FeeSchedule, MoneyError, charge_for
    from domain.stripe_events import PaymentEventKind
    from workflows.types import (
        AwaitCheckout,
        AwaitedStage,
        CancelCheckout,
        CheckoutPhase,
        CheckoutStatus,
        PaymentSagaInput,
        StripeEventSignal,
    )

# Transient failures (network, Stripe 5xx, database) are retried for as long as it takes;
# the errors no retry can fix are named so Temporal gives up on them at once.
RETRY_TRANSIENT = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=list(PERMANENT_ERRORS),
)
ACTIVITY_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RETRY_TRANSIENT,
}
# An intent still processing at the deadline may yet succeed: look at it again this often.
SETTLE_RECHECK = timedelta(seconds=30)


@dataclass(frozen=True)
class _Paid:
    charge_id: str | None


@workflow.defn
class PaymentSagaWorkflow:
    @workflow.init
    def __init__(self, saga: PaymentSagaInput) -> None:
        self._saga = saga
        self._status = CheckoutStatus(
            phase=CheckoutPhase.RESERVING,
            bid_id=saga.bid_id,
            artwork_id=saga.artwork_id,
            buyer_id=saga.buyer_id,
            currency=saga.currency,
            hammer_price=saga.hammer_price,
        )
        self._inbox: list[StripeEventSignal] = []
        self._seen_event_ids: set[str] = set()
        self._cancel_request: CancelCheckout | None = None

    @workflow.run
    async def run(self, saga: PaymentSagaInput) -> CheckoutStatus:
        failure: ActivityError | None = None
        try:
            await self._checkout()
        except ActivityError as permanent:
            # Waiting callers learn of it at once, and the run fails visibly for operators.
            failure = permanent
            self._status.error = str(permanent.cause or permanent)
            self._show(CheckoutPhase.FAILED)
        # Updates waiting on this checkout get their answer before the workflow closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        if failure is not None:
            raise ApplicationError(
                f"checkout failed: {self._status.error}", non_retryable=True
            ) from failure
        return self._status

    @workflow.signal
    def stripe_event(self, event: StripeEventSignal) -> None:
        if event.event_id in self._seen_event_ids:
            workflow.logger.info("Stripe event %s already received", event.event_id)
            return
        self._seen_event_ids.add(event.event_id)
        if self._status.phase.is_final:
            workflow.logger.info("Stripe event %s after the checkout ended", event.event_id)
            return
        self._inbox.append(event)

    @workflow.query
    def status(self) -> CheckoutStatus:
        return self._status

    @workflow.update
    async def await_checkout(self, request: AwaitCheckout) -> CheckoutStatus:
        await workflow.wait_condition(lambda: self._has_reached(request.stage))
        return self._status

    @workflow.update
    async def cancel_checkout(self, request: CancelCheckout) -> CheckoutStatus:
        """For operators: end the checkout now and put the artwork back on sale."""
        if self._cancel_request is None:
            self._cancel_request = request
        await workflow.wait_condition(lambda: self._status.phase.is_final)
        return self._status

    @cancel_checkout.validator
    def _accept_cancel(self, request: CancelCheckout) -> None:
        if self._status.phase.is_final:
            raise ValueError(f"the checkout already ended: {self._status.phase.value}")
        if not request.reason.strip():
            raise ValueError("a reason is required to cancel a checkout")

    # The business steps.

    async def _checkout(self) -> None:
        saga = self._saga
        try:
            charge = charge_for(
                saga.hammer_price, saga.currency, FeeSchedule(saga.fee_percent, saga.fee_fixed)
            )
        except MoneyError as refused:
            self._end(CheckoutPhase.REJECTED, rejection_reason=str(refused))
            return
        reservation = await workflow.execute_activity_method(
            Inventory.reserve_artwork,
            ReserveArtwork(artwork_id=saga.artwork_id, bid_id=saga.bid_id),
            summary="Reserve the artwork for the winning bid",
            **ACTIVITY_OPTIONS,
        )
        if not reservation.reserved:
            self._end(CheckoutPhase.REJECTED, rejection_reason=reservation.reason)
            return

        deadline = workflow.now() + timedelta(seconds=saga.payment_timeout_seconds)
        self._status.amount, self._status.fee_amount = charge.total, charge.processing_fee
        self._show(CheckoutPhase.OPENING_PAYMENT)
        opened = await workflow.execute_activity_method(
            StripePayments.open_payment_intent,
            OpenPaymentIntent(
                workflow_id=workflow.info().workflow_id,
                bid_id=saga.bid_id,
                artwork_id=saga.artwork_id,
                buyer_id=saga.buyer_id,
                amount=charge.total,
                amount_minor=charge.total_minor,
                fee_amount=charge.processing_fee,
                currency=charge.currency,
                expires_at=deadline,
            ),
            summary=f"Create the PaymentIntent for {charge.total} {charge.currency.upper()}",
            **ACTIVITY_OPTIONS,
        )
        deadline = opened.expires_at or deadline
        self._status.expires_at = deadline
        self._status.payment_id = opened.payment_id
        self._status.payment_intent_id = opened.payment_intent_id
        self._status.client_secret = opened.client_secret
        self._show(CheckoutPhase.AWAITING_PAYMENT)

        # A restarted saga may find its intent already decided: settle it without waiting.
        already_decided = intent_state(opened.stripe_status) is not IntentState.OPEN
        paid = await self._collect_payment(workflow.now() if already_decided else deadline)
        settle = SettleCheckout(
            bid_id=saga.bid_id,
            artwork_id=saga.artwork_id,
            payment_intent_id=opened.payment_intent_id,
            charge_id=paid.charge_id if paid else None,
        )
        if paid is not None:
            await workflow.execute_activity_method(
                Inventory.complete_sale, settle, summary="Record the sale", **ACTIVITY_OPTIONS
            )
            self._end(CheckoutPhase.SOLD)
        else:
            cancel = self._cancel_request
            if cancel is not None:
                settle = replace(
                    settle,
                    unpaid_status=PaymentStatus.CANCELED,
                    reason=f"canceled by {cancel.requested_by}: {cancel.reason}",
                )
            await workflow.execute_activity_method(
                Inventory.reopen_bidding,
                settle,
                summary=f"Mark the payment {settle.unpaid_status} and reopen bidding",
                **ACTIVITY_OPTIONS,
            )
            self._end(CheckoutPhase.REOPENED if cancel is None else CheckoutPhase.CANCELED)

    async def _collect_payment(self, deadline: datetime) -> _Paid | None:
        """Paid (with its charge), or None once Stripe confirms no money can arrive."""
        while True:
            paid = await self._wait_for_buyer(deadline)
            if paid is not None and paid.charge_id is not None:
                return paid
            self._show(CheckoutPhase.SETTLING)
            # Never trust the clock alone: Stripe may have taken the money just now.
            snapshot = await self._ask_stripe(StripePayments.retrieve_payment_intent)
            if intent_state(snapshot.stripe_status) is IntentState.OPEN:
                snapshot = await self._ask_stripe(StripePayments.cancel_payment_intent)
            state = intent_state(snapshot.stripe_status)
            if state is IntentState.PAID:
                return _Paid(snapshot.charge_id)
            if state is IntentState.CANCELED:
                return None
            deadline = workflow.now() + SETTLE_RECHECK

    async def _wait_for_buyer(self, deadline: datetime) -> _Paid | None:
        """Processes Stripe's events until a success, a cancellation or the deadline.

        Events already received are processed before an operator's cancel is honoured.
        """
        while True:
            while self._inbox:
                event = self._inbox.pop(0)
                if event.payment_intent_id != self._status.payment_intent_id:
                    workflow.logger.warning(
                        "Ignoring event %s for another PaymentIntent %s",
                        event.event_id,
                        event.payment_intent_id,
                    )
                    continue
                if event.kind is PaymentEventKind.SUCCEEDED:
                    self._status.attempts += 1
                    return _Paid(event.charge_id)
                if event.kind is PaymentEventKind.CANCELED:
                    return None
                await self._record_decline(event)
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0) or self._cancel_request is not None:
                return None
            try:
                await workflow.wait_condition(
                    lambda: bool(self._inbox) or self._cancel_request is not None,
                    timeout=remaining,
                    timeout_summary="payment deadline",
                )
            except TimeoutError:
                return None

    async def _record_decline(self, event: StripeEventSignal) -> None:
        self._status.attempts += 1
        self._status.failure_reason = event.failure_reason or "payment failed"
        await workflow.execute_activity_method(
            Inventory.record_decline,
            RecordDecline(
                bid_id=self._saga.bid_id,
                failure_reason=self._status.failure_reason,
                declines=self._status.attempts,
                event_id=event.event_id,
            ),
            summary="Record a declined payment attempt",
            **ACTIVITY_OPTIONS,
        )
        self._show(CheckoutPhase.AWAITING_PAYMENT)

    async def _ask_stripe(self, activity: Any) -> IntentSnapshot:
        intent_id = self._status.payment_intent_id
        assert intent_id is not None
        snapshot: IntentSnapshot = await workflow.execute_activity_method(
            activity, PaymentIntentRef(payment_intent_id=intent_id), **ACTIVITY_OPTIONS
        )
        return snapshot

    # Bookkeeping.

    def _has_reached(self, stage: AwaitedStage) -> bool:
        if self._status.phase.is_final:
            return True
        if stage is AwaitedStage.RESERVED:
            return self._status.phase is not CheckoutPhase.RESERVING
        return self._status.payment_intent_id is not None

    def _end(self, phase: CheckoutPhase, rejection_reason: str | None = None) -> None:
        self._status.rejection_reason = rejection_reason
        self._show(phase)

    def _show(self, phase: CheckoutPhase) -> None:
        self._status.phase = phase
        status = self._status
        lines = [f"**{phase.value}**: bid {status.bid_id} on artwork {status.artwork_id}"]
        if status.amount is not None:
            lines.append(f"amount {status.amount} {status.currency.upper()}")
        if status.payment_intent_id:
            lines.append(f"PaymentIntent `{status.payment_intent_id}`")
        if status.expires_at and not phase.is_final:
            lines.append(f"deadline {status.expires_at.isoformat()}")
        if status.failure_reason:
            lines.append(f"last decline: {status.failure_reason} ({status.attempts} attempts)")
        if status.rejection_reason:
            lines.append(f"not reserved: {status.rejection_reason}")
        if status.error:
            lines.append(f"failed: {status.error}")
        if self._cancel_request is not None:
            request = self._cancel_request
            lines.append(f"cancel requested by {request.requested_by}: {request.reason}")
        workflow.set_current_details("\n\n".join(lines))
