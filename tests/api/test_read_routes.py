"""Routes that only read send PostgreSQL their statements alone: no BEGIN and COMMIT (or
ROLLBACK) round trips around them. The close and the winner's intent are on every checkout's
path."""

from __future__ import annotations

from tests.api.conftest import open_auction
from tests.api.test_webhook_reads import watched_api
from tests.support.stack import Stack, unique


async def test_the_close_and_the_intent_begin_no_transaction_in_the_api(stack: Stack) -> None:
    seller, artwork_id = await open_auction(stack)
    buyer = unique("buyer")
    bid = await stack.post(f"/api/artworks/{artwork_id}/bids", buyer, {"amount": "600.00"})
    assert bid.status_code == 201, bid.text
    bid_id = int(bid.json()["id"])

    # Both callers are known: their first requests wrote them down (not what is counted here).
    assert (await stack.get(f"/api/artworks/{artwork_id}", buyer)).status_code == 200

    async with watched_api(stack) as (http, statements):
        trips, mark = len(statements.transaction_control), len(statements.sent)
        close = await http.post(f"/api/artworks/{artwork_id}/close", headers=stack.headers(seller))
        assert close.status_code == 200, close.text
        assert close.json()["status"] == "pending_payment"
        intent = await http.post(
            "/api/payments/create-intent",
            json={"bid_id": bid_id},
            headers=stack.headers(buyer),
        )
        assert intent.status_code == 200, intent.text
        assert intent.json()["payment_intent_id"].startswith("pi_")
        assert await statements.transaction_control_since(trips) == []
        assert set(statements.since(mark)) == {"SELECT"}
