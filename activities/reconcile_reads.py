"""The reconciliation's eyes: Stripe's intents, the database's checkouts, Temporal's sagas.

Reads only; each is safe to retry. The views are the domain's (`domain/reconciliation.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import stripe
from sqlalchemy import and_, exists, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.contracts import STRIPE_REQUEST_REFUSED
from activities.reconcile_contracts import (
    CheckoutRows,
    DescribeSagas,
    IntentsRead,
    ListIntents,
    ReadCheckouts,
    ReadIntents,
    RecentIntents,
    SagasSeen,
)
from domain.checkout import ArtworkStatus, BidStatus, PaymentStatus
from domain.reconciliation import CheckoutRow, IntentSeen, SagaSeen, SagaState
from infra.db import SessionFactory
from infra.tables import Artwork, Bid, Payment
from workflows.reconcile_types import RESTARTED_BY_MEMO
from workflows.types import saga_workflow_id

T = TypeVar("T")
R = TypeVar("R")

PAGE = 100  # Stripe's largest page
CONCURRENT_CALLS = 8  # Temporal describes or Stripe retrieves at once

_STATES = {
    WorkflowExecutionStatus.RUNNING: SagaState.RUNNING,
    WorkflowExecutionStatus.COMPLETED: SagaState.COMPLETED,
    WorkflowExecutionStatus.FAILED: SagaState.FAILED,
    WorkflowExecutionStatus.CANCELED: SagaState.CANCELED,
    WorkflowExecutionStatus.TERMINATED: SagaState.TERMINATED,
    WorkflowExecutionStatus.CONTINUED_AS_NEW: SagaState.CONTINUED_AS_NEW,
    WorkflowExecutionStatus.TIMED_OUT: SagaState.TIMED_OUT,
}


class ReconcileReads:
    def __init__(
        self,
        temporal: Client,
        sessions: SessionFactory,
        stripe_client: stripe.StripeClient,
        idempotency_prefix: str = "",
    ) -> None:
        self._temporal = temporal
        self._sessions = sessions
        self._intents = stripe_client.v1.payment_intents
        self._environment = idempotency_prefix

    @activity.defn
    async def list_recent_intents(self, request: ListIntents) -> RecentIntents:
        """This deployment's intents created since `created_since`, at most `max_intents`
        listed. Stripe lists newest first: a truncated listing misses the oldest ones."""
        window: dict[str, Any] = {"created": {"gte": request.created_since}}
        # The charge tells what an operator refunded already.
        expand = {"expand": ["data.latest_charge"]}
        ours: list[IntentSeen] = []
        listed, starting_after = 0, None
        while True:
            params: dict[str, Any] = {"limit": PAGE, **window, **expand}
            if starting_after is not None:
                params["starting_after"] = starting_after
            try:
                page = await self._intents.list_async(params=params)  # type: ignore[arg-type]
            except stripe.InvalidRequestError as refused:
                if not window or starting_after is not None:
                    raise refused_by_stripe(refused) from refused
                # localstripe refuses any list filter: list everything, keep the window here.
                activity.logger.warning("Stripe refused the `created` filter: filtering here")
                window = {}
                continue
            for intent in page.data:
                listed += 1
                seen = self.seen(intent.to_dict())
                if seen is not None and seen.created >= request.created_since:
                    ours.append(seen)
            activity.heartbeat(listed)
            if not page.has_more or not page.data:
                return RecentIntents(ours, listed, False, bool(window))
            if listed >= request.max_intents:
                return RecentIntents(ours, listed, True, bool(window))
            starting_after = page.data[-1].id

    @activity.defn
    async def read_intents(self, request: ReadIntents) -> IntentsRead:
        """The intents as Stripe has them now; those it does not know (or that are not this
        deployment's) are `missing`."""

        async def one(intent_id: str) -> IntentSeen | str:
            try:
                intent = await self._intents.retrieve_async(
                    intent_id, params={"expand": ["latest_charge"]}
                )
            except stripe.InvalidRequestError as refused:
                if refused.http_status == 404:
                    return intent_id
                raise refused_by_stripe(refused) from refused
            return self.seen(intent.to_dict()) or intent_id

        read = await _bounded(one, request.payment_intent_ids)
        return IntentsRead(
            intents=[item for item in read if isinstance(item, IntentSeen)],
            missing=[item for item in read if isinstance(item, str)],
        )

    @activity.defn
    async def read_checkouts(self, request: ReadCheckouts) -> CheckoutRows:
        async with self._sessions() as session:
            rows = await checkout_rows(session, request.bid_ids)
            if request.max_undecided <= 0:
                return CheckoutRows(rows=list(rows.values()))
            undecided = await _undecided(session, request.max_undecided + 1)
            reserved = await _reserved_without_winner(session)
        truncated = len(undecided) > request.max_undecided
        for row in undecided[: request.max_undecided]:
            rows[row.bid_id] = row
        return CheckoutRows(
            rows=[rows[bid_id] for bid_id in sorted(rows)],
            reserved_without_winner=reserved,
            truncated=truncated,
        )

    @activity.defn
    async def describe_sagas(self, request: DescribeSagas) -> SagasSeen:
        async def one(bid_id: int) -> SagaSeen:
            seen, _ = await describe_saga(self._temporal, bid_id)
            return seen

        return SagasSeen(await _bounded(one, request.bid_ids))

    def seen(self, intent: Mapping[str, Any]) -> IntentSeen | None:
        """The intent as reconciliation sees it, if this deployment's saga made it."""
        metadata = intent.get("metadata") or {}
        bid = str(metadata.get("bid_id") or "")
        # Stripe drops empty metadata values: no `environment` is the empty prefix.
        if (metadata.get("environment") or "") != self._environment or not bid.isdigit():
            return None
        if metadata.get("workflow_id") != saga_workflow_id(int(bid)):
            return None
        charge = intent.get("latest_charge")
        return IntentSeen(
            payment_intent_id=str(intent["id"]),
            status=str(intent.get("status")),
            bid_id=int(bid),
            created=int(intent.get("created") or 0),
            amount_minor=intent.get("amount"),
            currency=intent.get("currency"),
            refunded_minor=int(charge.get("amount_refunded") or 0)
            if isinstance(charge, Mapping)
            else 0,
        )


async def describe_saga(temporal: Client, bid_id: int) -> tuple[SagaSeen, str | None]:
    """The latest run of the bid's saga, and the reconciliation run that started it, if one
    did."""
    handle = temporal.get_workflow_handle(saga_workflow_id(bid_id))
    try:
        described = await handle.describe()
    except RPCError as missing:
        if missing.status is RPCStatusCode.NOT_FOUND:
            return SagaSeen(bid_id, SagaState.MISSING), None
        raise
    assert described.status is not None
    restarted_by = await described.memo_value(RESTARTED_BY_MEMO, None, type_hint=str)
    seen = SagaSeen(bid_id, _STATES[described.status], restarted_by is not None)
    return seen, restarted_by


async def checkout_rows(session: AsyncSession, bid_ids: Iterable[int]) -> dict[int, CheckoutRow]:
    ids = sorted(set(bid_ids))
    if not ids:
        return {}
    query = _checkouts().where(col(Bid.id).in_(ids))
    return {row.bid_id: row for row in _rows(await session.exec(query))}


async def _undecided(session: AsyncSession, limit: int) -> list[CheckoutRow]:
    waiting = or_(
        col(Bid.status) == BidStatus.WON,
        col(Payment.status).in_([PaymentStatus.PENDING, PaymentStatus.FAILED]),
    )
    query = _checkouts().where(waiting).order_by(col(Bid.id)).limit(limit)
    return list(_rows(await session.exec(query)))


async def _reserved_without_winner(session: AsyncSession, limit: int = 100) -> list[int]:
    winner = exists().where(
        and_(col(Bid.artwork_id) == col(Artwork.id), col(Bid.status) == BidStatus.WON)
    )
    query = (
        select(Artwork.id)
        .where(col(Artwork.status) == ArtworkStatus.PENDING_PAYMENT, ~winner)
        .order_by(col(Artwork.id))
        .limit(limit)
    )
    return [artwork_id for artwork_id in await session.exec(query) if artwork_id is not None]


def _checkouts() -> Any:
    return (
        select(Bid, Artwork, Payment)
        .join(Artwork, col(Artwork.id) == col(Bid.artwork_id))
        .outerjoin(Payment, col(Payment.bid_id) == col(Bid.id))
    )


def _rows(found: Iterable[tuple[Bid, Artwork, Payment | None]]) -> Iterable[CheckoutRow]:
    for bid, artwork, payment in found:
        assert bid.id is not None and artwork.id is not None
        yield CheckoutRow(
            bid_id=bid.id,
            artwork_id=artwork.id,
            bid_status=bid.status,
            artwork_status=artwork.status,
            payment_status=payment.status if payment else None,
            payment_intent_id=payment.stripe_payment_intent_id if payment else None,
        )


async def _bounded(call: Callable[[T], Awaitable[R]], items: Iterable[T]) -> list[R]:
    limit = asyncio.Semaphore(CONCURRENT_CALLS)

    async def one(item: T) -> R:
        async with limit:
            result = await call(item)
        activity.heartbeat()
        return result

    return list(await asyncio.gather(*(one(item) for item in items)))


def refused_by_stripe(refusal: stripe.StripeError) -> ApplicationError:
    return ApplicationError(
        f"Stripe refused the request: {refusal.user_message or refusal}",
        type=STRIPE_REQUEST_REFUSED,
        non_retryable=True,
    )
