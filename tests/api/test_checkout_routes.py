"""The checkout page's API routes answered as declared: the page's view, paying with a card
Stripe declines (402 with the reason), bad input (422), a checkout no longer waiting (409)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import closed_auction
from tests.support.polling import eventually
from tests.support.stack import Stack


async def test_the_winner_sees_the_checkout_it_waits_for(stack: Stack) -> None:
    closed = await closed_auction(stack, "600.00")

    async def view() -> dict[str, Any]:
        answer = await stack.get(f"/api/payments/{closed.bid_id}/checkout", closed.buyer)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    # The close waits for the reservation; the intent opens a moment later (`opening`).
    body = await eventually(view, lambda b: b["state"] == "awaiting_payment", what="opened")
    assert body["title"] == "Blue hour"
    assert body["hammer_price"] == "600.00"
    assert body["amount"] == closed.close["amount"]
    assert body["declines"] == 0
    unknown = await stack.get("/api/payments/999999999/checkout", closed.buyer)
    assert unknown.status_code == 404


async def test_a_declined_card_is_a_402_with_the_reason_then_paying_is_refused_once_paid(
    stack: Stack,
) -> None:
    closed = await closed_auction(stack)
    path = f"/api/payments/{closed.bid_id}/pay"
    declined = await stack.post(
        path, closed.buyer, {"payment_method": "pm_card_chargeCustomerFail"}
    )
    assert declined.status_code == 402, declined.text
    assert "declined" in declined.json()["detail"]

    async def state() -> str:
        answer = await stack.get(f"/api/payments/{closed.bid_id}/checkout", closed.buyer)
        found: str = answer.json()["state"]
        return found

    # The saga hears of the decline from Stripe's webhook, and the view says so.
    await eventually(state, lambda s: s == "declined", what="the decline recorded")


async def test_bad_input_is_a_422_and_a_decided_checkout_a_409(stack: Stack) -> None:
    closed = await closed_auction(stack)
    path = f"/api/payments/{closed.bid_id}/pay"
    for body in ({"payment_method": "card_123"}, {}, {"payment_method": "pm_x", "extra": 1}):
        answer = await stack.post(path, closed.buyer, body)
        assert answer.status_code == 422, answer.text
    paid = await stack.post(path, closed.buyer, {"payment_method": "pm_card_visa"})
    assert paid.json() == {"status": "succeeded", "client_secret": None}

    async def state() -> str:
        answer = await stack.get(f"/api/payments/{closed.bid_id}/checkout", closed.buyer)
        found: str = answer.json()["state"]
        return found

    await eventually(state, lambda s: s == "paid", what="the sale recorded")
    again = await stack.post(path, closed.buyer, {"payment_method": "pm_card_visa"})
    assert again.status_code == 409
    assert again.json() == {"detail": "this checkout is not waiting for a payment"}
    setup = await stack.post(f"/api/payments/{closed.bid_id}/setup-intent", closed.buyer)
    assert setup.status_code == 409
