from __future__ import annotations

from decimal import Decimal

import httpx
from sqlmodel import select
from temporalio.client import WorkflowExecutionStatus

from domain.money import FeeSchedule, charge_for
from infra.tables import Payment
from tests.api.conftest import closed_auction, open_auction
from tests.support.stack import Stack, unique
from workflows.types import saga_workflow_id


async def test_the_winner_gets_one_payment_intent_however_often_they_ask(stack: Stack) -> None:
    closed = await closed_auction(stack, "600.00")
    first = await stack.post("/api/payments/create-intent", closed.buyer, {"bid_id": closed.bid_id})
    second = await stack.post(
        "/api/payments/create-intent", closed.buyer, {"bid_id": closed.bid_id}
    )
    assert first.status_code == second.status_code == 200, first.text
    assert first.json() == second.json()

    intent = first.json()
    expected = charge_for(Decimal("600.00"), "usd", FeeSchedule())
    assert intent["amount"] == str(expected.total)
    assert intent["fee_amount"] == str(expected.processing_fee)
    assert intent["currency"] == "usd"
    assert intent["status"] == "pending"
    assert intent["client_secret"].startswith(intent["payment_intent_id"])

    at_stripe = await stack.stripe.v1.payment_intents.retrieve_async(intent["payment_intent_id"])
    assert at_stripe.amount == expected.total_minor
    assert at_stripe.metadata["bid_id"] == str(closed.bid_id)
    assert at_stripe.metadata["workflow_id"] == f"payment-bid-{closed.bid_id}"


async def test_only_the_winning_bidder_may_pay(stack: Stack) -> None:
    closed = await closed_auction(stack)
    stranger = await stack.post(
        "/api/payments/create-intent", unique("x"), {"bid_id": closed.bid_id}
    )
    assert stranger.status_code == 403
    unknown = await stack.post("/api/payments/create-intent", closed.buyer, {"bid_id": 987654321})
    assert unknown.status_code == 404
    invalid = await stack.post("/api/payments/create-intent", closed.buyer, {"bid_id": "one"})
    assert invalid.status_code == 422


async def test_a_bid_that_has_not_won_cannot_pay(stack: Stack) -> None:
    _, artwork_id = await open_auction(stack)
    buyer = unique("buyer")
    bid = await stack.post(f"/api/artworks/{artwork_id}/bids", buyer, {"amount": "650.00"})
    response = await stack.post("/api/payments/create-intent", buyer, {"bid_id": bid.json()["id"]})
    assert response.status_code == 409


async def test_a_buyer_sees_only_their_own_payments(stack: Stack) -> None:
    closed = await closed_auction(stack)
    intent = (
        await stack.post("/api/payments/create-intent", closed.buyer, {"bid_id": closed.bid_id})
    ).json()
    payment_id = intent["payment_id"]

    mine = await stack.get(f"/api/payments/{payment_id}", closed.buyer)
    assert mine.status_code == 200
    payment = mine.json()
    assert payment["status"] == "pending"
    assert payment["failure_reason"] is None
    assert payment["amount"] == intent["amount"]
    assert payment["expires_at"] is not None
    listed = (await stack.get("/api/payments/my-payments", closed.buyer)).json()
    assert [p["id"] for p in listed] == [payment_id]

    assert (await stack.get(f"/api/payments/{payment_id}", unique("other"))).status_code == 404
    assert (await stack.get(f"/api/payments/{payment_id}", closed.seller)).status_code == 404
    assert (await stack.get("/api/payments/my-payments", unique("other"))).json() == []
    operator = await stack.http.get(
        f"/api/payments/{payment_id}", headers=stack.headers(unique("op"), roles=["operator"])
    )
    assert operator.status_code == 200


async def test_a_saga_stopped_by_an_operator_is_restarted_by_the_next_create_intent(
    stack: Stack,
) -> None:
    closed = await closed_auction(stack)
    first = await stack.post("/api/payments/create-intent", closed.buyer, {"bid_id": closed.bid_id})
    handle = stack.temporal.get_workflow_handle(saga_workflow_id(closed.bid_id))
    stopped_run = (await handle.describe()).run_id
    await handle.terminate(reason="operator stopped it by mistake")

    again = await stack.post("/api/payments/create-intent", closed.buyer, {"bid_id": closed.bid_id})
    assert again.status_code == 200, again.text
    assert again.json() == first.json()  # the same intent, the same secret: nothing created
    restarted = await handle.describe()
    assert restarted.status == WorkflowExecutionStatus.RUNNING
    assert restarted.run_id != stopped_run
    async with stack.sessions() as session:
        payments = (
            await session.exec(select(Payment).where(Payment.bid_id == closed.bid_id))
        ).all()
    assert len(payments) == 1
    artwork = (await stack.get(f"/api/artworks/{closed.artwork_id}", closed.seller)).json()
    assert artwork["status"] == "pending_payment"


async def test_a_saga_that_fails_for_good_still_reopens_bidding(
    stack: Stack, localstripe_url: str
) -> None:
    """Runs last in this module: it empties localstripe, as a restart of the emulator does.

    The restarted saga finds its recorded intent gone at Stripe, an error no retry fixes: the
    checkout still ends (bidding reopens, the payment says why) and the run fails visibly.
    """
    closed = await closed_auction(stack)
    await stack.post("/api/payments/create-intent", closed.buyer, {"bid_id": closed.bid_id})
    handle = stack.temporal.get_workflow_handle(saga_workflow_id(closed.bid_id))
    await handle.terminate(reason="operator stopped it")
    async with httpx.AsyncClient() as raw:
        assert (await raw.delete(f"{localstripe_url}/_config/data")).status_code == 200

    response = await stack.post(
        "/api/payments/create-intent", closed.buyer, {"bid_id": closed.bid_id}
    )
    assert response.status_code == 409
    assert "Not Found" not in response.text  # Stripe's own words stay out of the answer
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    artwork = (await stack.get(f"/api/artworks/{closed.artwork_id}", closed.seller)).json()
    assert artwork["status"] == "active"
    async with stack.sessions() as session:
        payment = (await session.exec(select(Payment).where(Payment.bid_id == closed.bid_id))).one()
    assert payment.status == "canceled"
    assert payment.failure_reason is not None
    assert payment.failure_reason.startswith("checkout failed: ")
