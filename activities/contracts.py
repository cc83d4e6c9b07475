"""Inputs and results of the activities: one dataclass each, so fields can grow safely."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.checkout import PaymentStatus

# Error types the activities raise for failures no retry can fix; the workflow's retry
# policies name them so Temporal stops at once instead of retrying for ever.
STRIPE_REQUEST_REFUSED = "StripeRequestRefused"
CHECKOUT_CONFLICT = "CheckoutConflict"
PERMANENT_ERRORS = (STRIPE_REQUEST_REFUSED, CHECKOUT_CONFLICT)


def payment_intent_idempotency_key(prefix: str, workflow_id: str) -> str:
    """One key per checkout and environment: two deployments sharing a Stripe account (say
    staging and a laptop) never answer each other's creates."""
    key = f"{workflow_id}-payment-intent"
    return f"{prefix}-{key}" if prefix else key


@dataclass(frozen=True)
class ReserveArtwork:
    artwork_id: int
    bid_id: int


@dataclass(frozen=True)
class Reservation:
    reserved: bool
    reason: str | None = None


@dataclass(frozen=True)
class OpenPaymentIntent:
    workflow_id: str
    bid_id: int
    artwork_id: int
    buyer_id: int
    amount: Decimal
    amount_minor: int
    fee_amount: Decimal
    currency: str
    # The buyer's window, counted from the moment the intent is payable.
    payment_window_seconds: int


@dataclass(frozen=True)
class OpenedPaymentIntent:
    """The checkout's intent and `payments` row. A restarted saga gets the row it recorded:
    the same intent, amount and deadline, and the declines counted so far."""

    payment_id: int
    payment_intent_id: str
    client_secret: str
    stripe_status: str
    expires_at: datetime
    amount: Decimal
    fee_amount: Decimal
    currency: str
    declines: int = 0
    failure_reason: str | None = None
    # Set once an operator extended the deadline: a restarted saga caps extensions from it.
    original_expires_at: datetime | None = None


@dataclass(frozen=True)
class PaymentIntentRef:
    payment_intent_id: str


@dataclass(frozen=True)
class BidRef:
    bid_id: int


@dataclass(frozen=True)
class RecordedIntent:
    payment_intent_id: str | None = None
    # What the recorded row charges: a sale is verified against it, not against new settings.
    amount: Decimal | None = None
    fee_amount: Decimal | None = None


@dataclass(frozen=True)
class IntentSnapshot:
    payment_intent_id: str
    stripe_status: str
    charge_id: str | None = None
    amount_minor: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class RecordDecline:
    bid_id: int
    failure_reason: str
    declines: int
    event_id: str
    failure_code: str | None = None  # Stripe's decline code, for the declines metric


@dataclass(frozen=True)
class ExtendPaymentDeadline:
    """Moves the recorded deadline to `expires_at`, an extension an operator was granted.

    `extension_id` (the update's id) names it, so a retried activity records it once.
    """

    bid_id: int
    payment_intent_id: str
    extension_id: str
    expires_at: datetime
    original_expires_at: datetime
    minutes: int
    reason: str
    requested_by: str
    requested_at: datetime


@dataclass(frozen=True)
class SettleCheckout:
    """Closes a checkout: the sale (with its charge) or the artwork back on sale.

    `payment_intent_id` is None only for a checkout that ended before any intent existed.
    """

    bid_id: int
    artwork_id: int
    payment_intent_id: str | None
    charge_id: str | None = None
    unpaid_status: PaymentStatus = PaymentStatus.EXPIRED  # or CANCELED
    reason: str | None = None  # for operators: who canceled, or our error
    public_reason: str | None = None  # why, in words the buyer and the seller may read
