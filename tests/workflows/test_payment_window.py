"""The buyer's window: when it opens, what closes it, and what a late message may not change."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from domain.checkout import ArtworkStatus, BidStatus, PaymentStatus
from infra.db import SessionFactory
from tests.support.edge_proxy import EdgeProxy, Fault
from tests.support.factories import checkout_rows, make_auction
from tests.support.polling import eventually
from tests.workflows.conftest import (
    activities_run,
    buyer_fails_3d_secure,
    buyer_pays,
    history_events,
    keep_history,
    new_task_queue,
    opened,
    opened_intent,
    reported_processing,
    saga_worker,
    start_saga,
)
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.types import CancelCheckout, CheckoutPhase, WindowClosed


async def completed_at(handle: WorkflowHandle[Any, Any], activity_type: str) -> datetime:
    """When Temporal recorded the activity's completion: the workflow's clock."""
    events = await history_events(handle)
    scheduled = {
        event.event_id
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == activity_type
    }
    return next(
        event.event_time.ToDatetime(tzinfo=UTC)
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and event.activity_task_completed_event_attributes.scheduled_event_id in scheduled
    )


async def test_the_buyer_gets_the_whole_window_after_a_stripe_outage(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
    stripe_client: stripe.StripeClient,
) -> None:
    """Stripe answers 503 for three minutes; the window is one minute, counted from the open."""
    outage = Fault("POST", "/v1/payment_intents", answer_status=503, remaining=8)
    proxy.faults.append(outage)
    auction = await make_auction(sessions, "260.00")
    async with saga_worker(time_skipping.client, sessions, stripe_via_proxy) as worker:
        handle = await start_saga(time_skipping.client, worker, auction, timeout_seconds=60)
        await time_skipping.sleep(timedelta(minutes=4))  # retries back off across the outage
        status = await opened(handle)
        assert outage.remaining == 0
        opened_at = await completed_at(handle, "open_payment_intent")
        assert status.expires_at is not None
        assert status.expires_at - opened_at >= timedelta(seconds=59)
        rows = await checkout_rows(sessions, auction)
        assert rows.payment.expires_at == status.expires_at

        intent_id = await opened_intent(handle)
        await buyer_pays(stripe_client, handle, intent_id)
        result = await handle.result()
    assert result.phase is CheckoutPhase.SOLD


async def test_a_cancel_after_the_deadline_is_refused_and_the_expiry_stands(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
) -> None:
    auction = await make_auction(sessions, "270.00")
    async with saga_worker(time_skipping.client, sessions, stripe_via_proxy) as worker:
        handle = await start_saga(time_skipping.client, worker, auction, timeout_seconds=60)
        intent_id = await opened_intent(handle)
        # At the deadline Stripe still reports a payment in flight: the checkout settles.
        processing = reported_processing(proxy, intent_id)
        await time_skipping.sleep(timedelta(minutes=2))
        status = await eventually(
            lambda: handle.query(PaymentSagaWorkflow.status),
            lambda s: s.processing_since is not None,
            what="settling while processing",
        )
        assert status.window_closed is WindowClosed.DEADLINE

        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                PaymentSagaWorkflow.cancel_checkout, CancelCheckout(reason="too late")
            )
        assert "window already closed" in str(refused.value.cause)
        proxy.clear(processing)
        result = await handle.result()

    assert result.phase is CheckoutPhase.REOPENED
    assert result.cancel_request is None
    rows = await checkout_rows(sessions, auction)
    assert rows.payment.status == PaymentStatus.EXPIRED


async def test_a_decline_that_arrives_with_the_deadline_is_recorded(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
    stripe_client: stripe.StripeClient,
    localstripe_url: str,
) -> None:
    """Stripe's event about a failed attempt reaches the saga while it cancels the intent at
    the deadline: the attempt still counts before bidding reopens."""
    auction = await make_auction(sessions, "280.00")
    async with saga_worker(time_skipping.client, sessions, stripe_via_proxy) as worker:
        handle = await start_saga(time_skipping.client, worker, auction, timeout_seconds=60)
        intent_id = await opened_intent(handle)

        async def the_event_arrives(_: str) -> None:
            failed = await buyer_fails_3d_secure(stripe_client, localstripe_url, intent_id)
            await handle.signal(PaymentSagaWorkflow.stripe_event, failed)

        proxy.faults.append(
            Fault(
                "POST",
                f"/v1/payment_intents/{intent_id}/cancel",
                before_forwarding=the_event_arrives,
            )
        )
        result = await handle.result()

    assert result.phase is CheckoutPhase.REOPENED
    assert result.attempts == 1
    assert "record_decline" in await activities_run(handle)
    rows = await checkout_rows(sessions, auction)
    assert rows.payment.status == PaymentStatus.EXPIRED
    assert rows.payment.payment_metadata["declines"] == 1
    assert rows.payment.failure_reason is not None
    assert "authentication_failure" in rows.payment.failure_reason


async def test_a_restarted_saga_keeps_its_decline_count(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
    localstripe_url: str,
) -> None:
    auction = await make_auction(sessions, "290.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(handle)
        failed = await buyer_fails_3d_secure(stripe_client, localstripe_url, intent_id)
        await handle.signal(PaymentSagaWorkflow.stripe_event, failed)
        await eventually(
            lambda: checkout_rows(sessions, auction),
            lambda rows: rows.payment.status == PaymentStatus.FAILED,
            what="decline recorded",
        )
        await handle.terminate(reason="operator stopped it by mistake")

        restarted = await start_saga(time_skipping.client, worker, auction)
        status = await opened(restarted)
        assert status.payment_intent_id == intent_id
        assert status.attempts == 1
        assert status.failure_reason is not None
        await buyer_pays(stripe_client, restarted, intent_id)
        result = await restarted.result()
        await keep_history(restarted, "restarted_then_paid")

    assert result.phase is CheckoutPhase.SOLD
    assert result.attempts == 2


async def test_a_cancel_during_the_reservation_opens_no_intent(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    auction = await make_auction(sessions, "300.00")
    queue = new_task_queue()
    handle = await start_saga(time_skipping.client, queue, auction)
    # The cancel is the first thing the saga sees, with its start: nobody polled before.
    cancel = asyncio.create_task(
        handle.execute_update(
            PaymentSagaWorkflow.cancel_checkout,
            CancelCheckout(reason="seller withdrew the work", requested_by="ops@example.com"),
        )
    )
    await asyncio.sleep(0.5)
    async with saga_worker(time_skipping.client, sessions, stripe_client, queue):
        canceled = await cancel
        result = await handle.result()

    assert canceled.phase is CheckoutPhase.CANCELED
    assert result.client_secret is None and result.payment_intent_id is None
    # It looks for an intent an earlier run may have opened (a restart), finds none, opens none.
    assert await activities_run(handle) == [
        "reserve_artwork",
        "recorded_payment_intent",
        "reopen_bidding",
    ]
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.ACTIVE, BidStatus.UNPAID)
    assert rows.payments == []
