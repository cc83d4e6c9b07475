"""Bids: refused while the artwork waits for payment or is sold."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import ArtworkId, CallerDep, ServicesDep, SessionDep
from api.errors import conflict, error_responses, forbidden, not_found, unprocessable
from api.schemas import BidCreate, BidPublic
from domain.announcements import bid_placed
from domain.checkout import ArtworkStatus
from domain.money import charge_for
from infra.queries import highest_active_bid
from infra.tables import Artwork, Bid

router = APIRouter(prefix="/api/artworks", tags=["bids"])


@router.post(
    "/{artwork_id}/bids",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        400,
        401,
        403,
        404,
        409,
        503,
        meaning={
            403: "Sellers cannot bid on their own artwork.",
            409: "Bidding is closed: the artwork waits for payment or is sold.",
        },
    ),
)
async def place_bid(
    artwork_id: ArtworkId,
    body: BidCreate,
    caller: CallerDep,
    session: SessionDep,
    services: ServicesDep,
) -> BidPublic:
    # The artwork row lock orders this bid against other bids and against the reservation.
    artwork = await session.get(Artwork, artwork_id, with_for_update=True)
    if artwork is None:
        raise not_found("artwork")
    if artwork.seller_id == caller.id:
        raise forbidden("sellers cannot bid on their own artwork")
    if artwork.status != ArtworkStatus.ACTIVE:
        raise conflict(f"bidding is closed: the artwork is {artwork.status}")
    charge_for(body.amount, artwork.currency, services.settings.fee_schedule)
    highest = await highest_active_bid(session, artwork.id)
    if highest is not None and body.amount <= highest.amount:
        raise unprocessable("amount", f"must be above the current highest bid of {highest.amount}")
    if body.amount < artwork.starting_price:
        raise unprocessable(
            "amount", f"must be at least the starting price of {artwork.starting_price}"
        )
    assert artwork.id is not None
    bid = Bid(artwork_id=artwork.id, bidder_id=caller.id, amount=body.amount)
    session.add(bid)
    await session.flush()
    assert bid.id is not None and bid.created_at is not None
    announcement = bid_placed(
        bid_id=bid.id,
        artwork_id=artwork.id,
        amount=bid.amount,
        currency=artwork.currency,
        occurred_at=bid.created_at,
    )
    await services.announcer.write(session, announcement)
    await session.commit()
    return BidPublic(
        id=bid.id,
        artwork_id=bid.artwork_id,
        bidder_id=bid.bidder_id,
        amount=bid.amount,
        currency=artwork.currency,
        status=bid.status,
        created_at=bid.created_at,
    )
