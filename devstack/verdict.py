"""What a checkout ended as, judged from the outside.

The service promises that every winning bid's checkout ends in one of two ways, and that the
database, Stripe and Temporal tell the same story about it:

- sold: artwork `sold`, bid `paid`, payment `succeeded`, its PaymentIntent `succeeded` at
  Stripe for the recorded amount (in minor units) and currency, the saga completed `sold`;
- reopened: bid `unpaid`, payment `expired` (nobody paid in time) or `canceled` (an operator
  called it off), its PaymentIntent `canceled` at Stripe, the saga completed `reopened` or
  `canceled` accordingly, the artwork back on sale.

In both, any other PaymentIntent opened for the bid must be canceled: an open one could still
be paid, a succeeded one is money taken twice. And the parties were told, once: the emails
queued for the checkout are exactly those of its outcome (the winner's request to pay, then
the receipt and the seller's notice of sale; or the winner's expiry or cancellation notice and
the seller's notice that bidding reopened), with no kind twice.

A checkout still waiting is `undecided`; any other combination is `broken`. Reading the three
views is separate from judging them, so a whole load run is judged from one listing of Stripe
and one query of the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

import stripe
from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from domain.money import to_minor_units
from domain.stripe_events import charge_id_of
from infra.db import SessionFactory
from infra.tables import Artwork, Bid, Notification, Payment
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.types import saga_workflow_id


class Outcome(StrEnum):
    SOLD = "sold"
    REOPENED = "reopened"
    UNDECIDED = "undecided"  # the artwork still waits for this bid's payment
    BROKEN = "broken"  # a combination the promise excludes


@dataclass(frozen=True)
class CheckoutRows:
    """The database's view of one checkout."""

    bid_id: int
    artwork_id: int
    artwork_status: str
    bid_status: str
    payment_status: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    payment_intent_id: str | None = None
    charge_id: str | None = None
    failure_reason: str | None = None
    # The kinds of the emails queued for the checkout, one entry per row; None when not read.
    mails: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SagaView:
    """Temporal's view: the latest run's status and, once completed, its final phase."""

    status: str  # RUNNING, COMPLETED, FAILED, TERMINATED, ... or MISSING
    phase: str | None = None


@dataclass
class Verdict:
    bid_id: int
    outcome: Outcome
    rows: CheckoutRows | None
    intent: Mapping[str, Any] | None
    saga: SagaView | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.SOLD, Outcome.REOPENED) and not self.problems

    @property
    def settled(self) -> bool:
        """Decided, and the saga no longer running: nothing is left to change it."""
        running = self.saga is not None and self.saga.status == "RUNNING"
        return self.outcome is not Outcome.UNDECIDED and not running

    def __str__(self) -> str:
        intent = self.intent or {}
        at_stripe = (
            f"{intent.get('id')} {intent.get('status')} {intent.get('amount')} "
            f"{intent.get('currency')}"
            if intent
            else "no intent"
        )
        return (
            f"bid {self.bid_id}: {self.outcome}"
            + "".join(f"\n  - {problem}" for problem in self.problems)
            + f"\n  database: {self.rows}\n  stripe: {at_stripe}\n  temporal: {self.saga}"
        )


# Reading the three views.


async def read_rows(sessions: SessionFactory, bid_ids: Iterable[int]) -> dict[int, CheckoutRows]:
    ids = list(bid_ids)
    query = (
        select(Bid, Artwork, Payment)
        .join(Artwork, col(Artwork.id) == Bid.artwork_id)
        .outerjoin(Payment, col(Payment.bid_id) == Bid.id)
        .where(col(Bid.id).in_(ids))
    )
    mails_query = select(Notification.bid_id, Notification.kind).where(
        col(Notification.bid_id).in_(ids)
    )
    async with sessions() as session:
        found = (await session.exec(query)).all()
        queued = (await session.exec(mails_query)).all()
    mails: dict[int, list[str]] = {}
    for bid_id, kind in queued:
        mails.setdefault(bid_id, []).append(kind)
    rows = {}
    for bid, artwork, payment in found:
        assert bid.id is not None and artwork.id is not None
        rows[bid.id] = CheckoutRows(
            bid_id=bid.id,
            artwork_id=artwork.id,
            artwork_status=artwork.status,
            bid_status=bid.status,
            payment_status=payment.status if payment else None,
            amount=payment.amount if payment else None,
            currency=payment.currency if payment else None,
            payment_intent_id=payment.stripe_payment_intent_id if payment else None,
            charge_id=payment.stripe_charge_id if payment else None,
            failure_reason=payment.failure_reason if payment else None,
            mails=tuple(sorted(mails.get(bid.id, []))),
        )
    return rows


