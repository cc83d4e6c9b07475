"""Operators give a buyer more time: the `extend_deadline` update, accepted or refused."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import stripe
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.checkout import ArtworkStatus, PaymentStatus
from infra.db import SessionFactory
from infra.temporal import data_converter
from tests.support.edge_proxy import EdgeProxy
from tests.support.factories import checkout_rows, make_auction
from tests.support.polling import eventually
from tests.support.stack import codec_settings
from tests.workflows.conftest import (
    activities_run,
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
from workflows.search_attributes import PAYMENT_DEADLINE
from workflows.types import CheckoutPhase, CheckoutStatus, ExtendDeadline, WindowClosed

SagaHandle = WorkflowHandle[PaymentSagaWorkflow, CheckoutStatus]


def asked(minutes: int, reason: str = "the buyer's bank is closed today") -> ExtendDeadline:
    return ExtendDeadline(minutes=minutes, reason=reason, requested_by="ops@example.com")


async def refusal(handle: SagaHandle, request: ExtendDeadline) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(PaymentSagaWorkflow.extend_deadline, request)
    return str(refused.value.cause)


async def activity_summaries(handle: WorkflowHandle[Any, Any], activity_type: str) -> list[str]:
    """What the Web UI shows beside each run of the activity."""
    summaries = [
        event.user_metadata.summary
        for event in await history_events(handle)
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == activity_type
    ]
    decoded = await data_converter(codec_settings()).decode(summaries, [str] * len(summaries))
    return [str(summary) for summary in decoded]


async def test_an_extended_checkout_expires_at_its_new_deadline_not_the_old_one(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    auction = await make_auction(sessions, "810.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)  # a 10-minute window
        before = await opened(handle)
        original = before.expires_at
        assert original is not None and before.original_expires_at == original

        status = await handle.execute_update(PaymentSagaWorkflow.extend_deadline, asked(30))
        new_deadline = original + timedelta(minutes=30)
        assert (status.expires_at, status.original_expires_at) == (new_deadline, original)
        [granted] = status.extensions
        assert (granted.minutes, granted.requested_by) == (30, "ops@example.com")
        assert granted.reason == "the buyer's bank is closed today"
        assert granted.expires_at == new_deadline
        # The payment's record, the index and the history say so as soon as the update answers.
        rows = await checkout_rows(sessions, auction)
        assert rows.payment.expires_at == new_deadline
        [recorded] = rows.payment.payment_metadata["deadline_extensions"]
        assert (recorded["requested_by"], recorded["minutes"]) == ("ops@example.com", 30)
        assert rows.payment.payment_metadata["original_expires_at"] == original.isoformat()
        described = await handle.describe()
        assert described.typed_search_attributes.get(PAYMENT_DEADLINE) == new_deadline
        [summary] = await activity_summaries(handle, "extend_payment_deadline")
        assert "by 30 min" in summary and "ops@example.com" in summary
        assert "bank is closed" in summary

        await time_skipping.sleep(timedelta(minutes=15))  # past the old deadline
        assert (await handle.query(PaymentSagaWorkflow.status)).phase is (
            CheckoutPhase.AWAITING_PAYMENT
        )
        rows = await checkout_rows(sessions, auction)
        assert rows.payment.status == PaymentStatus.PENDING

        result = await handle.result()  # time skips to the new deadline
        await keep_history(handle, "deadline_extended_then_expired")
        closed_at = (await handle.describe()).close_time

    assert result.phase is CheckoutPhase.REOPENED
    assert result.window_closed is WindowClosed.DEADLINE
    assert closed_at is not None and closed_at >= new_deadline
    rows = await checkout_rows(sessions, auction)
    assert rows.payment.status == PaymentStatus.EXPIRED
    assert rows.payment.expires_at == new_deadline
    assert rows.artwork_status == ArtworkStatus.ACTIVE


async def test_extensions_add_up_within_the_limit_and_the_buyer_pays_in_the_extra_time(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    auction = await make_auction(sessions, "820.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(
            time_skipping.client, worker, auction, timeout_seconds=60, max_extension_minutes=60
        )
        original = (await opened(handle)).expires_at
        assert original is not None
        await handle.execute_update(PaymentSagaWorkflow.extend_deadline, asked(45))
        refused = await refusal(handle, asked(30))
        assert "at most 60 minutes past the original" in refused
        assert "it already moved 45, and 30 more would pass that" in refused
        status = await handle.execute_update(
            PaymentSagaWorkflow.extend_deadline, asked(15, "second call with the bank")
        )
        assert status.expires_at == original + timedelta(minutes=60)
        assert [granted.minutes for granted in status.extensions] == [45, 15]

        await time_skipping.sleep(timedelta(minutes=30))  # the original minute is long gone
        intent_id = await opened_intent(handle)
        await buyer_pays(stripe_client, handle, intent_id)
        result = await handle.result()
        await keep_history(handle, "deadline_extended_then_paid")

    assert result.phase is CheckoutPhase.SOLD
    rows = await checkout_rows(sessions, auction)
    assert rows.payment.status == PaymentStatus.SUCCEEDED
    assert rows.payment.expires_at == original + timedelta(minutes=60)
    assert len(rows.payment.payment_metadata["deadline_extensions"]) == 2


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (asked(0), "minutes must be a positive number"),
        (asked(-10), "minutes must be a positive number"),
        (asked(30, reason="   "), "a reason is required"),
        (asked(1441), "at most 1440 minutes past the original"),
    ],
    ids=["zero", "negative", "no reason", "past the limit"],
)
async def test_a_bad_request_is_refused_and_changes_nothing(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
    request_: ExtendDeadline,
    reason: str,
) -> None:
    auction = await make_auction(sessions, "830.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        before = await opened(handle)
        assert reason in await refusal(handle, request_)
        after = await handle.query(PaymentSagaWorkflow.status)
        await handle.terminate(reason="test over")

    assert (after.expires_at, after.extensions) == (before.expires_at, [])
    assert "extend_payment_deadline" not in await activities_run(handle)
    rows = await checkout_rows(sessions, auction)
    assert rows.payment.expires_at == before.expires_at


async def test_no_extension_before_the_intent_is_payable(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    auction = await make_auction(sessions, "840.00")
    queue = new_task_queue()
    handle = await start_saga(time_skipping.client, queue, auction)
    # The request is the first thing the saga sees, with its start, while it reserves.
    extend = asyncio.create_task(
        handle.execute_update(PaymentSagaWorkflow.extend_deadline, asked(30))
    )
    await asyncio.sleep(0.5)
    async with saga_worker(time_skipping.client, sessions, stripe_client, queue):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await extend
        await opened(handle)
        await handle.terminate(reason="test over")
    assert "the checkout is reserving, not awaiting payment" in str(refused.value.cause)


async def test_no_extension_once_the_window_closed_or_the_checkout_ended(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
) -> None:
    auction = await make_auction(sessions, "850.00")
    async with saga_worker(time_skipping.client, sessions, stripe_via_proxy) as worker:
        handle = await start_saga(time_skipping.client, worker, auction, timeout_seconds=60)
        intent_id = await opened_intent(handle)
        # At the deadline Stripe still reports a payment in flight: the checkout settles.
        processing = reported_processing(proxy, intent_id)
        await time_skipping.sleep(timedelta(minutes=2))
        await eventually(
            lambda: handle.query(PaymentSagaWorkflow.status),
            lambda status: status.processing_since is not None,
            what="settling while processing",
        )
        assert "the buyer's window already closed (deadline)" in await refusal(handle, asked(30))
        proxy.clear(processing)
        result = await handle.result()
        with pytest.raises(RPCError):  # Temporal itself refuses updates to a closed run
            await handle.execute_update(PaymentSagaWorkflow.extend_deadline, asked(30))

    assert result.phase is CheckoutPhase.REOPENED and result.extensions == []
    rows = await checkout_rows(sessions, auction)
    assert rows.payment.status == PaymentStatus.EXPIRED
    assert "deadline_extensions" not in rows.payment.payment_metadata
