"""Settlement: once the buyer's window closed, only Stripe's final answer ends the checkout.

localstripe's cards never stay `processing` (a bank debit in flight); the edge proxy reports
the intent so, which is how Stripe would answer for days.
"""

from __future__ import annotations

from datetime import timedelta

import stripe
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.checkout import ArtworkStatus, PaymentStatus
from infra.db import SessionFactory
from tests.support.buyer import pay
from tests.support.edge_proxy import EdgeProxy
from tests.support.factories import checkout_rows, make_auction
from tests.support.polling import eventually
from tests.workflows.conftest import (
    activities_run,
    history_events,
    keep_history,
    opened_intent,
    reported_processing,
    saga_worker,
    start_saga,
)
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.types import CancelCheckout, CheckoutPhase, CheckoutStatus, WindowClosed


async def recheck_timers(handle: WorkflowHandle[PaymentSagaWorkflow, CheckoutStatus]) -> list[int]:
    """The seconds of each timer the saga set, in order."""
    return [
        event.timer_started_event_attributes.start_to_fire_timeout.ToSeconds()
        for event in await history_events(handle)
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]


async def test_a_cancel_while_stripe_is_processing_waits_instead_of_spinning(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
) -> None:
    auction = await make_auction(sessions, "810.00")
    async with saga_worker(time_skipping.client, sessions, stripe_via_proxy) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(handle)
        processing = reported_processing(proxy, intent_id)
        answer = await handle.execute_update(
            PaymentSagaWorkflow.cancel_checkout,
            CancelCheckout(reason="buyer asked", requested_by="ops@example.com"),
        )
        # The operator hears that only Stripe can still decide; the saga waits for it.
        assert answer.phase is CheckoutPhase.SETTLING
        assert answer.processing_since is not None
        await time_skipping.sleep(timedelta(minutes=10))
        asked = (await activities_run(handle)).count("retrieve_payment_intent")
        assert 3 <= asked <= 6  # 30 s, 60 s, 120 s, 240 s... not back to back
        assert (await recheck_timers(handle))[1:5] == [30, 60, 120, 240]

        proxy.clear(processing)  # Stripe's answer: the debit failed, the intent is open
        result = await handle.result()
        await keep_history(handle, "canceled_while_processing")

    assert result.phase is CheckoutPhase.CANCELED
    assert result.window_closed is WindowClosed.CANCELED
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.payment.status) == (ArtworkStatus.ACTIVE, "canceled")


async def test_a_long_processing_intent_backs_off_continues_as_new_and_alerts(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
    stripe_client: stripe.StripeClient,
) -> None:
    auction = await make_auction(sessions, "820.00")
    async with saga_worker(time_skipping.client, sessions, stripe_via_proxy) as worker:
        handle = await start_saga(
            time_skipping.client,
            worker,
            auction,
            timeout_seconds=60,
            processing_alert_seconds=3600,
            history_event_limit=80,
        )
        intent_id = await opened_intent(handle)
        first_run = (await handle.describe()).run_id
        # The buyer pays by bank debit: Stripe says `processing` for a day, then succeeded.
        assert await pay(stripe_client, intent_id) == "succeeded"
        processing = reported_processing(proxy, intent_id)
        await time_skipping.sleep(timedelta(hours=6))

        status = await eventually(
            lambda: handle.query(PaymentSagaWorkflow.status),
            lambda s: s.attention is not None,
            what="the alert after an hour of processing",
        )
        assert status.phase is CheckoutPhase.SETTLING
        assert status.window_closed is WindowClosed.DEADLINE
        assert status.attention is not None and intent_id in status.attention
        latest = await handle.describe()
        assert latest.run_id != first_run  # continued as new, carrying the checkout
        first = time_skipping.client.get_workflow_handle(handle.id, run_id=first_run)
        first_events = await history_events(first)
        assert len(first_events) <= 100
        assert first_events[-1].event_type == (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        )
        timers = await recheck_timers(first)
        assert 55 <= timers[0] <= 60  # the deadline, counted from the intent's opening
        assert timers[1:5] == [30, 60, 120, 240]  # then the rechecks, backing off
        await keep_history(first, "processing_continued_as_new")

        proxy.clear(processing)
        result = await handle.result()
        await keep_history(handle, "processing_then_paid_after_continue_as_new")

    assert result.phase is CheckoutPhase.SOLD
    assert result.processing_since == status.processing_since
    assert result.attempts == 1
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.payment.status) == (ArtworkStatus.SOLD, "succeeded")
    assert rows.payment.status == PaymentStatus.SUCCEEDED
