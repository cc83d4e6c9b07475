"""Faults only the network edge can produce: a lost answer, and a payment landing mid-cancel."""

from __future__ import annotations

import stripe
from sqlalchemy import func
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from activities.stripe_payments import StripePayments
from domain.checkout import ArtworkStatus, BidStatus, PaymentStatus
from infra.db import SessionFactory
from infra.tables import Payment
from tests.support.activities import TEST_ANNOUNCER, activity_env, open_request
from tests.support.buyer import pay
from tests.support.edge_proxy import EdgeProxy, Fault
from tests.support.factories import checkout_rows, make_auction
from tests.workflows.conftest import (
    activities_run,
    opened,
    opened_intent,
    saga_worker,
    start_saga,
)
from workflows.types import CheckoutPhase, saga_workflow_id


async def test_a_create_whose_answer_is_lost_is_retried_with_the_same_key(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
    stripe_client: stripe.StripeClient,
) -> None:
    """Stripe created the intent, the worker never heard: the retry must not charge twice."""
    proxy.faults.append(Fault("POST", "/v1/payment_intents", drop_answer=True))
    auction = await make_auction(sessions, "300.00")
    async with saga_worker(time_skipping.client, sessions, stripe_via_proxy) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        status = await opened(handle)

        # The retry finds the intent the lost answer was about, by the key in its metadata
        # (as Stripe itself would answer the key with it), and creates nothing.
        creates = proxy.requests_to("POST", "/v1/payment_intents")
        expected_key = f"{saga_workflow_id(auction.bid_id)}-payment-intent"
        assert [c.idempotency_key for c in creates] == [expected_key]
        made = [
            intent.id
            for intent in (
                await stripe_client.v1.payment_intents.list_async(params={"limit": 100})
            ).data
            if intent.metadata["bid_id"] == str(auction.bid_id)
        ]
        assert made == [status.payment_intent_id]
        async with sessions() as session:
            count = (
                await session.exec(
                    select(func.count())
                    .select_from(Payment)
                    .where(Payment.bid_id == auction.bid_id)
                )
            ).one()
        assert count == 1
        rows = await checkout_rows(sessions, auction)
        assert rows.payment.stripe_payment_intent_id == status.payment_intent_id

        # The checkout goes on with the recorded intent.
        assert status.payment_intent_id is not None
        await pay(stripe_client, status.payment_intent_id)
        result = await handle.result()
    assert result.phase is CheckoutPhase.SOLD
    assert (await checkout_rows(sessions, auction)).payment.status == PaymentStatus.SUCCEEDED


async def test_a_cancel_refused_because_the_buyer_just_paid_is_a_sale(
    time_skipping: WorkflowEnvironment,
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
    stripe_client: stripe.StripeClient,
) -> None:
    auction = await make_auction(sessions, "410.00")

    async def buyer_pays_first(path: str) -> None:
        intent_id = path.split("/")[3]
        assert await pay(stripe_client, intent_id) == "succeeded"

    proxy.faults.append(
        Fault(
            "POST",
            "/v1/payment_intents/",
            path_suffix="/cancel",
            before_forwarding=buyer_pays_first,
        )
    )
    async with saga_worker(time_skipping.client, sessions, stripe_via_proxy) as worker:
        handle = await start_saga(time_skipping.client, worker, auction)
        intent_id = await opened_intent(handle)
        result = await handle.result()  # the deadline: retrieve (open), cancel (refused)

    assert result.phase is CheckoutPhase.SOLD
    assert len(proxy.requests_to("POST", f"/v1/payment_intents/{intent_id}/cancel")) == 1
    ran = await activities_run(handle)
    assert ran[-3:] == ["retrieve_payment_intent", "cancel_payment_intent", "complete_sale"]
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.SOLD, BidStatus.PAID)
    assert rows.payment.status == PaymentStatus.SUCCEEDED
    assert rows.payment.stripe_charge_id is not None


async def test_two_attempts_racing_keep_one_intent_and_cancel_the_other(
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
    stripe_client: stripe.StripeClient,
) -> None:
    """A timed-out attempt still running records its intent while the retry creates one."""
    auction = await make_auction(sessions, "330.00")
    request = open_request(auction)
    first_attempt: list[str] = []

    async def earlier_attempt_lands(_: str) -> None:
        opened = await activity_env().run(
            StripePayments(stripe_client, sessions, TEST_ANNOUNCER).open_payment_intent, request
        )
        first_attempt.append(opened.payment_intent_id)

    proxy.faults.append(
        Fault("POST", "/v1/payment_intents", before_forwarding=earlier_attempt_lands)
    )
    retry = await activity_env().run(
        StripePayments(stripe_via_proxy, sessions, TEST_ANNOUNCER).open_payment_intent, request
    )

    assert retry.payment_intent_id == first_attempt[0]
    rows = await checkout_rows(sessions, auction)
    assert rows.payment.stripe_payment_intent_id == first_attempt[0]
    created_by_retry = [
        intent
        for intent in (
            await stripe_client.v1.payment_intents.list_async(params={"limit": 100})
        ).data
        if intent.to_dict()["metadata"].get("bid_id") == str(auction.bid_id)
        and intent.id != first_attempt[0]
    ]
    assert [intent.status for intent in created_by_retry] == ["canceled"]


async def test_each_deployment_sends_keys_of_its_own(
    sessions: SessionFactory, proxy: EdgeProxy, stripe_via_proxy: stripe.StripeClient
) -> None:
    """Two deployments sharing one Stripe account, with the same bid ids in their databases,
    must never send the same idempotency key (Stripe would answer one with the other's)."""
    auction = await make_auction(sessions, "340.00")
    request = open_request(auction)
    opened = await activity_env().run(
        StripePayments(
            stripe_via_proxy, sessions, TEST_ANNOUNCER, idempotency_prefix="staging"
        ).open_payment_intent,
        request,
    )
    (create,) = proxy.requests_to("POST", "/v1/payment_intents")
    assert create.idempotency_key == f"staging-payment-bid-{auction.bid_id}-payment-intent"
    intent = await stripe_via_proxy.v1.payment_intents.retrieve_async(opened.payment_intent_id)
    assert intent.metadata["environment"] == "staging"
    assert intent.metadata["idempotency_key"] == create.idempotency_key


async def test_a_create_stripe_answered_500_is_retried_under_a_key_of_its_own(
    temporal_dev: WorkflowEnvironment,
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
    stripe_client: stripe.StripeClient,
) -> None:
    """Stripe saves a 500 its endpoint answered against the idempotency key and answers every
    retry with that key the same, for a day: the retry must send a new key. (On the dev
    server: the attempt's count of such answers travels in its heartbeat details.)"""
    proxy.faults.append(
        Fault(
            "POST",
            "/v1/payment_intents",
            path_suffix="/payment_intents",
            answer_status=500,
            saved_for_key=True,
        )
    )
    auction = await make_auction(sessions, "350.00")
    async with saga_worker(temporal_dev.client, sessions, stripe_via_proxy) as worker:
        handle = await start_saga(temporal_dev.client, worker, auction)
        intent_id = await opened_intent(handle)
        await handle.terminate(reason="test over")

    key = f"{saga_workflow_id(auction.bid_id)}-payment-intent"
    creates = proxy.requests_to("POST", "/v1/payment_intents")
    assert [seen.idempotency_key for seen in creates] == [key, f"{key}-1"]
    intent = await stripe_client.v1.payment_intents.retrieve_async(intent_id)
    assert intent.metadata["idempotency_key"] == key  # what a later lookup searches by
