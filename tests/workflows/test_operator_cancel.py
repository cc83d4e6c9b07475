"""Operators call a checkout off from the Web UI or CLI (the `cancel_checkout` update)."""

from __future__ import annotations

import asyncio

import pytest
import stripe
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from domain.checkout import ArtworkStatus, BidStatus, PaymentStatus
from infra.db import SessionFactory
from tests.support.buyer import pay
from tests.support.factories import checkout_rows, make_auction
from tests.workflows.conftest import (
    keep_history,
    opened,
    opened_intent,
    saga_worker,
    start_saga,
)
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.types import CancelCheckout, CheckoutPhase


async def test_an_operator_cancel_voids_the_intent_and_reopens_bidding(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    auction = await make_auction(sessions, "700.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(handle)
        status = await handle.execute_update(
            PaymentSagaWorkflow.cancel_checkout,
            CancelCheckout(reason="buyer account flagged", requested_by="ops@example.com"),
        )
        result = await handle.result()
        await keep_history(handle, "canceled_by_an_operator")

    assert status.phase is CheckoutPhase.CANCELED
    assert result.phase is CheckoutPhase.CANCELED
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.ACTIVE, BidStatus.UNPAID)
    assert rows.payment.status == PaymentStatus.CANCELED
    assert rows.payment.failure_reason == "canceled by ops@example.com: buyer account flagged"
    assert intent_id is not None
    assert (await stripe_client.v1.payment_intents.retrieve_async(intent_id)).status == "canceled"


async def test_a_cancel_after_the_money_landed_still_sells(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    """No refunds: a paid checkout is a sale, whatever was asked."""
    auction = await make_auction(sessions, "710.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(handle)
        await pay(stripe_client, intent_id)
        status = await handle.execute_update(
            PaymentSagaWorkflow.cancel_checkout, CancelCheckout(reason="too late")
        )

    assert status.phase is CheckoutPhase.SOLD
    rows = await checkout_rows(sessions, auction)
    assert rows.payment.status == PaymentStatus.SUCCEEDED
    assert rows.artwork_status == ArtworkStatus.SOLD


async def test_a_cancel_without_a_reason_is_refused(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    auction = await make_auction(sessions, "720.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        await opened(handle)
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(
                PaymentSagaWorkflow.cancel_checkout, CancelCheckout(reason=" ")
            )
        assert (
            await handle.query(PaymentSagaWorkflow.status)
        ).phase is CheckoutPhase.AWAITING_PAYMENT
        await handle.terminate(reason="test over")
    rows = await checkout_rows(sessions, auction)
    assert rows.payment.status == PaymentStatus.PENDING


async def test_a_cancel_from_the_temporal_ui_voids_the_intent_and_reopens_bidding(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    """The UI's and CLI's Cancel button is a workflow cancellation: treated as an operator's."""
    auction = await make_auction(sessions, "730.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(handle)
        await handle.cancel()
        result = await handle.result()
        await keep_history(handle, "canceled_from_temporal")

    assert result.phase is CheckoutPhase.CANCELED
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.ACTIVE, BidStatus.UNPAID)
    assert rows.payment.status == PaymentStatus.CANCELED
    assert rows.payment.failure_reason == (
        "canceled by temporal: workflow cancellation requested in Temporal"
    )
    assert (await stripe_client.v1.payment_intents.retrieve_async(intent_id)).status == "canceled"


async def test_a_cancel_from_the_temporal_ui_after_the_money_landed_still_sells(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    auction = await make_auction(sessions, "740.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(handle)
        assert await pay(stripe_client, intent_id) == "succeeded"
        await handle.cancel()
        result = await handle.result()

    assert result.phase is CheckoutPhase.SOLD
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.payment.status) == (ArtworkStatus.SOLD, "succeeded")


@pytest.mark.parametrize("paid_meanwhile", [False, True])
async def test_a_cancel_reaching_a_restarted_saga_as_it_reserves_settles_the_earlier_intent(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
    paid_meanwhile: bool,
) -> None:
    """The first run opened the intent and was terminated; a restart (by the API or the
    reconciliation) is asked to cancel before it got past reserving again. The intent it did
    not open itself is still settled with Stripe: canceled, or a sale when the money landed."""
    auction = await make_auction(sessions, "380.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        first = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(first)
        await first.terminate(reason="lost, as a crash of the whole deployment would")
    if paid_meanwhile:
        assert await pay(stripe_client, intent_id) == "succeeded"

    queue = f"restart-{auction.bid_id}"
    restarted = await start_saga(time_skipping.client, queue, auction)
    cancel = asyncio.create_task(
        restarted.execute_update(
            PaymentSagaWorkflow.cancel_checkout,
            CancelCheckout(reason="the seller withdrew the piece", requested_by="ops@example.com"),
        )
    )
    await asyncio.sleep(0.5)  # the cancel waits for the run's first task, with its start
    async with saga_worker(time_skipping.client, sessions, stripe_client, task_queue=queue):
        answered = await cancel
        result = await restarted.result()
        shape = "paid" if paid_meanwhile else "canceled"
        await keep_history(restarted, f"restarted_and_canceled_while_reserving_{shape}")

    rows = await checkout_rows(sessions, auction)
    at_stripe = await stripe_client.v1.payment_intents.retrieve_async(intent_id)
    if paid_meanwhile:
        assert (answered.phase, result.phase) == (CheckoutPhase.SOLD, CheckoutPhase.SOLD)
        assert (rows.artwork_status, rows.payment.status) == (
            ArtworkStatus.SOLD,
            PaymentStatus.SUCCEEDED,
        )
    else:
        assert result.phase is CheckoutPhase.CANCELED
        assert at_stripe.status == "canceled"
        assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.ACTIVE, BidStatus.UNPAID)
        assert rows.payment.status == PaymentStatus.CANCELED
    assert result.payment_intent_id == intent_id