async def read_intents(client: stripe.StripeClient) -> dict[str, dict[str, Any]]:
    """Every PaymentIntent Stripe holds, by id (localstripe cannot filter by metadata)."""
    intents: dict[str, dict[str, Any]] = {}
    starting_after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if starting_after:
            params["starting_after"] = starting_after
        page = await client.v1.payment_intents.list_async(params=params)  # type: ignore[arg-type]
        for intent in page.data:
            intents[intent.id] = intent.to_dict()
        if not page.has_more or not page.data:
            return intents
        starting_after = page.data[-1].id


async def read_saga(temporal: Client, bid_id: int) -> SagaView:
    handle = temporal.get_workflow_handle_for(PaymentSagaWorkflow.run, saga_workflow_id(bid_id))
    try:
        described = await handle.describe()
    except RPCError as missing:
        if missing.status is RPCStatusCode.NOT_FOUND:
            return SagaView("MISSING")
        raise
    status = described.status
    name = status.name if status is not None else "UNKNOWN"
    if status is not WorkflowExecutionStatus.COMPLETED:
        return SagaView(name)
    result = await handle.result()
    return SagaView(name, result.phase.value)


async def read_sagas(
    temporal: Client, bid_ids: Iterable[int], concurrency: int = 20
) -> dict[int, SagaView]:
    limit = asyncio.Semaphore(concurrency)

    async def one(bid_id: int) -> tuple[int, SagaView]:
        async with limit:
            return bid_id, await read_saga(temporal, bid_id)

    return dict(await asyncio.gather(*(one(bid_id) for bid_id in bid_ids)))


# Judging them.


def intents_by_bid(intents: Mapping[str, Mapping[str, Any]]) -> dict[int, list[str]]:
    """The ids of the intents opened for each bid, from the metadata the saga writes."""
    by_bid: dict[int, list[str]] = {}
    for intent_id, intent in intents.items():
        bid = str((intent.get("metadata") or {}).get("bid_id", ""))
        if bid.isdigit():
            by_bid.setdefault(int(bid), []).append(intent_id)
    return by_bid


def judge(
    bid_id: int,
    rows: CheckoutRows | None,
    intents: Mapping[str, Mapping[str, Any]],
    saga: SagaView | None,
    opened_for_bid: Iterable[str] = (),
) -> Verdict:
    intent = intents.get(rows.payment_intent_id or "") if rows else None
    verdict = Verdict(bid_id, _outcome_of(rows), rows, intent, saga)
    problems = verdict.problems
    if rows is None:
        problems.append("no such bid in the database")
        return verdict
    if verdict.outcome is Outcome.BROKEN:
        problems.append(
            f"artwork {rows.artwork_status}, bid {rows.bid_status}, "
            f"payment {rows.payment_status}: neither sold, reopened nor waiting"
        )
    stripe_status = intent.get("status") if intent else None
    if rows.payment_intent_id and intent is None:
        problems.append(f"Stripe has no PaymentIntent {rows.payment_intent_id}")
    if verdict.outcome is Outcome.SOLD:
        problems += _sale_problems(rows, intent)
        problems += _saga_problems(saga, {"sold"})
    elif verdict.outcome is Outcome.REOPENED:
        if stripe_status != "canceled":
            problems.append(f"reopened, but the intent is {stripe_status} at Stripe")
        problems += _saga_problems(
            saga, {"canceled"} if rows.payment_status == "canceled" else {"reopened"}
        )
    elif verdict.outcome is Outcome.UNDECIDED and saga is not None and saga.status != "RUNNING":
        problems.append(f"still waiting for a payment, but its saga is {saga.status}")
    problems += _mail_problems(rows, verdict.outcome)
    for other in opened_for_bid:
        status = intents[other].get("status")
        if other != rows.payment_intent_id and status != "canceled":
            problems.append(f"a second PaymentIntent {other} for this bid is {status}")
    return verdict


