"""The checkout's steps, as the saga runs them: each activity, the buyer's window, settlement.

`PaymentSagaWorkflow` holds the state and the platform's concerns (handlers, failures,
cancellation); this base class holds what the checkout does with Stripe and the database.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

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
    from domain.checkout import IntentState, PaymentStatus, intent_state, payment_mismatch
    from domain.money import Charge, FeeSchedule, MoneyError, charge_for, to_minor_units
    from domain.stripe_events import PaymentEventKind
    from infra.checkout_metrics import CheckoutOutcome, count_checkout, observe_payment_seconds
    from workflows.details import render_details
    from workflows.failures import PAYMENT_MISMATCH, CheckoutFailure
    from workflows.search_attributes import keep_indexed
    from workflows.types import (
        CarriedCheckout,
        CheckoutPhase,
        CheckoutStatus,
        PaymentSagaInput,
        StripeEventSignal,
        WindowClosed,
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
# An intent still processing may yet succeed: look again after 30 s, then ever less often.
FIRST_RECHECK = timedelta(seconds=30)
LONGEST_RECHECK = timedelta(hours=1)
SEEN_EVENTS_CARRIED = 500


@dataclass(frozen=True)
class Paid:
    charge_id: str | None


class CheckoutSteps:
    _saga: PaymentSagaInput
    _status: CheckoutStatus
    _inbox: list[StripeEventSignal]
    _seen_event_ids: dict[str, None]
    _recheck: timedelta

    async def _reserve(self) -> Charge | None:
        saga = self._saga
        try:
            charge = charge_for(
                saga.hammer_price, saga.currency, FeeSchedule(saga.fee_percent, saga.fee_fixed)
            )
        except MoneyError as refused:
            self._end(CheckoutPhase.REJECTED, rejection_reason=str(refused))
            return None
        reservation = await workflow.execute_activity_method(
            Inventory.reserve_artwork,
            ReserveArtwork(artwork_id=saga.artwork_id, bid_id=saga.bid_id),
            summary="Reserve the artwork for the winning bid",
            **ACTIVITY_OPTIONS,
        )
        if not reservation.reserved:
            self._end(CheckoutPhase.REJECTED, rejection_reason=reservation.reason)
            return None
        return charge

    async def _open_and_wait_for_buyer(self, charge: Charge) -> Paid | None:
        saga = self._saga
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
                payment_window_seconds=saga.payment_timeout_seconds,
            ),
            summary=f"Create the PaymentIntent for {charge.total} {charge.currency.upper()}",
            **ACTIVITY_OPTIONS,
        )
        # The recorded row is the truth: a restarted saga keeps its amount, deadline, declines.
        status = self._status
        status.payment_id, status.payment_intent_id = opened.payment_id, opened.payment_intent_id
        status.amount, status.fee_amount = opened.amount, opened.fee_amount
        status.expires_at = opened.expires_at
        status.original_expires_at = opened.original_expires_at or opened.expires_at
        status.attempts, status.failure_reason = opened.declines, opened.failure_reason
        if status.cancel_request is not None:
            self._close_window(WindowClosed.CANCELED)  # the secret is never handed out
            return None
        if intent_state(opened.stripe_status) is not IntentState.OPEN:
            self._close_window(WindowClosed.DECIDED_AT_STRIPE)  # a restart after the fact
            return None
        status.client_secret = opened.client_secret
        self._show(CheckoutPhase.AWAITING_PAYMENT)
        return await self._buyer_window()

    async def _buyer_window(self) -> Paid | None:
        """Stripe's events until a verified payment, an operator's cancel or the deadline.

        Events received are processed before a cancel or the deadline is honoured. The
        deadline is the status's, read afresh each time: an operator's extension wakes the
        wait, which then runs to the new one.
        """
        while True:
            if await self._read_inbox():
                snapshot = await self._ask_stripe(StripePayments.retrieve_payment_intent)
                state = intent_state(snapshot.stripe_status)
                if state is IntentState.PAID:
                    return self._verified(snapshot)
                if state is IntentState.CANCELED:
                    self._close_window(WindowClosed.DECIDED_AT_STRIPE)
                    return None
                workflow.logger.warning(
                    "An event said %s was decided, but Stripe shows it %s: not believed",
                    snapshot.payment_intent_id,
                    snapshot.stripe_status,
                )
            if self._status.cancel_request is not None:
                self._close_window(WindowClosed.CANCELED)
                return None
            deadline = self._status.expires_at
            assert deadline is not None
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                self._close_window(WindowClosed.DEADLINE)
                return None
            # At the deadline the loop still reads what arrived with it, then closes the window.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    self._window_news(deadline),
                    timeout=remaining,
                    timeout_summary="payment deadline",
                )

    def _window_news(self, deadline: datetime) -> Callable[[], bool]:
        """What ends a wait in the buyer's window: an event, a cancel, the deadline moving."""
        return lambda: (
            bool(self._inbox)
            or self._status.cancel_request is not None
            or self._status.expires_at != deadline
        )

    async def _settle(self) -> Paid | None:
        """Asks Stripe until its answer is final: paid (verified), or canceled by us.

        An open intent is canceled; one still processing is asked again later, ever less
        often, and the run continues as new before its history grows long.
        """
        self._show(CheckoutPhase.SETTLING)
        while True:
            await self._read_inbox()  # late declines are still recorded
            snapshot = await self._ask_stripe(StripePayments.retrieve_payment_intent)
            if intent_state(snapshot.stripe_status) is IntentState.OPEN:
                snapshot = await self._ask_stripe(StripePayments.cancel_payment_intent)
            state = intent_state(snapshot.stripe_status)
            if state is IntentState.PAID:
                return self._verified(snapshot)
            if state is IntentState.CANCELED:
                return None
            self._note_processing()
            try:
                await workflow.wait_condition(
                    lambda: bool(self._inbox),
                    timeout=self._recheck,
                    timeout_summary="look at the processing PaymentIntent again",
                )
            except TimeoutError:
                self._recheck = min(self._recheck * 2, LONGEST_RECHECK)
            info = workflow.info()
            if (
                info.is_continue_as_new_suggested()
                or info.get_current_history_length() >= self._saga.history_event_limit
            ):
                await self._continue_as_new()

    async def _read_inbox(self) -> bool:
        """Records the declines received; True when an event says Stripe decided the intent."""
        decided = False
        while self._inbox:
            event = self._inbox.pop(0)
            if event.payment_intent_id != self._status.payment_intent_id:
                workflow.logger.warning(
                    "Ignoring event %s for another PaymentIntent %s",
                    event.event_id,
                    event.payment_intent_id,
                )
            elif event.kind is PaymentEventKind.FAILED:
                await self._record_decline(event)
            else:
                decided = True  # believed only once Stripe confirms it
        return decided

    def _verified(self, snapshot: IntentSnapshot) -> Paid:
        """The payment, once Stripe's intent is for exactly what we charge; never a sale else."""
        amount = self._status.amount
        assert amount is not None
        mismatch = payment_mismatch(
            to_minor_units(amount, self._status.currency),
            self._status.currency,
            snapshot.amount_minor,
            snapshot.currency,
        )
        if mismatch is not None:
            raise CheckoutFailure(
                PAYMENT_MISMATCH,
                f"PaymentIntent {snapshot.payment_intent_id} succeeded with {mismatch}",
                reason=f"payment mismatch: {mismatch}",
            )
        self._status.attempts += 1
        return Paid(snapshot.charge_id)

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
                failure_code=event.failure_code,
            ),
            summary="Record a declined payment attempt",
            **ACTIVITY_OPTIONS,
        )
        self._show(self._status.phase)

    async def _record_sale(self, paid: Paid) -> None:
        self._observe_time_to_pay()
        await workflow.execute_activity_method(
            Inventory.complete_sale,
            self._settlement(charge_id=paid.charge_id),
            summary="Record the sale",
            **ACTIVITY_OPTIONS,
        )

    async def _reopen(
        self, unpaid: PaymentStatus, reason: str | None, public_reason: str | None = None
    ) -> None:
        await workflow.execute_activity_method(
            Inventory.reopen_bidding,
            self._settlement(unpaid_status=unpaid, reason=reason, public_reason=public_reason),
            summary=f"Mark the payment {unpaid} and reopen bidding",
            **ACTIVITY_OPTIONS,
        )

    def _settlement(self, **outcome: Any) -> SettleCheckout:
        return SettleCheckout(
            bid_id=self._saga.bid_id,
            artwork_id=self._saga.artwork_id,
            payment_intent_id=self._status.payment_intent_id,
            **outcome,
        )

    async def _ask_stripe(self, activity: Any) -> IntentSnapshot:
        intent_id = self._status.payment_intent_id
        assert intent_id is not None
        snapshot: IntentSnapshot = await workflow.execute_activity_method(
            activity, PaymentIntentRef(payment_intent_id=intent_id), **ACTIVITY_OPTIONS
        )
        return snapshot

    # Bookkeeping.

    def _note_processing(self) -> None:
        status, now = self._status, workflow.now()
        if status.processing_since is None:
            status.processing_since = now
        alert_after = timedelta(seconds=self._saga.processing_alert_seconds)
        if status.attention is None and now - status.processing_since >= alert_after:
            status.attention = (
                f"PaymentIntent {status.payment_intent_id} has been processing since "
                f"{status.processing_since.isoformat()}: look at it in Stripe"
            )
            workflow.logger.warning("Checkout of bid %s: %s", status.bid_id, status.attention)
        self._show(CheckoutPhase.SETTLING)

    def _close_window(self, why: WindowClosed) -> None:
        if self._status.window_closed is None:
            self._status.window_closed = why
        self._status.client_secret = None
        self._show(CheckoutPhase.SETTLING)

    def _cancel_reason(self) -> str:
        request = self._status.cancel_request
        assert request is not None
        return f"canceled by {request.requested_by}: {request.reason}"

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        carried = CarriedCheckout(
            status=self._status,
            inbox=self._inbox,
            seen_event_ids=list(self._seen_event_ids)[-SEEN_EVENTS_CARRIED:],
            recheck_seconds=int(self._recheck.total_seconds()),
        )
        workflow.continue_as_new(replace(self._saga, carried=carried))

    def _end(self, phase: CheckoutPhase, rejection_reason: str | None = None) -> None:
        self._status.rejection_reason = rejection_reason
        self._status.client_secret = None
        self._show(phase)
        count_checkout(CheckoutOutcome(phase.value))

    def _observe_time_to_pay(self) -> None:
        """The buyer's time to pay: the first deadline is the moment the intent became payable
        plus the window (operators' extensions come on top), so that moment survives restarts
        and continue-as-new with the status."""
        first_deadline = self._status.original_expires_at or self._status.expires_at
        if first_deadline is None:
            return
        payable_at = first_deadline - timedelta(seconds=self._saga.payment_timeout_seconds)
        observe_payment_seconds((workflow.now() - payable_at).total_seconds())

    def _show(self, phase: CheckoutPhase) -> None:
        self._status.phase = phase
        workflow.set_current_details(render_details(self._status))
        keep_indexed(self._saga, self._status)
