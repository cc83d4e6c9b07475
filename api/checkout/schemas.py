"""What the checkout page's API routes take and answer."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# A PaymentMethod's id as Stripe writes it: `pm_` and letters, digits, underscores.
PaymentMethodId = Annotated[str, Field(pattern=r"^pm_[A-Za-z0-9_]{1,200}$")]


class CheckoutState(StrEnum):
    """What the page shows, read from the database (the saga writes it)."""

    NOT_WON = "not_won"  # the auction is still open
    OPENING = "opening"  # won; the PaymentIntent is being opened
    AWAITING_PAYMENT = "awaiting_payment"
    DECLINED = "declined"  # the last attempt was declined; the buyer may try again
    PAID = "paid"
    EXPIRED = "expired"
    CANCELED = "canceled"


class CheckoutView(BaseModel):
    bid_id: int
    artwork_id: int
    title: str
    hammer_price: Decimal
    fee_amount: Decimal | None
    amount: Decimal | None  # what the buyer pays, once the intent is open
    currency: str
    state: CheckoutState
    failure_reason: str | None  # the last decline's reason
    declines: int  # how many attempts Stripe declined so far
    expires_at: datetime | None
    artwork_status: str


class SetupIntentAnswer(BaseModel):
    client_secret: str


class PayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_method: PaymentMethodId


class PayAnswer(BaseModel):
    status: str  # the PaymentIntent's, as Stripe answered the confirm
    # For `requires_action` only: Stripe.js finishes 3-D Secure with it in the page.
    client_secret: str | None
