"""Operators list the queued emails: pending, sent or given up, per bid, page by page."""

from __future__ import annotations

import pytest
from schemathesis import BaseSchema

from tests.api.conftest import assert_documented, closed_auction
from tests.support.stack import Stack, unique

ROUTE = "/api/operator/notifications"


async def test_an_operator_sees_the_emails_of_a_bid(stack: Stack, documented: BaseSchema) -> None:
    closed = await closed_auction(stack)
    intent = await stack.post(
        "/api/payments/create-intent", closed.buyer, {"bid_id": closed.bid_id}
    )
    assert intent.status_code == 200, intent.text
    operator = stack.headers(unique("operator"), roles=["operator"])
    # This stack runs no dispatcher: the email waits, pending, as when SMTP is down.
    listed = await stack.http.get(
        ROUTE, params={"status": "pending", "bid_id": closed.bid_id}, headers=operator
    )
    assert listed.status_code == 200, listed.text
    assert_documented(documented, "GET", ROUTE, listed)
    (item,) = listed.json()["items"]
    assert item["kind"] == "payment_required"
    assert item["recipient_email"] == f"{closed.buyer}@example.com"
    assert item["message_id"].startswith(f"<payment_required.bid-{closed.bid_id}.u")
    assert (item["attempts"], item["last_error"], item["sent_at"]) == (0, None, None)
    assert item["next_attempt_at"] is not None
    assert listed.json()["next_before_id"] is None
    for other in ("sent", "failed"):
        none = await stack.http.get(
            ROUTE, params={"status": other, "bid_id": closed.bid_id}, headers=operator
        )
        assert none.json() == {"items": [], "next_before_id": None}


async def test_pages_follow_each_other_newest_first(stack: Stack) -> None:
    for _ in range(2):
        closed = await closed_auction(stack)
        await stack.post("/api/payments/create-intent", closed.buyer, {"bid_id": closed.bid_id})
    operator = stack.headers(unique("operator"), roles=["operator"])
    seen: list[int] = []
    before: int | None = None
    for _ in range(3):
        params = {"limit": 1} | ({"before_id": before} if before else {})
        page = (await stack.http.get(ROUTE, params=params, headers=operator)).json()
        assert len(page["items"]) == 1
        seen.append(page["items"][0]["id"])
        before = page["next_before_id"]
        assert before == seen[-1]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 3


@pytest.mark.parametrize(
    "params",
    [
        {"status": "bounced"},
        {"limit": 0},
        {"limit": 201},
        {"bid_id": 0},
        {"before_id": 2**63},
        {"bid_id": "twelve"},
    ],
    ids=str,
)
async def test_bad_parameters_are_a_422_naming_them(
    stack: Stack, documented: BaseSchema, params: dict[str, str | int]
) -> None:
    operator = stack.headers(unique("operator"), roles=["operator"])
    response = await stack.http.get(ROUTE, params=params, headers=operator)
    assert response.status_code == 422
    (name,) = params
    assert response.json()["detail"][0]["loc"] == ["query", name]
    assert_documented(documented, "GET", ROUTE, response)


async def test_only_operators_may_look(stack: Stack, documented: BaseSchema) -> None:
    response = await stack.http.get(ROUTE, headers=stack.headers(unique("seller")))
    assert response.status_code == 403
    assert response.json() == {"detail": "only operators can look at the notifications"}
    assert_documented(documented, "GET", ROUTE, response)
