"""Operators find any checkout and steer it through the API: list, extend, cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.api.conftest import open_auction
from tests.support.polling import eventually
from tests.support.stack import Stack, unique

CHECKOUTS = "/api/operator/checkouts"


@dataclass(frozen=True)
class Won:
    artwork_id: int
    bid_id: int
    payment_id: int
    amount: str
    expires_at: str


@dataclass(frozen=True)
class Buyer:
    name: str
    user_id: int
    won: list[Won]


def operator(stack: Stack, name: str = "operator") -> dict[str, str]:
    return stack.headers(name, roles=["operator"])


async def win(stack: Stack, buyer: str, amount: str = "600.00") -> tuple[Won, int]:
    """`buyer` wins an auction and opens its payment; returns it and the buyer's user id."""
    seller, artwork_id = await open_auction(stack)
    bid = await stack.post(f"/api/artworks/{artwork_id}/bids", buyer, {"amount": amount})
    assert bid.status_code == 201, bid.text
    close = await stack.post(f"/api/artworks/{artwork_id}/close", seller)
    assert close.status_code == 200, close.text
    intent = await stack.post("/api/payments/create-intent", buyer, {"bid_id": bid.json()["id"]})
    assert intent.status_code == 200, intent.text
    opened = intent.json()
    won = Won(
        artwork_id=artwork_id,
        bid_id=bid.json()["id"],
        payment_id=opened["payment_id"],
        amount=opened["amount"],
        expires_at=opened["expires_at"],
    )
    return won, bid.json()["bidder_id"]


@pytest_asyncio.fixture(scope="module")
async def buyer(stack: Stack) -> Buyer:
    """One buyer who won two auctions, both waiting for payment."""
    name = unique("collector")
    first, user_id = await win(stack, name)
    second, _ = await win(stack, name, "700.00")
    return Buyer(name, user_id, [first, second])


async def listing(stack: Stack, **params: Any) -> httpx.Response:
    return await stack.http.get(CHECKOUTS, params=params, headers=operator(stack))


async def listed(stack: Stack, count: int, **params: Any) -> list[dict[str, Any]]:
    """The checkouts the filters select, once visibility shows `count` of them."""

    async def fetch() -> list[dict[str, Any]]:
        response = await listing(stack, **params)
        assert response.status_code == 200, response.text
        checkouts: list[dict[str, Any]] = response.json()["checkouts"]
        return checkouts

    return await eventually(fetch, lambda found: len(found) == count, what=f"{count} listed")


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_checkout_is_listed_with_what_visibility_knows_of_it(
    stack: Stack, buyer: Buyer
) -> None:
    won = buyer.won[0]
    [checkout] = await listed(stack, 1, artwork_id=won.artwork_id, phase="awaiting_payment")
    assert checkout["workflow_id"] == f"payment-bid-{won.bid_id}"
    assert (checkout["bid_id"], checkout["artwork_id"]) == (won.bid_id, won.artwork_id)
    assert checkout["buyer_id"] == buyer.user_id and checkout["seller_id"] is not None
    assert (checkout["phase"], checkout["run_status"]) == ("awaiting_payment", "running")
    assert (checkout["amount_due"], checkout["currency"]) == (won.amount, "usd")
    assert instant(checkout["payment_deadline"]) == instant(won.expires_at)
    assert checkout["closed_at"] is None


async def test_filters_apply_together(stack: Stack, buyer: Buyer) -> None:
    both = await listed(stack, 2, buyer_id=buyer.user_id)
    assert {checkout["bid_id"] for checkout in both} == {won.bid_id for won in buyer.won}
    await listed(stack, 2, buyer_id=buyer.user_id, phase="awaiting_payment")
    await listed(stack, 0, buyer_id=buyer.user_id, phase="sold")
    [one] = await listed(stack, 1, buyer_id=buyer.user_id, artwork_id=buyer.won[1].artwork_id)
    assert one["bid_id"] == buyer.won[1].bid_id
    await listed(stack, 1, seller_id=one["seller_id"])


