"""Reads that both the API and the worker make, each in the caller's session."""

from __future__ import annotations

from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.announcements import CheckoutFacts, Party
from domain.checkout import BidStatus
from infra.tables import Artwork, Bid, Payment, User


async def highest_active_bid(session: AsyncSession, artwork_id: int | None) -> Bid | None:
    query = (
        select(Bid)
        .where(Bid.artwork_id == artwork_id, Bid.status == BidStatus.ACTIVE)
        .order_by(col(Bid.amount).desc(), col(Bid.id))
        .limit(1)
    )
    return (await session.exec(query)).first()


async def recorded_intent_id(session: AsyncSession, bid_id: int) -> str | None:
    """The PaymentIntent recorded for a bid: the one its checkout reuses, settles or sells."""
    query = select(Payment.stripe_payment_intent_id).where(Payment.bid_id == bid_id)
    return (await session.exec(query)).first()


async def checkout_facts(session: AsyncSession, bid_id: int) -> CheckoutFacts:
    """Who and what a checkout is about, for the events and emails of its transitions."""
    buyer, seller = aliased(User), aliased(User)
    query = (
        select(Bid, Artwork, buyer, seller)
        .add_columns(Payment)  # a fifth entity, beyond the arities sqlmodel's select() types
        .join(Artwork, col(Artwork.id) == Bid.artwork_id)
        .join(buyer, col(buyer.id) == Bid.bidder_id)
        .join(seller, col(seller.id) == Artwork.seller_id)
        .outerjoin(Payment, col(Payment.bid_id) == Bid.id)  # none before the intent is opened
        .where(col(Bid.id) == bid_id)
    )
    found = await session.exec(query)  # type: ignore[call-overload]
    bid, artwork, buyer_row, seller_row, payment = found.one()
    assert artwork.id is not None and bid.id is not None
    return CheckoutFacts(
        bid_id=bid.id,
        artwork_id=artwork.id,
        artwork_title=artwork.title,
        currency=artwork.currency,
        hammer_price=bid.amount,
        buyer=_party(buyer_row),
        seller=_party(seller_row),
        fee_amount=None if payment is None else payment.fee_amount,
        amount=None if payment is None else payment.amount,
        expires_at=None if payment is None else payment.expires_at,
    )


def _party(user: User) -> Party:
    assert user.id is not None
    return Party(user_id=user.id, email=user.email, name=user.name)
