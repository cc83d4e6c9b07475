"""Rows a checkout starts from, written straight to the database."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from decimal import Decimal

from domain.checkout import ArtworkStatus, BidStatus
from infra.db import SessionFactory
from infra.tables import Artwork, Bid, Payment, User

_counter = itertools.count(1)


@dataclass(frozen=True)
class Auction:
    seller_id: int
    buyer_id: int
    artwork_id: int
    bid_id: int
    hammer_price: Decimal
    currency: str


async def make_user(sessions: SessionFactory, name: str) -> User:
    subject = f"{name}-{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        user = User(subject=subject, email=f"{subject}@example.com", name=name)
        session.add(user)
        await session.commit()
        return user


async def make_auction(
    sessions: SessionFactory, hammer_price: str = "1000.00", currency: str = "usd"
) -> Auction:
    """An open artwork whose highest bid is `hammer_price`."""
    seller = await make_user(sessions, "seller")
    buyer = await make_user(sessions, "buyer")
    price = Decimal(hammer_price)
    async with sessions() as session:
        assert seller.id is not None and buyer.id is not None
        artwork = Artwork(
            seller_id=seller.id,
            title=f"Study no. {next(_counter)}",
            starting_price=price,
            currency=currency,
        )
        session.add(artwork)
        await session.flush()
        assert artwork.id is not None
        bid = Bid(artwork_id=artwork.id, bidder_id=buyer.id, amount=price)
        session.add(bid)
        await session.commit()
        assert bid.id is not None
        return Auction(seller.id, buyer.id, artwork.id, bid.id, price, currency)


@dataclass(frozen=True)
class CheckoutRows:
    artwork_status: str
    bid_status: str
    payments: list[Payment]

    @property
    def payment(self) -> Payment:
        assert len(self.payments) == 1, self.payments
        return self.payments[0]


async def checkout_rows(sessions: SessionFactory, auction: Auction) -> CheckoutRows:
    from sqlmodel import select

    async with sessions() as session:
        artwork = await session.get(Artwork, auction.artwork_id)
        bid = await session.get(Bid, auction.bid_id)
        assert artwork is not None and bid is not None
        payments = list(
            (await session.exec(select(Payment).where(Payment.bid_id == auction.bid_id))).all()
        )
        return CheckoutRows(ArtworkStatus(artwork.status), BidStatus(bid.status), payments)
