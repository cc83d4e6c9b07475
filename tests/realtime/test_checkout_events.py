"""Checkouts driven through replica A, the worker and localstripe's own webhooks, heard by
clients connected to replica B: every party gets its events, once, and only its events."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

from tests.realtime.auctions import new_artwork, place_bid
from tests.realtime.conftest import PAYMENT_WINDOW_SECONDS, Replicas
from tests.realtime.listeners import Listener, listening
from tests.support.buyer import DECLINED, pay
from tests.support.stack import Stack, token_for, unique


async def _listeners(exits: AsyncExitStack, url: str, stack: Stack, *users: str) -> list[Listener]:
    return [
        await exits.enter_async_context(listening(url, token_for(stack.settings, user)))
        for user in users
    ]


async def _won_and_opened(stack: Stack, seller: str, buyer: str, artwork_id: int) -> dict[str, Any]:
    closed = await stack.post(f"/api/artworks/{artwork_id}/close", seller)
    assert closed.status_code == 200, closed.text
    bid_id = closed.json()["winning_bid_id"]
    intent = await stack.post("/api/payments/create-intent", buyer, {"bid_id": bid_id})
    assert intent.status_code == 200, intent.text
    opened: dict[str, Any] = intent.json()
    return opened


def _assert_well_formed(listener: Listener, artwork_id: int, client_secret: str) -> None:
    for name, payload in listener.events:
        assert payload["artwork_id"] == artwork_id, name
        assert payload["event_id"].startswith(f"{name}:"), payload
        assert datetime.fromisoformat(payload["occurred_at"]).tzinfo is not None
        assert not any("secret" in key for key in payload), payload
        assert client_secret not in json.dumps(payload)


async def test_a_sale_reaches_the_buyer_the_seller_and_the_watchers_on_the_other_replica(
    replicas: Replicas,
) -> None:
    stack = replicas.a
    seller, buyer, rival, watcher = (unique(who) for who in ("seller", "buyer", "rival", "fan"))
    async with AsyncExitStack() as exits:
        on_b = await _listeners(exits, replicas.b_url, stack, seller, buyer, watcher)
        seller_b, buyer_b, watcher_b = on_b
        (watcher_a,) = await _listeners(exits, replicas.a_url, stack, watcher)
        artwork_id = await new_artwork(stack, seller)
        for listener in (watcher_b, watcher_a, buyer_b):  # the buyer watches their auction
            assert await listener.watch(artwork_id) == {"ok": True, "artwork_id": artwork_id}

        rival_bid = await place_bid(stack, artwork_id, "150.00", rival)
        bid_id = await place_bid(stack, artwork_id, "1250.00", buyer)
        bids = await watcher_b.received("bid_placed", count=2)
        assert [(bid["bid_id"], bid["amount"], bid["currency"]) for bid in bids] == [
            (rival_bid, "150.00", "usd"),
            (bid_id, "1250.00", "usd"),
        ]

        intent = await _won_and_opened(stack, seller, buyer, artwork_id)
        (required,) = await buyer_b.received("payment_required")
        assert required["event_id"] == f"payment_required:{bid_id}"
        assert required["bid_id"] == bid_id
        assert (required["hammer_price"], required["fee_amount"], required["amount"]) == (
            "1250.00",
            "37.64",
            "1287.64",
        )
        assert required["currency"] == "usd"
        assert datetime.fromisoformat(required["expires_at"]) > datetime.fromisoformat(
            required["occurred_at"]
        )

        assert await pay(stack.stripe, intent["payment_intent_id"]) == "succeeded"
        for listener in (*on_b, watcher_a):
            (sold,) = await listener.received("artwork_sold")
            assert sold["event_id"] == f"artwork_sold:{bid_id}"
            assert (sold["bid_id"], sold["hammer_price"], sold["currency"]) == (
                bid_id,
                "1250.00",
                "usd",
            )

        # Events arrive in commit order: whatever had not come before the sale never will.
        assert watcher_b.names() == watcher_a.names()
        assert watcher_b.names() == ["bid_placed", "bid_placed", "payment_required", "artwork_sold"]
        # In their own room and the artwork's, the buyer still hears each event once.
        assert buyer_b.names() == ["bid_placed", "bid_placed", "payment_required", "artwork_sold"]
        # The seller does not watch: only what concerns them as the seller.
        assert seller_b.names() == ["artwork_sold"]
        assert watcher_b.events == watcher_a.events
        for listener in (*on_b, watcher_a):
            _assert_well_formed(listener, artwork_id, intent["client_secret"])


async def test_a_decline_then_the_deadline_reach_the_parties_on_the_other_replica(
    replicas: Replicas,
) -> None:
    stack = replicas.a
    seller, buyer, rival, watcher = (unique(who) for who in ("seller", "buyer", "rival", "fan"))
    async with AsyncExitStack() as exits:
        seller_b, buyer_b, watcher_b = await _listeners(
            exits, replicas.b_url, stack, seller, buyer, watcher
        )
        artwork_id = await new_artwork(stack, seller)
        assert (await watcher_b.watch(artwork_id))["ok"] is True
        await place_bid(stack, artwork_id, "150.00", rival)
        bid_id = await place_bid(stack, artwork_id, "480.00", buyer)
        intent = await _won_and_opened(stack, seller, buyer, artwork_id)

        assert await pay(stack.stripe, intent["payment_intent_id"], DECLINED) == (
            "requires_payment_method"
        )
        (failed,) = await buyer_b.received("payment_failed")
        assert failed["event_id"].startswith(f"payment_failed:{bid_id}:evt_")
        assert "card_declined" in failed["reason"]
        assert failed["attempts"] == 1
        assert failed["expires_at"] is not None

        timeout = PAYMENT_WINDOW_SECONDS + 15
        for listener in (buyer_b, seller_b, watcher_b):
            (reopened,) = await listener.received("bidding_reopened", timeout=timeout)
            assert reopened["event_id"] == f"bidding_reopened:{bid_id}"
            assert (reopened["reason"], reopened["highest_bid"]) == ("expired", "150.00")

        # The decline is the buyer's own business; the watcher heard the rest.
        assert buyer_b.names() == ["payment_required", "payment_failed", "bidding_reopened"]
        assert watcher_b.names() == [
            "bid_placed",
            "bid_placed",
            "payment_required",
            "bidding_reopened",
        ]
        assert seller_b.names() == ["bidding_reopened"]
        for listener in (seller_b, buyer_b, watcher_b):
            _assert_well_formed(listener, artwork_id, intent["client_secret"])
