"""PaymentSagaWorkflow: one winning bid, turned into a sale or given back to the auction.

Every run ends sold or reopened. The checkout goes through three stages: reserve and open
the PaymentIntent; the buyer's window, which ends with a payment, the deadline or an
operator's cancel; then settlement, where only Stripe's own answer counts. An error no retry
fixes, or a workflow cancellation from the UI, is folded into the same settlement, so neither
leaves an artwork reserved or an intent payable.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import BidRef, ExtendPaymentDeadline
    from activities.inventory import Inventory
    from domain.announcements import TECHNICAL_PROBLEM
    from domain.checkout import PaymentStatus
    from workflows.checkout_steps import ACTIVITY_OPTIONS, FIRST_RECHECK, CheckoutSteps, Paid
    from workflows.extensions import extension, extension_refusal
    from workflows.failures import (
        CHECKOUT_FAILED,
        PAYMENT_MISMATCH,
        CheckoutFailure,
        failure_of,
    )
    from workflows.types import (
        AwaitCheckout,
        AwaitedStage,
        CancelCheckout,
        CarriedCheckout,
        CheckoutPhase,
        CheckoutStatus,
        ExtendDeadline,
        PaymentSagaInput,
        StripeEventSignal,
        WindowClosed,
    )

TEMPORAL_CANCEL = CancelCheckout(
    reason="workflow cancellation requested in Temporal", requested_by="temporal"
)
# Replay: runs canceled while reserving before this change opened no lookup there.
CANCEL_SETTLES_RECORDED_INTENT = "cancel-settles-a-recorded-intent"
MISMATCH_TO_REFUND = "the mismatched payment must be refunded at Stripe by an operator"


@workflow.defn
class PaymentSagaWorkflow(CheckoutSteps):
    @workflow.init
    def __init__(self, saga: PaymentSagaInput) -> None:
        self._saga = saga
        carried = saga.carried or CarriedCheckout(
            status=CheckoutStatus(
                phase=CheckoutPhase.RESERVING,
                bid_id=saga.bid_id,
                artwork_id=saga.artwork_id,
                buyer_id=saga.buyer_id,
                currency=saga.currency,
                hammer_price=saga.hammer_price,
            ),
            recheck_seconds=int(FIRST_RECHECK.total_seconds()),
        )
        self._status = carried.status
        self._inbox: list[StripeEventSignal] = list(carried.inbox)
        self._seen_event_ids: dict[str, None] = dict.fromkeys(carried.seen_event_ids)
        self._recheck = timedelta(seconds=carried.recheck_seconds)

    @workflow.run
    async def run(self, saga: PaymentSagaInput) -> CheckoutStatus:
        # The checkout runs shielded: a cancellation from the UI or CLI becomes an operator's
        # cancel, and never interrupts a step halfway (an intent created but not recorded).
        checkout = asyncio.create_task(self._conduct())
        while True:
            try:
                return await asyncio.shield(checkout)
            except asyncio.CancelledError:
                if checkout.cancelled():
                    raise
                self._request_cancel(TEMPORAL_CANCEL)

    @workflow.signal
    def stripe_event(self, event: StripeEventSignal) -> None:
        if event.event_id in self._seen_event_ids:
            workflow.logger.info("Stripe event %s already received", event.event_id)
            return
        self._seen_event_ids[event.event_id] = None
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
        """For operators: end the checkout now and put the artwork back on sale.

        Answers once the checkout ended, or once only Stripe can still decide it (an intent
        still `processing`: the status says so).
        """
        self._request_cancel(request)
        await workflow.wait_condition(
            lambda: self._status.phase.is_final or self._status.processing_since is not None
        )
        return self._status

    @cancel_checkout.validator
    def _accept_cancel(self, request: CancelCheckout) -> None:
        if self._status.phase.is_final:
            raise ValueError(f"the checkout already ended: {self._status.phase.value}")
        if self._status.window_closed is not None:
            raise ValueError(
                f"the buyer's window already closed ({self._status.window_closed.value}); "
                "the checkout is settling with Stripe"
            )
        if not request.reason.strip():
            raise ValueError("a reason is required to cancel a checkout")

    @workflow.update
    async def extend_deadline(self, request: ExtendDeadline) -> CheckoutStatus:
        """For operators: give the buyer more time. The window runs to the new deadline at
        once; the answer comes once the payment's record shows it too."""
        status = self._status
        granted = extension(status, request, workflow.now())
        status.expires_at = granted.expires_at
        status.extensions.append(granted)
        self._show(status.phase)
        update = workflow.current_update_info()
        assert update is not None
        assert status.payment_intent_id is not None and status.original_expires_at is not None
        await workflow.execute_activity_method(
            Inventory.extend_payment_deadline,
            ExtendPaymentDeadline(
                bid_id=status.bid_id,
                payment_intent_id=status.payment_intent_id,
                extension_id=update.id,
                expires_at=granted.expires_at,
                original_expires_at=status.original_expires_at,
                minutes=granted.minutes,
                reason=granted.reason,
                requested_by=granted.requested_by,
                requested_at=granted.requested_at,
            ),
            summary=(
                f"Extend the payment deadline by {granted.minutes} min to "
                f"{granted.expires_at.isoformat()}, for {granted.requested_by}: "
                f"{granted.reason[:200]}"
            ),
            **ACTIVITY_OPTIONS,
        )
        return status

    @extend_deadline.validator
    def _accept_extension(self, request: ExtendDeadline) -> None:
        # The handler starts right after, with nothing in between: what passes here holds there.
        refusal = extension_refusal(
            self._status, request, self._saga.max_extension_minutes, workflow.now()
        )
        if refusal is not None:
            raise ValueError(refusal)

    # The platform's concerns: failures, and the end of the run.

    async def _conduct(self) -> CheckoutStatus:
        try:
            await self._checkout()
        except (ActivityError, CheckoutFailure) as error:
            await self._compensate(failure_of(error))
        # Updates waiting on this checkout get their answer before the workflow closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._status.phase is CheckoutPhase.FAILED:
            raise ApplicationError(
                f"checkout failed: {self._status.error}; {self._status.compensation}",
                type=CHECKOUT_FAILED,
                non_retryable=True,
            )
        return self._status

    async def _compensate(self, failure: CheckoutFailure) -> None:
        """Ends a checkout whose saga hit an error no retry fixes, as any other: money that
        landed is a sale, an open intent is canceled, and bidding reopens. The run then fails,
        for operators to see, with its status saying what was done."""
        workflow.logger.error("Checkout of bid %s failed: %s", self._saga.bid_id, failure.detail)
        self._status.error = failure.reason
        self._close_window(WindowClosed.FAILED)
        if self._status.payment_intent_id is None:
            await self._adopt("Look up an intent the failed step may have recorded")
        paid, at_stripe = None, None
        if self._status.payment_intent_id is None:
            at_stripe = "no PaymentIntent was opened"
        elif failure.kind == PAYMENT_MISMATCH:
            at_stripe = MISMATCH_TO_REFUND
        else:
            try:
                paid = await self._settle()
            except (ActivityError, CheckoutFailure) as error:
                unsettled = failure_of(error)
                workflow.logger.error("Could not settle with Stripe: %s", unsettled.detail)
                refund = unsettled.kind == PAYMENT_MISMATCH
                at_stripe = MISMATCH_TO_REFUND if refund else f"Stripe: {unsettled.reason}"
        await self._finish(paid, at_stripe=at_stripe)

    async def _adopt(
        self, summary: str = "Look up an intent an earlier run may have opened"
    ) -> bool:
        """Takes on the intent recorded for this bid, which this run did not open itself."""
        recorded = await workflow.execute_activity_method(
            Inventory.recorded_payment_intent,
            BidRef(self._saga.bid_id),
            summary=summary,
            **ACTIVITY_OPTIONS,
        )
        if recorded.payment_intent_id is None:
            return False
        status = self._status
        status.payment_intent_id = recorded.payment_intent_id
        if recorded.amount is not None:
            status.amount, status.fee_amount = recorded.amount, recorded.fee_amount
        return True

    def _request_cancel(self, request: CancelCheckout) -> None:
        if self._status.window_closed is not None or self._status.phase.is_final:
            workflow.logger.info("Cancel by %s after the window closed: ignored", request)
            return
        if self._status.cancel_request is None:
            self._status.cancel_request = request
            self._show(self._status.phase)

    # The business steps.

    async def _checkout(self) -> None:
        if self._status.phase is not CheckoutPhase.SETTLING:  # else carried over, settling
            charge = await self._reserve()
            if charge is None:
                return
            if self._status.cancel_request is not None:
                self._close_window(WindowClosed.CANCELED)
                # A restarted run may find the intent an earlier run opened, perhaps paid:
                # only Stripe says how that one ends, as for any other canceled checkout.
                if workflow.patched(CANCEL_SETTLES_RECORDED_INTENT) and await self._adopt():
                    await self._finish(await self._settle())
                else:
                    await self._finish(None)
                return
            paid = await self._open_and_wait_for_buyer(charge)
            if paid is not None:
                await self._finish(paid)
                return
        await self._finish(await self._settle())

    async def _finish(self, paid: Paid | None, at_stripe: str | None = None) -> None:
        """Records the outcome the window and Stripe decided: sold, or back on sale."""
        status = self._status
        failed = status.error is not None  # whenever it struck: in the window or settling
        if paid is not None:
            await self._record_sale(paid)
            status.compensation = "sold: the payment had landed" if failed else None
            self._end(CheckoutPhase.FAILED if failed else CheckoutPhase.SOLD)
            return
        await self._read_inbox()  # a decline that came in while we settled still counts
        if failed:
            await self._reopen(
                PaymentStatus.CANCELED, f"checkout failed: {status.error}", TECHNICAL_PROBLEM
            )
            landed = at_stripe or "the PaymentIntent is canceled"
            status.compensation = f"bidding reopened; {landed}"
            self._end(CheckoutPhase.FAILED)
        elif status.window_closed is WindowClosed.CANCELED:
            request = status.cancel_request
            assert request is not None
            await self._reopen(PaymentStatus.CANCELED, self._cancel_reason(), request.reason)
            self._end(CheckoutPhase.CANCELED)
        else:
            await self._reopen(PaymentStatus.EXPIRED, None)
            self._end(CheckoutPhase.REOPENED)

    def _has_reached(self, stage: AwaitedStage) -> bool:
        phase = self._status.phase
        if phase.is_final:
            return True
        if stage is AwaitedStage.RESERVED:
            return phase is not CheckoutPhase.RESERVING
        # Settlement usually ends within a second; one Stripe keeps processing may take days.
        return phase is CheckoutPhase.AWAITING_PAYMENT or self._status.processing_since is not None
