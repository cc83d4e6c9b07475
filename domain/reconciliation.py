"""What reconciliation makes of the database, Stripe and Temporal seen side by side.

Pure: the reconciliation workflow reads the three views through activities, and this module
says, for each checkout and each PaymentIntent of this deployment, what is wrong with it and
whether it is safe to repair. Only three repairs are ever safe:

- restart a saga that stopped while its checkout is undecided: a restarted saga reuses the
  recorded intent and deadline and asks Stripe, so it ends the checkout as Stripe says;
- tell a running saga that Stripe holds its payment (a webhook that never came): the saga
  believes nothing until it reads the intent itself;
- cancel an intent still payable for a checkout that is decided, or that no checkout records
  (an orphan), when no running saga could still adopt it.

Everything else is reported for an operator: above all money taken without a sale, which is
never refunded automatically.

Views travel inside workflow payloads: no `from __future__ import annotations` here (see
`domain/stripe_events.py`).
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from domain.checkout import BidStatus, IntentState, PaymentStatus, intent_state


class SagaState(StrEnum):
    """The latest run under a checkout's workflow id, as Temporal describes it."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TERMINATED = "terminated"
    TIMED_OUT = "timed_out"
    CONTINUED_AS_NEW = "continued_as_new"
    MISSING = "missing"  # no run under the id: Temporal's data lost, or past retention


class Repair(StrEnum):
    RESTART_SAGA = "restart_saga"
    NOTIFY_SAGA = "notify_saga"
    CANCEL_INTENT = "cancel_intent"


class FindingKind(StrEnum):
    # Repaired by reconciliation.
    SAGA_NOT_RUNNING = "saga_not_running"
    PAID_SAGA_NOT_RUNNING = "paid_saga_not_running"
    PAID_SAGA_WAITING = "paid_saga_waiting"
    LEFTOVER_INTENT = "leftover_intent"
    ORPHAN_INTENT = "orphan_intent"
    # Reported: an operator acts (docs/reconciliation.md says how).
    MONEY_WITHOUT_SALE = "money_without_sale"
    MONEY_IN_FLIGHT = "money_in_flight"
    SOLD_WITHOUT_PAYMENT = "sold_without_payment"
    SAGA_COMPLETED_UNDECIDED = "saga_completed_undecided"
    RESTART_FAILED = "restart_failed"
    ROWS_DISAGREE = "rows_disagree"

    @property
    def urgent(self) -> bool:
        """Money is, or may be, where it should not be."""
        return self in _URGENT


_URGENT = frozenset(
    {FindingKind.MONEY_WITHOUT_SALE, FindingKind.MONEY_IN_FLIGHT, FindingKind.SOLD_WITHOUT_PAYMENT}
)


@dataclass(frozen=True)
class CheckoutRow:
    """The database's view of one bid's checkout."""

    bid_id: int
    artwork_id: int
    bid_status: str
    artwork_status: str
    payment_status: str | None = None
    payment_intent_id: str | None = None

    @property
    def undecided(self) -> bool:
        open_payment = self.payment_status in (PaymentStatus.PENDING, PaymentStatus.FAILED)
        return self.bid_status == BidStatus.WON or open_payment

    @property
    def waiting(self) -> bool:
        """Undecided the way a running saga leaves it: reserved, and not paid yet."""
        return (
            self.bid_status == BidStatus.WON
            and self.artwork_status == "pending_payment"
            and self.payment_status in (None, PaymentStatus.PENDING, PaymentStatus.FAILED)
        )


@dataclass(frozen=True)
class IntentSeen:
    """A PaymentIntent this deployment made (its metadata names our environment)."""

    payment_intent_id: str
    status: str
    bid_id: int
    created: int  # Stripe's clock, seconds since the epoch
    amount_minor: int | None = None
    currency: str | None = None
    refunded_minor: int = 0  # refunded from its charge, by an operator at Stripe

    @property
    def refunded(self) -> bool:
        """An operator gave all of it back: nothing is left for reconciliation to report."""
        return self.refunded_minor > 0 and self.refunded_minor >= (self.amount_minor or 0)


