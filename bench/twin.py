"""The saga's no-op twin: the same steps at Temporal, none of the work.

It is started and asked as the API starts and asks the saga (update-with-start at the close,
again at create-intent, with the same search attributes and summary), takes the same input,
signal and update, arms the same timer, upserts the same attributes at the same phases, runs
the same activities and returns the same status, all through the service's own payload
converter (pydantic and encryption). Its activities do nothing: what the saga costs beyond
it is our code, PostgreSQL, Stripe and the mail.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        IntentSnapshot,
        OpenedPaymentIntent,
        OpenPaymentIntent,
        PaymentIntentRef,
        RecordDecline,
        Reservation,
        ReserveArtwork,
        SettleCheckout,
    )
    from domain.money import FeeSchedule, charge_for
    from domain.stripe_events import PaymentEventKind
    from workflows.details import render_details
    from workflows.search_attributes import keep_indexed
    from workflows.types import (
        AwaitCheckout,
        AwaitedStage,
        CheckoutPhase,
        CheckoutStatus,
        PaymentSagaInput,
        StripeEventSignal,
    )

TWIN_WORKFLOW_PREFIX = "bench-twin-"
ACTIVITY_TIMEOUT = timedelta(seconds=30)


def twin_workflow_id(number: int) -> str:
    return f"{TWIN_WORKFLOW_PREFIX}{number}"


@activity.defn(name="twin_reserve_artwork")
async def reserve_artwork(request: ReserveArtwork) -> Reservation:
    return Reservation(reserved=True)


@activity.defn(name="twin_open_payment_intent")
async def open_payment_intent(request: OpenPaymentIntent) -> OpenedPaymentIntent:
    return OpenedPaymentIntent(
        payment_id=request.bid_id,
        payment_intent_id=f"pi_twin_{request.bid_id}",
        client_secret=f"pi_twin_{request.bid_id}_secret_twin",
        stripe_status="requires_payment_method",
        expires_at=datetime.fromtimestamp(0) + timedelta(seconds=request.payment_window_seconds),
        amount=request.amount,
        fee_amount=request.fee_amount,
        currency=request.currency,
    )


@activity.defn(name="twin_retrieve_payment_intent")
async def retrieve_payment_intent(request: PaymentIntentRef) -> IntentSnapshot:
    return IntentSnapshot(payment_intent_id=request.payment_intent_id, stripe_status="succeeded")


@activity.defn(name="twin_record_outcome")
async def record_outcome(request: SettleCheckout) -> None:
    return None


@activity.defn(name="twin_record_decline")
async def record_decline(request: RecordDecline) -> None:
    return None


@dataclass
class _TwinState:
    reached: AwaitedStage | None = None
    paid: bool = False
    declines: list[StripeEventSignal] = field(default_factory=list)


@workflow.defn(name="BenchTwinWorkflow")
class TwinWorkflow:
    """What Temporal sees of the saga on its paid path, with none of its work.

    The same activities with the same inputs and summaries (each a no-op), the same update
    answered at the same stages, the same signal, the same durable timer for the buyer's
    window, the same search attributes upserted at the same phases, the same details.
    """

    def __init__(self) -> None:
        self._state = _TwinState()
        self._status: CheckoutStatus | None = None
        self._saga: PaymentSagaInput | None = None
        self._seen: set[str] = set()

    @workflow.run
    async def run(self, saga: PaymentSagaInput) -> CheckoutStatus:
        self._saga = saga
        status = self._status = CheckoutStatus(
            phase=CheckoutPhase.RESERVING,
            bid_id=saga.bid_id,
            artwork_id=saga.artwork_id,
            buyer_id=saga.buyer_id,
            currency=saga.currency,
            hammer_price=saga.hammer_price,
        )
        charge = charge_for(
            saga.hammer_price, saga.currency, FeeSchedule(saga.fee_percent, saga.fee_fixed)
        )
        await workflow.execute_activity(
            reserve_artwork,
            ReserveArtwork(artwork_id=saga.artwork_id, bid_id=saga.bid_id),
            summary="Reserve the artwork for the winning bid",
            start_to_close_timeout=ACTIVITY_TIMEOUT,
        )
        self._state.reached = AwaitedStage.RESERVED
        status.amount, status.fee_amount = charge.total, charge.processing_fee
        self._show(CheckoutPhase.OPENING_PAYMENT)
        opened = await workflow.execute_activity(
            open_payment_intent,
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
            start_to_close_timeout=ACTIVITY_TIMEOUT,
        )
        status.payment_id, status.payment_intent_id = opened.payment_id, opened.payment_intent_id
        status.client_secret = opened.client_secret
        status.expires_at = workflow.now() + timedelta(seconds=saga.payment_timeout_seconds)
        status.original_expires_at = status.expires_at
        self._show(CheckoutPhase.AWAITING_PAYMENT)
        self._state.reached = AwaitedStage.PAYMENT_INTENT
        if not await self._buyer_window(saga, status.expires_at):
            self._show(CheckoutPhase.REOPENED)  # the saga would settle it; the twin just ends
            return status
        await workflow.execute_activity(
            retrieve_payment_intent,
            PaymentIntentRef(payment_intent_id=opened.payment_intent_id),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
        )
        await workflow.execute_activity(
            record_outcome,
            SettleCheckout(
                bid_id=saga.bid_id,
                artwork_id=saga.artwork_id,
                payment_intent_id=opened.payment_intent_id,
            ),
            summary="Record the sale",
            start_to_close_timeout=ACTIVITY_TIMEOUT,
        )
        self._show(CheckoutPhase.SOLD)
        return status

    async def _buyer_window(self, saga: PaymentSagaInput, deadline: datetime) -> bool:
        """Until paid (True) or the deadline (False), recording each decline, the deadline
        armed as the saga arms it."""
        state = self._state
        while not state.paid:
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                # Waiting again on a spent deadline returns at once: a loop that never yields.
                return False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: state.paid or bool(state.declines),
                    timeout=remaining,
                    timeout_summary="payment deadline",
                )
            while state.declines:
                decline = state.declines.pop(0)
                await workflow.execute_activity(
                    record_decline,
                    RecordDecline(
                        bid_id=saga.bid_id,
                        failure_reason=decline.failure_reason or "payment failed",
                        declines=1,
                        event_id=decline.event_id,
                    ),
                    summary="Record a declined payment attempt",
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                )
        return True

    def _show(self, phase: CheckoutPhase) -> None:
        assert self._saga is not None and self._status is not None
        self._status.phase = phase
        workflow.set_current_details(render_details(self._status))
        keep_indexed(self._saga, self._status)

    @workflow.signal(name="stripe_event")
    def stripe_event(self, event: StripeEventSignal) -> None:
        if event.event_id in self._seen:
            return
        self._seen.add(event.event_id)
        if event.kind is PaymentEventKind.SUCCEEDED:
            self._state.paid = True
        elif event.kind is PaymentEventKind.FAILED:
            self._state.declines.append(event)

    @workflow.update(name="await_checkout")
    async def await_checkout(self, request: AwaitCheckout) -> CheckoutStatus:
        stages = (AwaitedStage.RESERVED, AwaitedStage.PAYMENT_INTENT)
        await workflow.wait_condition(
            lambda: (
                self._state.reached is not None
                and stages.index(self._state.reached) >= stages.index(request.stage)
            )
        )
        assert self._status is not None
        return self._status


TWIN_ACTIVITIES = (
    reserve_artwork,
    open_payment_intent,
    record_decline,
    retrieve_payment_intent,
    record_outcome,
)