def _outcome_of(rows: CheckoutRows | None) -> Outcome:
    if rows is None:
        return Outcome.BROKEN
    state = (rows.artwork_status, rows.bid_status, rows.payment_status)
    if state == ("sold", "paid", "succeeded"):
        return Outcome.SOLD
    # A reopened artwork may meanwhile have been closed on, or sold to, another bid.
    if rows.bid_status == "unpaid" and rows.payment_status in ("expired", "canceled"):
        return Outcome.REOPENED
    waiting = rows.payment_status in (None, "pending", "failed")
    if state[:2] == ("pending_payment", "won") and waiting:
        return Outcome.UNDECIDED
    return Outcome.BROKEN


def _sale_problems(rows: CheckoutRows, intent: Mapping[str, Any] | None) -> list[str]:
    if intent is None:
        return []
    problems = []
    if intent.get("status") != "succeeded":
        problems.append(f"sold, but the intent is {intent.get('status')} at Stripe")
    assert rows.amount is not None and rows.currency is not None
    expected = to_minor_units(rows.amount, rows.currency)
    if intent.get("amount") != expected or intent.get("currency") != rows.currency:
        problems.append(
            f"recorded {expected} {rows.currency}, Stripe charged "
            f"{intent.get('amount')} {intent.get('currency')}"
        )
    charge = charge_id_of(intent)
    if charge is not None and rows.charge_id != charge:
        problems.append(f"recorded charge {rows.charge_id}, Stripe's is {charge}")
    return problems


# The emails each outcome queues, besides the winner's declines and extensions (any number).
_MAILS_OF = {
    "sold": ("artwork_sold", "payment_receipt", "payment_required"),
    "expired": ("bidding_reopened", "payment_expired", "payment_required"),
    "canceled": ("bidding_reopened", "checkout_canceled", "payment_required"),
}


def _mail_problems(rows: CheckoutRows, outcome: Outcome) -> list[str]:
    if rows.mails is None or outcome not in (Outcome.SOLD, Outcome.REOPENED):
        return []
    key = "sold" if outcome is Outcome.SOLD else str(rows.payment_status)
    queued = tuple(k for k in rows.mails if k not in ("payment_failed", "deadline_extended"))
    if queued != _MAILS_OF[key]:
        return [f"emails queued {list(queued)}, expected {list(_MAILS_OF[key])} once each"]
    return []


def _saga_problems(saga: SagaView | None, phases: set[str]) -> list[str]:
    if saga is None:
        return []
    if saga.status != "COMPLETED" or saga.phase not in phases:
        return [f"saga {saga.status} in phase {saga.phase}, expected completed {sorted(phases)}"]
    return []


async def judge_checkouts(
    bid_ids: Iterable[int],
    *,
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
    temporal: Client,
) -> dict[int, Verdict]:
    """Every checkout of `bid_ids`, judged from one read of each view.

    Temporal is read first, the database next, Stripe last: the saga writes Stripe before
    the database and completes after both, so a saga seen completed has its rows and its
    intent in their final state already.
    """
    ids = list(bid_ids)
    sagas = await read_sagas(temporal, ids)
    rows = await read_rows(sessions, ids)
    intents = await read_intents(stripe_client)
    opened = intents_by_bid(intents)
    return {
        bid_id: judge(bid_id, rows.get(bid_id), intents, sagas[bid_id], opened.get(bid_id, []))
        for bid_id in ids
    }
