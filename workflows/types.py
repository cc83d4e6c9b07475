"""The saga's public contract: its input, signal, update, query and result types."""

from __future__ import annotations

from dataclasses import dataclass
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
    SETTLING = "settling"  # deadline passed: asking Stripe, canceling
    SOLD = "sold"
    REOPENED = "reopened"  # not paid: the artwork is back on sale
    REJECTED = "rejected"  # never reserved: the bid was no longer the winner
    CANCELED = "canceled"  # an operator called it off: the artwork is back on sale
    FAILED = "failed"  # stopped on an error no retry fixes: an operator must look

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


class AwaitedStage(StrEnum):
    RESERVED = "reserved"
    PAYMENT_INTENT = "payment_intent"


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


@dataclass(frozen=True)
class AwaitCheckout:
    """Update input: answer once the saga reached `stage` (or ended before it)."""

    stage: AwaitedStage = AwaitedStage.PAYMENT_INTENT


@dataclass(frozen=True)
class CancelCheckout:
    """Update input: an operator calls the checkout off. Money that already landed stands:
    there are no refunds, so a paid checkout still ends in a sale.
    """

    reason: str
    requested_by: str = "operator"


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
    client_secret: str | None = None
    expires_at: datetime | None = None
    attempts: int = 0
    failure_reason: str | None = None
    rejection_reason: str | None = None
    error: str | None = None  # why the saga failed, when it did
