"""Auctions driven through the HTTP API of a replica, as their users would."""

from __future__ import annotations

from tests.support.stack import Stack, unique


async def new_artwork(stack: Stack, seller: str | None = None, price: str = "100.00") -> int:
    created = await stack.post(
        "/api/artworks", seller or unique("seller"), {"title": "Harbour", "starting_price": price}
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def place_bid(stack: Stack, artwork_id: int, amount: str, who: str | None = None) -> int:
    bid = await stack.post(
        f"/api/artworks/{artwork_id}/bids", who or unique("bidder"), {"amount": amount}
    )
    assert bid.status_code == 201, bid.text
    return int(bid.json()["id"])
