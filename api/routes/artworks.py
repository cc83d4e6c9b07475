"""Artworks: put one up for auction, look at it, close its auction."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, status
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.deps import ArtworkId, CallerDep, ReadSessionDep, ServicesDep, SessionDep
from api.errors import conflict, error_responses, forbidden, not_found
from api.schemas import ArtworkCreate, ArtworkPublic, CloseResult
from api.services import Services
from domain.checkout import ArtworkStatus, BidStatus
from domain.money import charge_for
from infra.queries import highest_active_bid
from infra.tables import Artwork, Bid, Payment
from workflows.starts import RESTART_FAILED_ONLY
from workflows.types import AwaitedStage, CheckoutPhase, PaymentSagaInput, saga_workflow_id

router = APIRouter(prefix="/api/artworks", tags=["artworks"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(400, 401, 503))
async def create_artwork(
    body: ArtworkCreate, caller: CallerDep, session: SessionDep, services: ServicesDep
) -> ArtworkPublic:
    # A price Stripe could not charge is refused now, not when the auction closes.
    charge_for(body.starting_price, body.currency, services.settings.fee_schedule, "starting_price")
    artwork = Artwork(
        seller_id=caller.id,
        title=body.title,
        starting_price=body.starting_price,
        currency=body.currency,
    )
    session.add(artwork)
    await session.commit()
    return await artwork_view(session, artwork)


@router.get("/{artwork_id}", responses=error_responses(401, 404, 503))
async def get_artwork(artwork_id: ArtworkId, _: CallerDep, session: SessionDep) -> ArtworkPublic:
    artwork = await session.get(Artwork, artwork_id)
    if artwork is None:
        raise not_found("artwork")
    return await artwork_view(session, artwork)


@router.post(
    "/{artwork_id}/close",
    responses=error_responses(
        401,
        403,
        404,
        409,
        503,
        meaning={
            403: "Only the seller or an operator can close an auction.",
            409: "No bids, a higher bid arrived first, or the checkout failed.",
        },
    ),
)
async def close_auction(
    artwork_id: ArtworkId, caller: CallerDep, session: ReadSessionDep, services: ServicesDep
) -> CloseResult:
    """The highest bid wins: its checkout saga starts and takes the artwork off sale.

    Closing again once it closed answers as the first close did (with the artwork's status
    now): a seller whose first answer was lost may simply retry.
    """
    artwork = await session.get(Artwork, artwork_id)
    if artwork is None:
        raise not_found("artwork")
    if artwork.seller_id != caller.id and not caller.is_operator:
        raise forbidden("only the seller or an operator can close this auction")
    if artwork.status == ArtworkStatus.ACTIVE:
        winner = await highest_active_bid(session, artwork.id)
        if winner is None:
            raise conflict("there are no bids to close the auction on")
        # A bid still `active` may only have had a saga that was rejected before: a new run.
        reuse = WorkflowIDReusePolicy.ALLOW_DUPLICATE
    else:
        winner = await _winning_bid(session, artwork)
        reuse = RESTART_FAILED_ONLY
    await session.commit()  # the connection goes back to the pool while the saga works

    saga = services.sagas.input_for(winner, artwork)
    amount, fee_amount = await _reserved_charge(session, services, saga, winner, reuse)
    await session.refresh(artwork)
    return CloseResult(
        artwork_id=saga.artwork_id,
        status=artwork.status,
        winning_bid_id=saga.bid_id,
        workflow_id=saga_workflow_id(saga.bid_id),
        hammer_price=saga.hammer_price,
        amount=amount,
        fee_amount=fee_amount,
        currency=saga.currency,
        checkout_url=f"{services.settings.public_base_url}/checkout/{saga.bid_id}",
    )


async def _winning_bid(session: AsyncSession, artwork: Artwork) -> Bid:
    query = select(Bid).where(
        Bid.artwork_id == artwork.id, col(Bid.status).in_([BidStatus.WON, BidStatus.PAID])
    )
    winner = (await session.exec(query)).first()
    if winner is None:
        raise conflict(f"the auction is not open: the artwork is {artwork.status}")
    return winner


async def _reserved_charge(
    session: AsyncSession,
    services: Services,
    saga: PaymentSagaInput,
    winner: Bid,
    reuse: WorkflowIDReusePolicy,
) -> tuple[Decimal | None, Decimal | None]:
    """What the winner pays, once the saga has reserved the artwork for them."""
    if winner.status == BidStatus.PAID:
        return await _recorded_charge(session, saga.bid_id)  # sold: the saga is done
    try:
        checkout = await services.sagas.await_stage(saga, AwaitedStage.RESERVED, reuse)
    except WorkflowAlreadyStartedError:
        if winner.status == BidStatus.ACTIVE:
            raise conflict("this bid's checkout already finished") from None
        return await _recorded_charge(session, saga.bid_id)
    if checkout.phase is CheckoutPhase.REJECTED:
        raise conflict(f"the auction could not close: {checkout.rejection_reason}")
    return checkout.amount, checkout.fee_amount


async def _recorded_charge(
    session: AsyncSession, bid_id: int
) -> tuple[Decimal | None, Decimal | None]:
    payment = (await session.exec(select(Payment).where(Payment.bid_id == bid_id))).first()
    return (payment.amount, payment.fee_amount) if payment else (None, None)


async def artwork_view(session: AsyncSession, artwork: Artwork) -> ArtworkPublic:
    assert artwork.id is not None and artwork.created_at and artwork.updated_at
    highest = await highest_active_bid(session, artwork.id)
    winner_query = select(Bid.id).where(
        Bid.artwork_id == artwork.id, col(Bid.status).in_([BidStatus.WON, BidStatus.PAID])
    )
    winning_bid_id = (await session.exec(winner_query)).first()
    return ArtworkPublic(
        id=artwork.id,
        title=artwork.title,
        seller_id=artwork.seller_id,
        starting_price=artwork.starting_price,
        currency=artwork.currency,
        status=artwork.status,
        highest_bid=highest.amount if highest else None,
        winning_bid_id=winning_bid_id,
        created_at=artwork.created_at,
        updated_at=artwork.updated_at,
    )