@dataclass(frozen=True)
class SagaSeen:
    bid_id: int
    state: SagaState
    # The run was started by reconciliation: one that fails again is not restarted again.
    restarted_by_reconciliation: bool = False


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    detail: str
    bid_id: int | None = None
    artwork_id: int | None = None
    payment_intent_id: str | None = None
    repair: Repair | None = None  # None: reported only

    def __str__(self) -> str:
        about = [
            f"{name} {value}"
            for name, value in (
                ("bid", self.bid_id),
                ("artwork", self.artwork_id),
                ("PaymentIntent", self.payment_intent_id),
            )
            if value is not None
        ]
        action = f" -> {self.repair.value}" if self.repair else " (for an operator)"
        return f"{self.kind.value} [{', '.join(about)}]: {self.detail}{action}"


def bids_to_look_at(checkouts: Iterable[CheckoutRow], intents: Iterable[IntentSeen]) -> list[int]:
    """The bids whose saga must be described: undecided checkouts, and the bids of intents
    that are neither canceled nor the recorded, succeeded payment of a sale."""
    rows = {row.bid_id: row for row in checkouts}
    bids = {bid_id for bid_id, row in rows.items() if row.undecided}
    bids |= {intent.bid_id for intent in intents if _worth_a_look(intent, rows.get(intent.bid_id))}
    return sorted(bids)


def intents_to_read_again(
    checkouts: Iterable[CheckoutRow], intents: Iterable[IntentSeen]
) -> list[str]:
    """Intents whose state decides a cancel or a report: read again after the database, so a
    sale or a cancel made meanwhile by a saga is seen (a saga writes Stripe first)."""
    rows = {row.bid_id: row for row in checkouts}
    return sorted(
        intent.payment_intent_id
        for intent in intents
        if _worth_a_look(intent, rows.get(intent.bid_id))
        and not _recorded_for_undecided(intent, rows.get(intent.bid_id))
    )


def assess(
    checkouts: Iterable[CheckoutRow],
    intents: Iterable[IntentSeen],
    sagas: Mapping[int, SagaSeen],
    reserved_without_winner: Sequence[int] = (),
    *,
    now: int,
    orphan_grace_seconds: int,
) -> list[Finding]:
    """Every finding, in a stable order: checkouts by bid, then intents by id, then artworks."""
    rows = {row.bid_id: row for row in checkouts}
    by_id = {intent.payment_intent_id: intent for intent in intents}
    findings = [
        finding
        for bid_id in sorted(rows)
        if rows[bid_id].undecided
        and (finding := checkout_finding(rows[bid_id], by_id, sagas.get(bid_id))) is not None
    ]
    for intent_id in sorted(by_id):
        intent = by_id[intent_id]
        row = rows.get(intent.bid_id)
        if _recorded_for_undecided(intent, row):
            continue  # the checkout's own finding covers it
        finding = intent_finding(
            intent, row, sagas.get(intent.bid_id), now=now, grace=orphan_grace_seconds
        )
        if finding is not None:
            findings.append(finding)
    findings += [
        Finding(
            FindingKind.ROWS_DISAGREE,
            "the artwork waits for a payment, but none of its bids won",
            artwork_id=artwork_id,
        )
        for artwork_id in sorted(reserved_without_winner)
    ]
    return findings


def checkout_finding(
    row: CheckoutRow, intents: Mapping[str, IntentSeen], saga: SagaSeen | None
) -> Finding | None:
    """An undecided checkout: fine while its saga runs; restarted when the saga stopped."""

    def found(kind: FindingKind, detail: str, repair: Repair | None = None) -> Finding:
        return Finding(kind, detail, row.bid_id, row.artwork_id, row.payment_intent_id, repair)

    intent = intents.get(row.payment_intent_id or "")
    paid = intent is not None and intent_state(intent.status) is IntentState.PAID
    if not row.waiting:
        return found(
            FindingKind.ROWS_DISAGREE,
            f"bid {row.bid_status}, artwork {row.artwork_status}, payment "
            f"{row.payment_status or 'none'}: neither decided nor waiting",
        )
    if saga is None:
        return None  # not described: nothing is known, nothing is done
    if saga.state is SagaState.RUNNING:
        if not paid:
            return None
        return found(
            FindingKind.PAID_SAGA_WAITING,
            "Stripe holds the payment; the running saga has not heard of it",
            Repair.NOTIFY_SAGA,
        )
    if saga.state is SagaState.COMPLETED:
        return found(
            FindingKind.SAGA_COMPLETED_UNDECIDED,
            "the saga completed, but the database still waits for a payment",
        )
    if saga.state is SagaState.FAILED and saga.restarted_by_reconciliation:
        return found(
            FindingKind.RESTART_FAILED,
            "the saga reconciliation restarted failed too: its failure says why",
        )
    kind = FindingKind.PAID_SAGA_NOT_RUNNING if paid else FindingKind.SAGA_NOT_RUNNING
    detail = f"the checkout waits for a payment, but its saga is {saga.state.value}"
    return found(kind, detail + ("; Stripe holds the payment" if paid else ""), Repair.RESTART_SAGA)


