"""The saga's database side: guarded, idempotent transitions of artworks, bids and payments."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import (
    CHECKOUT_CONFLICT,
    BidRef,
    ExtendPaymentDeadline,
    RecordDecline,
    RecordedIntent,
    Reservation,
    ReserveArtwork,
    SettleCheckout,
)
from domain.announcements import (
    ReopenReason,
    artwork_sold,
    bidding_reopened,
    deadline_extended,
    payment_failed,
)
from domain.checkout import (
    ARTWORK_TRANSITIONS,
    BID_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    ArtworkStatus,
    BidStatus,
    PaymentStatus,
    S,
    TransitionRefused,
    plan_transition,
)
from infra.announcer import Announcer
from infra.checkout_metrics import count_decline
from infra.db import SessionFactory, without_transaction
from infra.queries import checkout_facts, highest_active_bid
from infra.tables import Artwork, Bid, Payment


class Inventory:
    def __init__(self, sessions: SessionFactory, announcer: Announcer) -> None:
        self._sessions = sessions
        self._announcer = announcer

    @activity.defn
    async def reserve_artwork(self, request: ReserveArtwork) -> Reservation:
        """Takes the artwork off sale for this bid, if it still is the highest one."""
        async with self._sessions() as session, session.begin():
            artwork = await session.get(Artwork, request.artwork_id, with_for_update=True)
            bid = await session.get(Bid, request.bid_id, with_for_update=True)
            if artwork is None or bid is None or bid.artwork_id != artwork.id:
                return Reservation(reserved=False, reason="no such bid on this artwork")
            if bid.status == BidStatus.WON and artwork.status == ArtworkStatus.PENDING_PAYMENT:
                return Reservation(reserved=True)  # a retry of a reservation that landed
            if artwork.status != ArtworkStatus.ACTIVE:
                return Reservation(reserved=False, reason=f"the artwork is {artwork.status}")
            if bid.status != BidStatus.ACTIVE:
                return Reservation(reserved=False, reason=f"the bid is {bid.status}")
            highest = await highest_active_bid(session, artwork.id)
            if highest is None or highest.id != bid.id:
                return Reservation(reserved=False, reason="a higher bid arrived before closing")
            _move("artwork", artwork, ArtworkStatus.PENDING_PAYMENT, ARTWORK_TRANSITIONS)
            _move("bid", bid, BidStatus.WON, BID_TRANSITIONS)
        return Reservation(reserved=True)

    @activity.defn
    async def record_decline(self, decline: RecordDecline) -> None:
        if await self._record_decline(decline):
            # Counted once the transaction committed: a retry finds the decline recorded.
            count_decline(decline.failure_code)

    async def _record_decline(self, decline: RecordDecline) -> bool:
        """Records the decline; False when a retry finds it already committed."""
        async with self._sessions() as session, session.begin():
            payment = await _payment_for_bid(session, decline.bid_id)
            recorded = payment.payment_metadata.get("last_decline_event_id") == decline.event_id
            _move("payment", payment, PaymentStatus.FAILED, PAYMENT_TRANSITIONS)
            payment.failure_reason = decline.failure_reason[:500]
            # Absolute values, not increments: a retried activity writes the same row.
            payment.payment_metadata = {
                **payment.payment_metadata,
                "declines": decline.declines,
                "last_decline_event_id": decline.event_id,
            }
            if recorded:
                return False  # a retry of a decline that committed: announced then
            facts = await checkout_facts(session, decline.bid_id)
            await self._announcer.write(
                session,
                payment_failed(
                    facts,
                    reason=payment.failure_reason,
                    attempts=decline.declines,
                    stripe_event_id=decline.event_id,
                    occurred_at=_now(),
                ),
            )
        return True

    @activity.defn
    async def complete_sale(self, sale: SettleCheckout) -> None:
        async with self._sessions() as session, session.begin():
            artwork, bid, payment = await _lock_checkout(session, sale)
            _move("payment", payment, PaymentStatus.SUCCEEDED, PAYMENT_TRANSITIONS)
            payment.stripe_charge_id = sale.charge_id or payment.stripe_charge_id
            _move("bid", bid, BidStatus.PAID, BID_TRANSITIONS)
            if not _move("artwork", artwork, ArtworkStatus.SOLD, ARTWORK_TRANSITIONS):
                return  # a retry of a sale that committed: announced then
            facts = await checkout_facts(session, sale.bid_id)
            await self._announcer.write(
                session, artwork_sold(facts, charge_id=payment.stripe_charge_id, occurred_at=_now())
            )

    @activity.defn
    async def reopen_bidding(self, expiry: SettleCheckout) -> None:
        """Gives the artwork back to the auction; the winning bid stops counting.

        A checkout that ended before its intent existed has no payment to close, and one
        that ended before its reservation has nothing to give back.
        """
        async with self._sessions() as session, session.begin():
            artwork, bid = await _lock_artwork_and_bid(session, expiry)
            payment = await _find_payment(session, expiry.bid_id)
            if payment is not None:
                _check_intent(payment, expiry)
                _move("payment", payment, expiry.unpaid_status, PAYMENT_TRANSITIONS)
                if expiry.reason:
                    payment.failure_reason = expiry.reason[:500]
            elif expiry.payment_intent_id is not None:
                raise _conflict(f"no payment recorded for bid {expiry.bid_id}")
            if bid.status == BidStatus.ACTIVE:
                return
            _move("bid", bid, BidStatus.UNPAID, BID_TRANSITIONS)
            if not _move("artwork", artwork, ArtworkStatus.ACTIVE, ARTWORK_TRANSITIONS):
                return  # a retry of a reopening that committed: announced then
            highest = await highest_active_bid(session, artwork.id)
            facts = await checkout_facts(session, expiry.bid_id)
            expired = expiry.unpaid_status is PaymentStatus.EXPIRED
            await self._announcer.write(
                session,
                bidding_reopened(
                    facts,
                    reason=ReopenReason.EXPIRED if expired else ReopenReason.CANCELED,
                    detail=expiry.public_reason,
                    highest_bid=None if highest is None else highest.amount,
                    occurred_at=_now(),
                ),
            )

    @activity.defn
    async def extend_payment_deadline(self, extension: ExtendPaymentDeadline) -> None:
        """Records an operator's extension: the payment's new deadline, and who gave it, why.

        Deadlines only grow, so extensions committed out of order still leave the latest. A
        payment decided meanwhile is left alone: its deadline no longer means anything.
        """
        async with self._sessions() as session, session.begin():
            payment = await _payment_for_bid(session, extension.bid_id)
            if payment.stripe_payment_intent_id != extension.payment_intent_id:
                raise _conflict(f"checkout of bid {extension.bid_id} does not match its records")
            if payment.status not in (PaymentStatus.PENDING, PaymentStatus.FAILED):
                return
            metadata = payment.payment_metadata
            recorded: list[dict[str, object]] = metadata.get("deadline_extensions", [])
            if any(entry.get("id") == extension.extension_id for entry in recorded):
                return  # a retry of an extension that committed
            payment.expires_at = max(payment.expires_at, extension.expires_at)
            payment.payment_metadata = {
                **metadata,
                "original_expires_at": metadata.get(
                    "original_expires_at", extension.original_expires_at.isoformat()
                ),
                "deadline_extensions": [
                    *recorded,
                    {
                        "id": extension.extension_id,
                        "minutes": extension.minutes,
                        "expires_at": extension.expires_at.isoformat(),
                        "reason": extension.reason[:500],
                        "requested_by": extension.requested_by[:255],
                        "requested_at": extension.requested_at.isoformat(),
                    },
                ],
            }
            if payment.expires_at != extension.expires_at:
                return  # a later extension committed first: it told the buyer the deadline
            facts = await checkout_facts(session, extension.bid_id)
            await self._announcer.write(
                session,
                deadline_extended(
                    facts,
                    extension_id=extension.extension_id,
                    minutes=extension.minutes,
                    occurred_at=_now(),
                ),
            )

    @activity.defn
    async def recorded_payment_intent(self, bid: BidRef) -> RecordedIntent:
        """The intent recorded for this bid, if any: what a failed or canceled saga that has
        not opened one itself (a restarted run) must still settle with Stripe."""
        async with self._sessions() as session:
            await without_transaction(session)
            payment = await _find_payment(session, bid.bid_id, lock=False)
        if payment is None:
            return RecordedIntent()
        return RecordedIntent(payment.stripe_payment_intent_id, payment.amount, payment.fee_amount)


async def _lock_checkout(
    session: AsyncSession, checkout: SettleCheckout
) -> tuple[Artwork, Bid, Payment]:
    artwork, bid = await _lock_artwork_and_bid(session, checkout)
    payment = await _payment_for_bid(session, checkout.bid_id)
    _check_intent(payment, checkout)
    return artwork, bid, payment


async def _lock_artwork_and_bid(
    session: AsyncSession, checkout: SettleCheckout
) -> tuple[Artwork, Bid]:
    # Always artwork, then bid, then payment: the order bids and reservations lock in too.
    artwork = await session.get(Artwork, checkout.artwork_id, with_for_update=True)
    bid = await session.get(Bid, checkout.bid_id, with_for_update=True)
    if artwork is None or bid is None or bid.artwork_id != artwork.id:
        raise _conflict(f"checkout of bid {checkout.bid_id} does not match its records")
    return artwork, bid


def _check_intent(payment: Payment, checkout: SettleCheckout) -> None:
    if payment.stripe_payment_intent_id != checkout.payment_intent_id:
        raise _conflict(f"checkout of bid {checkout.bid_id} does not match its records")


async def _find_payment(session: AsyncSession, bid_id: int, *, lock: bool = True) -> Payment | None:
    query = select(Payment).where(Payment.bid_id == bid_id)
    return (await session.exec(query.with_for_update() if lock else query)).first()


async def _payment_for_bid(session: AsyncSession, bid_id: int) -> Payment:
    payment = await _find_payment(session, bid_id)
    if payment is None:
        raise _conflict(f"no payment recorded for bid {bid_id}")
    return payment


def _conflict(message: str) -> ApplicationError:
    return ApplicationError(message, type=CHECKOUT_CONFLICT, non_retryable=True)


def _move(
    kind: str, row: Artwork | Bid | Payment, target: S, allowed: dict[S, frozenset[S]]
) -> bool:
    """Moves `row` to `target`; False when it already was there (a retried activity)."""
    current = type(target)(row.status)
    try:
        moved = plan_transition(kind, current, target, allowed)
    except TransitionRefused as refused:
        raise _conflict(str(refused)) from None
    if moved:
        row.status = target.value
    return moved


def _now() -> datetime:
    return datetime.now(UTC)
