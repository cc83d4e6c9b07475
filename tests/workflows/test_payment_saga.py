"""The saga on the time-skipping server, with the real activities, PostgreSQL and localstripe."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import stripe
from temporalio.testing import WorkflowEnvironment

from domain.checkout import ArtworkStatus, BidStatus, PaymentStatus
from infra.db import SessionFactory
from infra.tables import Bid
from tests.support.buyer import pay
from tests.support.factories import checkout_rows, make_auction, make_user
from tests.support.polling import eventually
from tests.support.stripe_events import payment_event
from tests.workflows.conftest import (
    activities_run,
    buyer_fails_3d_secure,
    buyer_is_declined,
    buyer_pays,
    keep_history,
    opened,
    opened_intent,
    saga_worker,
    start_saga,
)
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.types import CheckoutPhase


async def test_paid_in_time_sells_the_artwork(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    auction = await make_auction(sessions, "1000.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        status = await opened(handle)
        assert status.amount is not None and status.amount > auction.hammer_price
        rows = await checkout_rows(sessions, auction)
        assert (rows.artwork_status, rows.bid_status) == (
            ArtworkStatus.PENDING_PAYMENT,
            BidStatus.WON,
        )
        assert rows.payment.status == PaymentStatus.PENDING
        assert rows.payment.amount == status.amount

        assert status.payment_intent_id is not None
        assert await pay(stripe_client, status.payment_intent_id) == "succeeded"
        succeeded = await payment_event(
            stripe_client, status.payment_intent_id, "payment_intent.succeeded"
        )
        await handle.signal(PaymentSagaWorkflow.stripe_event, succeeded)
        result = await handle.result()
        await keep_history(handle, "paid")

    assert result.phase is CheckoutPhase.SOLD
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.SOLD, BidStatus.PAID)
    assert rows.payment.status == PaymentStatus.SUCCEEDED
    assert rows.payment.stripe_charge_id == succeeded.charge_id is not None
    intent = await stripe_client.v1.payment_intents.retrieve_async(status.payment_intent_id)
    assert intent.amount == int(rows.payment.amount * 100)


async def test_never_paid_reopens_bidding_after_ten_minutes(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    auction = await make_auction(sessions, "250.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        started = await time_skipping.get_current_time()
        handle = await start_saga(time_skipping.client, worker, auction)  # the default 600 s
        status = await opened(handle)
        result = await handle.result()  # time skipping crosses the ten minutes
        ended = await time_skipping.get_current_time()
        await keep_history(handle, "expired")

    assert ended - started >= timedelta(minutes=10)
    assert status.expires_at is not None
    assert timedelta(minutes=10) <= status.expires_at - started < timedelta(minutes=11)
    assert result.phase is CheckoutPhase.REOPENED
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.ACTIVE, BidStatus.UNPAID)
    assert rows.payment.status == PaymentStatus.EXPIRED
    assert status.payment_intent_id is not None
    intent = await stripe_client.v1.payment_intents.retrieve_async(status.payment_intent_id)
    assert intent.status == "canceled"
    # Stripe was asked before the cancel, and the cancel before the artwork went back.
    assert (await activities_run(handle))[-3:] == [
        "retrieve_payment_intent",
        "cancel_payment_intent",
        "reopen_bidding",
    ]


async def test_a_failed_attempt_then_a_good_card_sells(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
    localstripe_url: str,
) -> None:
    auction = await make_auction(sessions, "80.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(handle)

        failed = await buyer_fails_3d_secure(stripe_client, localstripe_url, intent_id)
        await handle.signal(PaymentSagaWorkflow.stripe_event, failed)
        status = await eventually(
            lambda: handle.query(PaymentSagaWorkflow.status),
            lambda s: s.attempts == 1,
            what="failed attempt recorded",
        )
        assert status.phase is CheckoutPhase.AWAITING_PAYMENT
        assert status.failure_reason is not None
        assert "authentication_failure" in status.failure_reason
        rows = await eventually(
            lambda: checkout_rows(sessions, auction),
            lambda r: r.payment.status == PaymentStatus.FAILED,
            what="payment failed in the database",
        )
        assert rows.payment.failure_reason == status.failure_reason
        assert rows.artwork_status == ArtworkStatus.PENDING_PAYMENT  # the buyer may retry

        await buyer_pays(stripe_client, handle, intent_id)
        result = await handle.result()
        await keep_history(handle, "failed_attempt_then_paid")

    assert result.phase is CheckoutPhase.SOLD
    assert result.attempts == 2
    rows = await checkout_rows(sessions, auction)
    assert rows.payment.status == PaymentStatus.SUCCEEDED
    assert rows.artwork_status == ArtworkStatus.SOLD


async def test_the_same_event_five_times_is_one_transition(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
    localstripe_url: str,
) -> None:
    auction = await make_auction(sessions, "120.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(handle)
        failed = await buyer_fails_3d_secure(stripe_client, localstripe_url, intent_id)
        for _ in range(5):
            await handle.signal(PaymentSagaWorkflow.stripe_event, failed)
        assert await pay(stripe_client, intent_id) == "succeeded"
        succeeded = await payment_event(stripe_client, intent_id, "payment_intent.succeeded")
        for _ in range(5):
            await handle.signal(PaymentSagaWorkflow.stripe_event, succeeded)
        result = await handle.result()

    assert result.phase is CheckoutPhase.SOLD
    assert result.attempts == 2
    ran = await activities_run(handle)
    assert ran.count("record_decline") == 1
    assert ran.count("complete_sale") == 1
    assert "reopen_bidding" not in ran
    rows = await checkout_rows(sessions, auction)
    assert rows.payment.payment_metadata["declines"] == 1


async def test_a_made_up_success_is_not_believed(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    """A success event for a charge that failed, while Stripe shows the intent unpaid: the
    saga asks Stripe, records no sale, and the deadline reopens bidding."""
    auction = await make_auction(sessions, "130.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(handle)
        await buyer_is_declined(stripe_client, intent_id)
        made_up = await payment_event(stripe_client, intent_id, "payment_intent.succeeded")
        assert made_up.charge_id is not None  # the failed charge, presented as a success
        await handle.signal(PaymentSagaWorkflow.stripe_event, made_up)
        result = await handle.result()
        await keep_history(handle, "made_up_success_then_expired")

    assert result.phase is CheckoutPhase.REOPENED
    ran = await activities_run(handle)
    assert "complete_sale" not in ran
    assert ran[:3] == ["reserve_artwork", "open_payment_intent", "retrieve_payment_intent"]
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.ACTIVE, BidStatus.UNPAID)
    assert rows.payment.status == PaymentStatus.EXPIRED
    assert rows.payment.stripe_charge_id is None


async def test_money_that_lands_as_the_deadline_fires_is_a_sale(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    """The buyer paid at Stripe, but the webhook is late: the deadline must not reopen."""
    auction = await make_auction(sessions, "640.00")
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(handle)
        assert await pay(stripe_client, intent_id) == "succeeded"
        result = await handle.result()  # the timer fires before any webhook arrived
        await keep_history(handle, "paid_as_the_deadline_fired")
        late = await payment_event(stripe_client, intent_id, "payment_intent.succeeded")

    assert result.phase is CheckoutPhase.SOLD
    ran = await activities_run(handle)
    assert "retrieve_payment_intent" in ran
    assert "cancel_payment_intent" not in ran
    assert "reopen_bidding" not in ran
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.SOLD, BidStatus.PAID)
    assert rows.payment.status == PaymentStatus.SUCCEEDED
    assert rows.payment.stripe_charge_id == late.charge_id is not None


async def test_a_bid_outbid_before_the_reservation_is_rejected_untouched(
    time_skipping: WorkflowEnvironment, sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    auction = await make_auction(sessions, "500.00")
    rival = await make_user(sessions, "rival")
    assert rival.id is not None
    async with sessions() as session:  # the higher bid lands between close and reservation
        session.add(Bid(artwork_id=auction.artwork_id, bidder_id=rival.id, amount=Decimal("501")))
        await session.commit()
    async with saga_worker(time_skipping.client, sessions, stripe_client) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        result = await handle.result()

    assert result.phase is CheckoutPhase.REJECTED
    assert result.rejection_reason == "a higher bid arrived before closing"
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.ACTIVE, BidStatus.ACTIVE)
    assert rows.payments == []
    assert await activities_run(handle) == ["reserve_artwork"]