def intent_finding(
    intent: IntentSeen,
    row: CheckoutRow | None,
    saga: SagaSeen | None,
    *,
    now: int,
    grace: int,
) -> Finding | None:
    """An intent that is not the recorded one of an undecided checkout."""

    def found(kind: FindingKind, detail: str, repair: Repair | None = None) -> Finding:
        artwork_id = row.artwork_id if row else None
        return Finding(kind, detail, intent.bid_id, artwork_id, intent.payment_intent_id, repair)

    state = intent_state(intent.status)
    if state is IntentState.CANCELED:
        return None
    recorded = row is not None and row.payment_intent_id == intent.payment_intent_id
    sold = recorded and row is not None and row.payment_status == PaymentStatus.SUCCEEDED
    # A saga may still adopt it: one runs for its bid, or (unrecorded) it is young enough to
    # be in the middle of being created and recorded.
    unrecorded = row is None or row.payment_intent_id is None
    adoptable = saga is None or saga.state is SagaState.RUNNING
    if unrecorded:
        adoptable = adoptable or now - intent.created < grace
    if state is IntentState.PAID:
        if sold or adoptable or intent.refunded:
            return None
        return found(FindingKind.MONEY_WITHOUT_SALE, _money_detail(intent, row))
    if sold:
        return found(
            FindingKind.SOLD_WITHOUT_PAYMENT,
            f"the sale is recorded, but Stripe shows its intent {intent.status}",
        )
    if adoptable or (row is not None and row.bid_status == BidStatus.WON):
        # The checkout is undecided: its saga, or the restart of it, may adopt the intent
        # (Stripe answers the saga's idempotency key with it). Once decided, it is canceled.
        return None
    if state is IntentState.IN_FLIGHT:
        return found(
            FindingKind.MONEY_IN_FLIGHT,
            f"Stripe is still {intent.status} an intent for a decided or unknown checkout: "
            "money may yet land without a sale",
        )
    if unrecorded:
        known = "no such bid" if row is None else f"bid {row.bid_status}, no payment recorded"
        detail = f"an open intent no checkout records ({known})"
        return found(FindingKind.ORPHAN_INTENT, detail, Repair.CANCEL_INTENT)
    assert row is not None
    which = "its intent" if recorded else f"a second intent (it records {row.payment_intent_id})"
    return found(
        FindingKind.LEFTOVER_INTENT,
        f"the checkout is decided (payment {row.payment_status}), but {which} is still "
        f"{intent.status}",
        Repair.CANCEL_INTENT,
    )


def _money_detail(intent: IntentSeen, row: CheckoutRow | None) -> str:
    amount = f"{intent.amount_minor} {intent.currency} (minor units) taken"
    if intent.refunded_minor:
        amount += f", {intent.refunded_minor} refunded so far"
    if row is None:
        return f"{amount} for bid {intent.bid_id}, which this database does not know"
    if row.payment_intent_id == intent.payment_intent_id:
        return f"{amount}, but the checkout reopened (payment {row.payment_status})"
    if row.payment_intent_id is None:
        return f"{amount}, but no payment is recorded for the bid (bid {row.bid_status})"
    twice = " (paid twice)" if row.payment_status == PaymentStatus.SUCCEEDED else ""
    return (
        f"{amount} on an intent the checkout does not record; it records "
        f"{row.payment_intent_id}, payment {row.payment_status}{twice}"
    )


def _worth_a_look(intent: IntentSeen, row: CheckoutRow | None) -> bool:
    state = intent_state(intent.status)
    if state is IntentState.CANCELED:
        return False
    if state is IntentState.PAID and intent.refunded:
        return False
    recorded = row is not None and row.payment_intent_id == intent.payment_intent_id
    sold = row is not None and row.payment_status == PaymentStatus.SUCCEEDED
    return not (recorded and sold and state is IntentState.PAID)


def _recorded_for_undecided(intent: IntentSeen, row: CheckoutRow | None) -> bool:
    return row is not None and row.undecided and row.payment_intent_id == intent.payment_intent_id
