"""Errors no retry fixes: the checkout still ends sold or reopened, and the run fails visibly."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from sqlmodel import select
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.announcements import TECHNICAL_PROBLEM, MailKind
from domain.checkout import ArtworkStatus, BidStatus, PaymentStatus
from infra.db import SessionFactory
from infra.tables import Notification
from tests.support.buyer import pay
from tests.support.edge_proxy import EdgeProxy, Fault
from tests.support.factories import checkout_rows, make_auction
from tests.workflows.conftest import (
    activities_run,
    buyer_pays,
    keep_history,
    opened_intent,
    saga_worker,
    start_saga,
    stripe_tells_the_saga,
)
from workflows.failures import CHECKOUT_FAILED
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.types import CheckoutPhase, WindowClosed


async def queued_mails(sessions: SessionFactory, bid_id: int) -> dict[MailKind, dict[str, Any]]:
    async with sessions() as session:
        rows = await session.exec(select(Notification).where(Notification.bid_id == bid_id))
        return {MailKind(row.kind): row.context for row in rows}


AMOUNT_TOO_SMALL = {
    "type": "invalid_request_error",
    "code": "amount_too_small",
    "message": "Amount must be at least 50 cents",
}
IDEMPOTENCY_CONFLICT = {
    "type": "idempotency_error",
    "message": "Keys for idempotent requests can only be used with the same parameters",
}


async def failure_of_run(handle: WorkflowHandle[Any, Any]) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_stripe_refusing_the_intent_reopens_bidding(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
) -> None:
    proxy.faults.append(
        Fault("POST", "/v1/payment_intents", answer_status=400, answer_error=AMOUNT_TOO_SMALL)
    )
    auction = await make_auction(sessions, "900.00")
    async with saga_worker(time_skipping.client, sessions, stripe_via_proxy) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        failure = await failure_of_run(handle)
        status = await handle.query(PaymentSagaWorkflow.status)
        await keep_history(handle, "failed_before_the_intent")

    assert failure.type == CHECKOUT_FAILED
    assert "amount_too_small" in failure.message
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    assert status.phase is CheckoutPhase.FAILED
    assert status.compensation == "bidding reopened; no PaymentIntent was opened"
    assert await activities_run(handle) == [
        "reserve_artwork",
        "open_payment_intent",
        "recorded_payment_intent",
        "reopen_bidding",
    ]
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.ACTIVE, BidStatus.UNPAID)
    assert rows.payments == []


async def test_an_idempotency_conflict_finds_the_intent_our_key_made(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
    stripe_client: stripe.StripeClient,
) -> None:
    """Stripe made the intent, then answered a conflict on our key: that intent is ours."""
    proxy.faults.append(
        Fault(
            "POST",
            "/v1/payment_intents",
            answer_status=400,
            answer_error=IDEMPOTENCY_CONFLICT,
            forward_anyway=True,
        )
    )
    auction = await make_auction(sessions, "910.00")
    async with saga_worker(time_skipping.client, sessions, stripe_via_proxy) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(handle)
        made = [
            intent
            for intent in (
                await stripe_client.v1.payment_intents.list_async(params={"limit": 100})
            ).data
            if intent.metadata["bid_id"] == str(auction.bid_id)
        ]
        assert [intent.id for intent in made] == [intent_id]
        await buyer_pays(stripe_client, handle, intent_id)
        result = await handle.result()

    assert result.phase is CheckoutPhase.SOLD
    assert len(proxy.requests_to("POST", "/v1/payment_intents")) == 1


async def test_a_payment_for_another_amount_is_never_a_sale(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    """Someone with the account's key lowered the intent's amount before the buyer paid."""
    auction = await make_auction(sessions, "920.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(handle)
        await stripe_client.v1.payment_intents.update_async(intent_id, params={"amount": 100})
        await buyer_pays(stripe_client, handle, intent_id)
        failure = await failure_of_run(handle)
        status = await handle.query(PaymentSagaWorkflow.status)
        await keep_history(handle, "failed_on_a_mismatched_payment")

    assert "amount 100 instead of" in failure.message
    assert status.phase is CheckoutPhase.FAILED
    assert status.compensation is not None and "refunded at Stripe" in status.compensation
    assert "complete_sale" not in await activities_run(handle)
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.ACTIVE, BidStatus.UNPAID)
    assert rows.payment.status == PaymentStatus.CANCELED
    assert rows.payment.failure_reason is not None
    assert "payment mismatch" in rows.payment.failure_reason
    # The parties learn that the checkout stopped, in words for people, not our error.
    told = await queued_mails(sessions, auction.bid_id)
    assert told[MailKind.CHECKOUT_CANCELED]["detail"] == TECHNICAL_PROBLEM
    assert told[MailKind.BIDDING_REOPENED]["detail"] == TECHNICAL_PROBLEM
    assert MailKind.PAYMENT_RECEIPT not in told


async def test_money_that_landed_before_a_failure_is_still_a_sale(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
    stripe_client: stripe.StripeClient,
) -> None:
    auction = await make_auction(sessions, "930.00")
    async with saga_worker(time_skipping.client, sessions, stripe_via_proxy) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(handle)
        assert await pay(stripe_client, intent_id) == "succeeded"
        # Stripe refuses the saga's first look at the paid intent: an error no retry fixes.
        proxy.faults.append(Fault("GET", f"/v1/payment_intents/{intent_id}", answer_status=400))
        await stripe_tells_the_saga(stripe_client, handle, intent_id)
        failure = await failure_of_run(handle)
        status = await handle.query(PaymentSagaWorkflow.status)
        await keep_history(handle, "failed_after_the_money_landed")

    assert "sold: the payment had landed" in failure.message
    assert status.phase is CheckoutPhase.FAILED
    assert status.window_closed is WindowClosed.FAILED
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.SOLD, BidStatus.PAID)
    assert rows.payment.status == PaymentStatus.SUCCEEDED
    assert rows.payment.stripe_charge_id is not None


async def test_a_failure_while_settling_after_the_deadline_is_still_a_visible_failure(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
) -> None:
    auction = await make_auction(sessions, "940.00")
    async with saga_worker(time_skipping.client, sessions, stripe_via_proxy) as worker:
        handle = await start_saga(time_skipping.client, worker, auction, timeout_seconds=60)
        intent_id = await opened_intent(handle)
        # The saga's look at the intent at the deadline is refused for good.
        proxy.faults.append(Fault("GET", f"/v1/payment_intents/{intent_id}", answer_status=400))
        failure = await failure_of_run(handle)
        status = await handle.query(PaymentSagaWorkflow.status)

    assert "bidding reopened; the PaymentIntent is canceled" in failure.message
    assert status.phase is CheckoutPhase.FAILED
    assert status.window_closed is WindowClosed.DEADLINE  # when the window closed, and why
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.payment.status) == (ArtworkStatus.ACTIVE, "canceled")
    assert (await stripe_via_proxy.v1.payment_intents.retrieve_async(intent_id)).status == (
        "canceled"
    )
