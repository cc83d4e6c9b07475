"""The checkout state machine: statuses of artworks, bids and payments, and what may follow what.

Pure: the activities ask it before every write, the workflow asks it what a deadline means.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar


class ArtworkStatus(StrEnum):
    ACTIVE = "active"
    PENDING_PAYMENT = "pending_payment"
    SOLD = "sold"


class BidStatus(StrEnum):
    ACTIVE = "active"
    WON = "won"
    PAID = "paid"
    UNPAID = "unpaid"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    FAILED = "failed"  # a declined attempt; the buyer may retry until the deadline
    SUCCEEDED = "succeeded"
    EXPIRED = "expired"
    CANCELED = "canceled"


ARTWORK_TRANSITIONS: dict[ArtworkStatus, frozenset[ArtworkStatus]] = {
    ArtworkStatus.ACTIVE: frozenset({ArtworkStatus.PENDING_PAYMENT}),
    ArtworkStatus.PENDING_PAYMENT: frozenset({ArtworkStatus.SOLD, ArtworkStatus.ACTIVE}),
    ArtworkStatus.SOLD: frozenset(),
}

BID_TRANSITIONS: dict[BidStatus, frozenset[BidStatus]] = {
    BidStatus.ACTIVE: frozenset({BidStatus.WON}),
    BidStatus.WON: frozenset({BidStatus.PAID, BidStatus.UNPAID}),
    BidStatus.PAID: frozenset(),
    BidStatus.UNPAID: frozenset(),
}

_OPEN_PAYMENT = frozenset(
    {PaymentStatus.FAILED, PaymentStatus.SUCCEEDED, PaymentStatus.EXPIRED, PaymentStatus.CANCELED}
)
PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: _OPEN_PAYMENT,
    PaymentStatus.FAILED: _OPEN_PAYMENT,  # failed -> failed: a second decline
    PaymentStatus.SUCCEEDED: frozenset(),
    PaymentStatus.EXPIRED: frozenset(),
    PaymentStatus.CANCELED: frozenset(),
}

TERMINAL_PAYMENT_STATUSES = frozenset(
    status for status, targets in PAYMENT_TRANSITIONS.items() if not targets
)


class TransitionRefused(Exception):
    """A write that would break the state machine: the caller must not retry it blindly."""


S = TypeVar("S", ArtworkStatus, BidStatus, PaymentStatus)


def plan_transition(kind: str, current: S, target: S, allowed: dict[S, frozenset[S]]) -> bool:
    """True when a write is needed, False when `current` already is `target` (a retry).

    Raises `TransitionRefused` for any other move, so a retried activity never
    double-transitions and a late one never undoes a decided outcome.
    """
    if current == target and target not in allowed[current]:
        return False
    if target in allowed[current]:
        return True
    raise TransitionRefused(f"{kind} cannot go from {current} to {target}")


class IntentState(StrEnum):
    """What a PaymentIntent's Stripe status means for the saga."""

    PAID = "paid"
    CANCELED = "canceled"
    IN_FLIGHT = "in_flight"  # processing, or awaiting capture: money may still arrive
    OPEN = "open"  # waiting for the buyer: safe to cancel


def intent_state(stripe_status: str) -> IntentState:
    if stripe_status == "succeeded":
        return IntentState.PAID
    if stripe_status == "canceled":
        return IntentState.CANCELED
    if stripe_status in ("processing", "requires_capture"):
        return IntentState.IN_FLIGHT
    return IntentState.OPEN


def payment_mismatch(
    expected_minor: int, expected_currency: str, paid_minor: int | None, paid_currency: str | None
) -> str | None:
    """Why a succeeded intent is not the payment we asked for, or None when it is.

    A sale is recorded only for exactly the amount and currency the checkout charged.
    """
    if paid_currency is None or paid_currency.lower() != expected_currency.lower():
        return f"currency {paid_currency!r} instead of {expected_currency!r}"
    if paid_minor != expected_minor:
        return f"amount {paid_minor} instead of {expected_minor} (minor units)"
    return None
