"""Checkouts driven through the HTTP API, as people do: a seller puts an artwork up, a buyer
bids, the seller closes the auction, the buyer asks for the PaymentIntent to pay.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from api.auth import issue_token


class ApiRefused(Exception):
    """The API answered something else than the step expects."""

    def __init__(self, step: str, response: httpx.Response) -> None:
        super().__init__(f"{step}: HTTP {response.status_code} {response.text[:300]}")
        self.step = step
        self.status_code = response.status_code


@dataclass(frozen=True)
class Auction:
    """An artwork on sale with one bid on it."""

    seller: str
    buyer: str
    artwork_id: int
    bid_id: int


@dataclass(frozen=True)
class OpenCheckout:
    """A closed auction whose winner holds a PaymentIntent to pay."""

    seller: str
    buyer: str
    artwork_id: int
    bid_id: int
    payment_id: int
    payment_intent_id: str
    client_secret: str
    amount: Decimal
    currency: str
    expires_at: datetime


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


class AuctionClient:
    def __init__(self, http: httpx.AsyncClient, jwt_secret: str) -> None:
        self.http = http
        self._jwt_secret = jwt_secret

    def headers(self, who: str, roles: list[str] | None = None) -> dict[str, str]:
        token = issue_token(
            self._jwt_secret,
            sub=who,
            email=f"{who}@example.com",
            name=who.title(),
            roles=roles,
            now=int(time.time()),
        )
        return {"Authorization": f"Bearer {token}"}

    async def call(
        self, method: str, path: str, who: str, body: Any = None, expect: int = 200
    ) -> dict[str, Any]:
        response = await self.http.request(method, path, json=body, headers=self.headers(who))
        if response.status_code != expect:
            raise ApiRefused(f"{method} {path}", response)
        answer: dict[str, Any] = response.json()
        return answer

    async def close_on_one_bid(self, price: str, bid: str, currency: str = "usd") -> OpenCheckout:
        """A new artwork, one bid on it, closed: returns once the saga reserved it."""
        auction = await self.put_up_with_one_bid(price, bid, currency)
        return await self.close(auction)

    async def put_up_with_one_bid(self, price: str, bid: str, currency: str = "usd") -> Auction:
        """A new artwork from a new seller, with one bid from a new buyer, still open."""
        seller, buyer = unique("seller"), unique("buyer")
        artwork = await self.call(
            "POST",
            "/api/artworks",
            seller,
            {"title": "Study in grey", "starting_price": price, "currency": currency},
            expect=201,
        )
        artwork_id = int(artwork["id"])
        placed = await self.call(
            "POST", f"/api/artworks/{artwork_id}/bids", buyer, {"amount": bid}, expect=201
        )
        return Auction(seller, buyer, artwork_id, int(placed["id"]))

    async def close(self, auction: Auction) -> OpenCheckout:
        """The seller closes the auction; the winner asks for the PaymentIntent to pay."""
        await self.call("POST", f"/api/artworks/{auction.artwork_id}/close", auction.seller)
        return await self.intent_for(
            auction.seller, auction.buyer, auction.artwork_id, auction.bid_id
        )

    async def intent_for(
        self, seller: str, buyer: str, artwork_id: int, bid_id: int
    ) -> OpenCheckout:
        intent = await self.call("POST", "/api/payments/create-intent", buyer, {"bid_id": bid_id})
        return OpenCheckout(
            seller=seller,
            buyer=buyer,
            artwork_id=artwork_id,
            bid_id=bid_id,
            payment_id=int(intent["payment_id"]),
            payment_intent_id=str(intent["payment_intent_id"]),
            client_secret=str(intent["client_secret"] or ""),
            amount=Decimal(intent["amount"]),
            currency=str(intent["currency"]),
            expires_at=datetime.fromisoformat(intent["expires_at"]),
        )
