"""The saga's no-op twin: the same steps at Temporal, none of the work.

It takes the saga's input, answers the same update once its first activities ran, waits for
the same signal, runs the same activities after it, and returns the same status, all through
the service's own payload converter (pydantic and encryption). Its activities do nothing:
what the saga costs beyond it is our code, PostgreSQL and Stripe.
"""

from __future__ import annotations

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
    from domain.stripe_events import PaymentEventKind
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
    """Reserve, open, wait for a success event (recording each decline), verify, record:
    the saga's activities on its paid path, each a no-op."""

    def __init__(self) -> None:
        self._state = _TwinState()
        self._status: CheckoutStatus | None = None
        self._seen: set[str] = set()

    @workflow.run
    async def run(self, saga: PaymentSagaInput) -> CheckoutStatus:
        status = self._status = CheckoutStatus(
            phase=CheckoutPhase.RESERVING,
            bid_id=saga.bid_id,
            artwork_id=saga.artwork_id,
            buyer_id=saga.buyer_id,
            currency=saga.currency,
            hammer_price=saga.hammer_price,
        )
        await workflow.execute_activity(
            reserve_artwork,
            ReserveArtwork(artwork_id=saga.artwork_id, bid_id=saga.bid_id),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
        )
        self._state.reached = AwaitedStage.RESERVED
        opened = await workflow.execute_activity(
            open_payment_intent,
            OpenPaymentIntent(
                workflow_id=workflow.info().workflow_id,
                bid_id=saga.bid_id,
                artwork_id=saga.artwork_id,
                buyer_id=saga.buyer_id,
                amount=saga.hammer_price,
                amount_minor=int(saga.hammer_price * 100),
                fee_amount=saga.fee_fixed,
                currency=saga.currency,
                payment_window_seconds=saga.payment_timeout_seconds,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
        )
        status.payment_intent_id = opened.payment_intent_id
        status.client_secret = opened.client_secret
        status.phase = CheckoutPhase.AWAITING_PAYMENT
        self._state.reached = AwaitedStage.PAYMENT_INTENT
        state = self._state
        while not state.paid:
            await workflow.wait_condition(lambda: state.paid or bool(state.declines))
            while state.declines:  # as the saga records each decline it is told of
                decline = state.declines.pop(0)
                await workflow.execute_activity(
                    record_decline,
                    RecordDecline(
                        bid_id=saga.bid_id,
                        failure_reason=decline.failure_reason or "payment failed",
                        declines=1,
                        event_id=decline.event_id,
                    ),
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                )
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
            start_to_close_timeout=ACTIVITY_TIMEOUT,
        )
        status.phase = CheckoutPhase.SOLD
        return status

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
