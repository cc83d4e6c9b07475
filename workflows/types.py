"""The saga's public contract: its input, signal, update, query and result types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from domain.money import FeeSchedule
from domain.stripe_events import PaymentEvent

# The signal payload is the domain's parsed event, unchanged.
StripeEventSignal = PaymentEvent

WORKFLOW_ID_PREFIX = "payment-bid-"


def saga_workflow_id(bid_id: int) -> str:
    return f"{WORKFLOW_ID_PREFIX}{bid_id}"


class CheckoutPhase(StrEnum):
    RESERVING = "reserving"
    OPENING_PAYMENT = "opening_payment"
    AWAITING_PAYMENT = "awaiting_payment"
    SETTLING = "settling"  # the buyer's window closed: asking Stripe until its answer is final
    SOLD = "sold"
    REOPENED = "reopened"  # not paid: the artwork is back on sale
    REJECTED = "rejected"  # never reserved: the bid was no longer the winner
    CANCELED = "canceled"  # an operator called it off: the artwork is back on sale
    FAILED = "failed"  # an error no retry fixes; compensated (see `compensation`)

    @property
    def is_final(self) -> bool:
        return self in _FINAL_PHASES


_FINAL_PHASES = frozenset(
    {
        CheckoutPhase.SOLD,
        CheckoutPhase.REOPENED,
        CheckoutPhase.REJECTED,
        CheckoutPhase.CANCELED,
        CheckoutPhase.FAILED,
    }
)


class WindowClosed(StrEnum):
    """Why the buyer's window closed: fixed when it closes, so a late request cannot relabel it."""

    DEADLINE = "deadline"
    CANCELED = "canceled"  # an operator, through the update or a workflow cancellation
    DECIDED_AT_STRIPE = "decided_at_stripe"  # Stripe settled the intent before we asked
    FAILED = "failed"  # the saga hit an error no retry fixes


class AwaitedStage(StrEnum):
    RESERVED = "reserved"
    PAYMENT_INTENT = "payment_intent"


@dataclass(frozen=True)
class CancelCheckout:
    """Update input: an operator calls the checkout off. Money that already landed stands:
    there are no refunds, so a paid checkout still ends in a sale.
    """

    reason: str
    requested_by: str = "operator"


@dataclass(frozen=True)
class ExtendDeadline:
    """Update input: an operator gives the buyer `minutes` more to pay.

    Extensions add up, but never reach past the deadline the window opened with by more
    than the saga's `max_extension_minutes`.
    """

    minutes: int
    reason: str
    requested_by: str = "operator"


@dataclass(frozen=True)
class DeadlineExtension:
    """One accepted extension, as the status and the Web UI show it."""

    minutes: int
    reason: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime  # the deadline it set


@dataclass
class CheckoutStatus:
    phase: CheckoutPhase
    bid_id: int
    artwork_id: int
    buyer_id: int
    currency: str
    hammer_price: Decimal
    amount: Decimal | None = None
    fee_amount: Decimal | None = None
    payment_id: int | None = None
    payment_intent_id: str | None = None
    # Only while the buyer may pay (phase awaiting_payment); withheld in every other phase.
    client_secret: str | None = None
    expires_at: datetime | None = None
    # The deadline the window opened with: extensions are capped from it, not from the last.
    original_expires_at: datetime | None = None
    extensions: list[DeadlineExtension] = field(default_factory=list)
    attempts: int = 0
    failure_reason: str | None = None
    rejection_reason: str | None = None
    window_closed: WindowClosed | None = None
    cancel_request: CancelCheckout | None = None
    # Set while Stripe reports the intent `processing` after the window closed.
    processing_since: datetime | None = None
    attention: str | None = None  # something an operator should look at
    error: str | None = None  # why the saga failed, when it did
    compensation: str | None = None  # what a failed saga did to end the checkout anyway


@dataclass(frozen=True)
class CarriedCheckout:
    """What a run hands to the next one when it continues as new (a long settlement)."""

    status: CheckoutStatus
    inbox: list[StripeEventSignal] = field(default_factory=list)
    seen_event_ids: list[str] = field(default_factory=list)
    recheck_seconds: int = 30


@dataclass(frozen=True)
class PaymentSagaInput:
    bid_id: int
    artwork_id: int
    buyer_id: int
    hammer_price: Decimal
    currency: str
    fee_percent: Decimal = FeeSchedule.percent
    fee_fixed: Decimal = FeeSchedule.fixed
    payment_timeout_seconds: int = 600
    # After this long in `processing`, the checkout asks for an operator's attention.
    processing_alert_seconds: int = 3600
    # A run whose history grows past this continues as new, carrying the checkout.
    history_event_limit: int = 2000
    carried: CarriedCheckout | None = None
    # Unknown to sagas started before it was passed: their SellerId is simply not indexed.
    seller_id: int | None = None
    # How far past its original deadline operators may push a checkout's deadline.
    max_extension_minutes: int = 1440


@dataclass(frozen=True)
class AwaitCheckout:
    """Update input: answer once the saga reached `stage` (or ended before it)."""

    stage: AwaitedStage = AwaitedStage.PAYMENT_INTENT