async def test_pages_follow_one_another_with_their_token(stack: Stack, buyer: Buyer) -> None:
    await listed(stack, 2, buyer_id=buyer.user_id)
    seen: list[int] = []
    token: str | None = None
    for _ in range(4):
        params: dict[str, Any] = {"buyer_id": buyer.user_id, "page_size": 1}
        if token is not None:
            params["next_page_token"] = token
        page = (await listing(stack, **params)).json()
        assert len(page["checkouts"]) <= 1
        seen += [checkout["bid_id"] for checkout in page["checkouts"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert sorted(seen) == sorted(won.bid_id for won in buyer.won)

    first = (await listing(stack, buyer_id=buyer.user_id, page_size=1)).json()
    other_filters = await listing(
        stack, buyer_id=buyer.user_id, phase="sold", next_page_token=first["next_page_token"]
    )
    assert other_filters.status_code == 422
    assert other_filters.json()["detail"][0]["loc"] == ["query", "next_page_token"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"phase": "paid_maybe"}, "phase"),
        ({"artwork_id": 0}, "artwork_id"),
        ({"buyer_id": 2**63}, "buyer_id"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
        ({"next_page_token": "not-a-token"}, "next_page_token"),
        ({"next_page_token": "é"}, "next_page_token"),
        ({"next_page_token": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo"}, "next_page_token"),
    ],
)
async def test_bad_filters_are_422_naming_the_field(
    stack: Stack, params: dict[str, Any], field: str
) -> None:
    response = await listing(stack, **params)
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["query", field]]


async def test_an_operator_extends_the_deadline_and_the_buyer_sees_it(
    stack: Stack, buyer: Buyer
) -> None:
    won = buyer.won[0]
    response = await stack.http.post(
        f"{CHECKOUTS}/{won.bid_id}/extend",
        json={"minutes": 45, "reason": "bank transfer limits"},
        headers=operator(stack, "olga"),
    )
    assert response.status_code == 200, response.text
    status = response.json()
    assert "client_secret" not in status
    expected = instant(won.expires_at) + timedelta(minutes=45)
    assert instant(status["expires_at"]) == expected
    assert instant(status["original_expires_at"]) == instant(won.expires_at)
    [granted] = status["extensions"]
    assert (granted["requested_by"], granted["reason"]) == (
        "olga@example.com",
        "bank transfer limits",
    )
    payment = await stack.get(f"/api/payments/{won.payment_id}", buyer.name)
    assert instant(payment.json()["expires_at"]) == expected
    await eventually(
        lambda: listed(stack, 1, artwork_id=won.artwork_id),
        lambda found: instant(found[0]["payment_deadline"]) == expected,
        what="the new deadline indexed",
    )

    refused = await stack.http.post(
        f"{CHECKOUTS}/{won.bid_id}/extend",
        json={"minutes": 1400, "reason": "a month abroad"},
        headers=operator(stack),
    )
    assert refused.status_code == 409
    assert "at most 1440 minutes past the original" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"minutes": 0, "reason": "x"}, "minutes"),
        ({"minutes": -5, "reason": "x"}, "minutes"),
        ({"minutes": 10, "reason": "   "}, "reason"),
        ({"minutes": 10}, "reason"),
        ({"minutes": 10, "reason": "x", "requested_by": "someone else"}, "requested_by"),
    ],
)
async def test_a_bad_extension_is_422_naming_the_field(
    stack: Stack, buyer: Buyer, body: dict[str, Any], field: str
) -> None:
    response = await stack.http.post(
        f"{CHECKOUTS}/{buyer.won[1].bid_id}/extend", json=body, headers=operator(stack)
    )
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["body", field]]


async def test_an_unknown_checkout_is_404(stack: Stack) -> None:
    for action, body in (("extend", {"minutes": 5, "reason": "x"}), ("cancel", {"reason": "x"})):
        response = await stack.http.post(
            f"{CHECKOUTS}/{2**62}/{action}", json=body, headers=operator(stack)
        )
        assert response.status_code == 404, response.text
        assert response.json() == {"detail": "checkout not found"}


async def test_an_operator_cancels_a_checkout_and_it_cannot_be_steered_after(
    stack: Stack,
) -> None:
    won, _ = await win(stack, unique("buyer"))
    response = await stack.http.post(
        f"{CHECKOUTS}/{won.bid_id}/cancel",
        json={"reason": "the seller withdrew the work"},
        headers=operator(stack, "olga"),
    )
    assert response.status_code == 200, response.text
    status = response.json()
    assert status["phase"] == "canceled"
    assert status["cancel_request"] == {
        "reason": "the seller withdrew the work",
        "requested_by": "olga@example.com",
    }
    artwork = await stack.get(f"/api/artworks/{won.artwork_id}", "anyone")
    assert artwork.json()["status"] == "active"
    await listed(stack, 1, artwork_id=won.artwork_id, phase="canceled")

    for action, body in (
        ("cancel", {"reason": "again"}),
        ("extend", {"minutes": 5, "reason": "x"}),
    ):
        again = await stack.http.post(
            f"{CHECKOUTS}/{won.bid_id}/{action}", json=body, headers=operator(stack)
        )
        assert again.status_code == 409, again.text
        assert again.json() == {"detail": "the checkout already ended: canceled"}


async def test_only_operators_find_and_steer_checkouts(stack: Stack, buyer: Buyer) -> None:
    won = buyer.won[1]
    customer = stack.headers(buyer.name)
    calls = [
        stack.http.get(CHECKOUTS, headers=customer),
        stack.http.post(
            f"{CHECKOUTS}/{won.bid_id}/extend", json={"minutes": 5, "reason": "x"}, headers=customer
        ),
        stack.http.post(f"{CHECKOUTS}/{won.bid_id}/cancel", json={"reason": "x"}, headers=customer),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 403
        assert response.json() == {"detail": "only operators can do this"}
