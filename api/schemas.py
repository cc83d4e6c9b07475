"""Request and response bodies. Money travels as decimal strings ("1250.00")."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from domain.announcements import MailKind, MailStatus
from domain.money import CENT, MAX_STORED_AMOUNT, SUPPORTED_CURRENCIES

# Ids are PostgreSQL bigints: anything outside 1..2**63-1 cannot name a row.
BIGINT_MAX = 2**63 - 1
RowId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
# A bound on any one extension, whatever the deployment allows: a year.
MAX_EXTENSION_MINUTES = 525_600


def storable_text(text: str) -> str:
    """PostgreSQL stores neither NUL characters nor lone surrogates (JSON can carry both)."""
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return text


StoredText = Annotated[str, AfterValidator(storable_text)]

# Numbers and strings are both accepted; pydantic refuses, with the field named, anything
# that NUMERIC(10,2) could only store rounded.
MoneyIn = Annotated[
    Decimal,
    Field(gt=0, le=MAX_STORED_AMOUNT, max_digits=10, decimal_places=2, allow_inf_nan=False),
    AfterValidator(lambda amount: amount.quantize(CENT)),
]


class ArtworkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: StoredText = Field(min_length=1, max_length=200)
    starting_price: MoneyIn
    currency: str = "usd"

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, currency: str) -> str:
        code = currency.strip().lower()
        if code not in SUPPORTED_CURRENCIES:
            raise ValueError(
                f"unsupported currency; use one of {', '.join(sorted(SUPPORTED_CURRENCIES))}"
            )
        return code


class ArtworkPublic(BaseModel):
    id: int
    title: str
    seller_id: int
    starting_price: Decimal
    currency: str
    status: str
    highest_bid: Decimal | None
    winning_bid_id: int | None
    created_at: datetime
    updated_at: datetime


class BidCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: MoneyIn


class BidPublic(BaseModel):
    id: int
    artwork_id: int
    bidder_id: int
    amount: Decimal
    currency: str
    status: str
    created_at: datetime


class CloseResult(BaseModel):
    artwork_id: int
    status: str
    winning_bid_id: int
    workflow_id: str
    hammer_price: Decimal
    amount: Decimal | None
    fee_amount: Decimal | None
    currency: str
    # The winner's checkout page (PUBLIC_BASE_URL); the winner adds `#token=<their JWT>`.
    checkout_url: str


class CreateIntentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bid_id: RowId


class CheckoutIntent(BaseModel):
    payment_id: int
    payment_intent_id: str
    client_secret: str | None
    amount: Decimal
    fee_amount: Decimal
    currency: str
    status: str
    expires_at: datetime


class PaymentPublic(BaseModel):
    id: int
    bid_id: int
    artwork_id: int
    status: str
    amount: Decimal
    fee_amount: Decimal
    currency: str
    failure_reason: str | None
    payment_intent_id: str | None
    charge_id: str | None
    workflow_id: str
    expires_at: datetime
    created_at: datetime
    updated_at: datetime


class ErrorDetail(BaseModel):
    """Every error but a 422: what went wrong, in words meant for the caller."""

    detail: str


class WebhookReceipt(BaseModel):
    received: bool = True
    handled: bool
    detail: str


class NotificationPublic(BaseModel):
    """One queued email, as operators see it: who, what, and how sending it went."""

    id: int
    kind: MailKind
    status: MailStatus
    message_id: str
    recipient_id: int
    recipient_email: str
    bid_id: int
    artwork_id: int
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None = Field(
        description="When a pending email is next tried; null once it is sent or failed."
    )
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime


class NotificationPage(BaseModel):
    items: list[NotificationPublic]
    next_before_id: int | None = Field(
        description="Pass as `before_id` for the next page; null on the last one."
    )


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text.strip()


# Why an operator acts: recorded with the checkout, in its history and on the payment.
Reason = Annotated[StoredText, Field(min_length=1, max_length=500), AfterValidator(_not_blank)]


class ExtendDeadlineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes: int = Field(
        ge=1,
        le=MAX_EXTENSION_MINUTES,
        description="How much longer the buyer has; extensions add up, within the "
        "deployment's MAX_PAYMENT_EXTENSION_MINUTES past the original deadline.",
    )
    reason: Reason


class CancelCheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class CheckoutSummary(BaseModel):
    """A checkout as Temporal's visibility indexes it: a moment behind the saga at most."""

    workflow_id: str
    bid_id: int | None = Field(description="From the workflow id; null for a saga started by hand.")
    run_status: str | None = Field(
        description="Temporal's: running, completed, failed, canceled, terminated..."
    )
    phase: str | None
    artwork_id: int | None
    buyer_id: int | None
    seller_id: int | None
    amount_due: Decimal | None
    currency: str | None
    payment_deadline: datetime | None
    started_at: datetime
    closed_at: datetime | None


class CheckoutPage(BaseModel):
    checkouts: list[CheckoutSummary]
    next_page_token: str | None = Field(
        description="Pass it back, with the same filters, for the next page; null on the last."
    )


class DeadlineExtensionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    minutes: int
    reason: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime


class CancelRequestPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    reason: str
    requested_by: str


class CheckoutStatusPublic(BaseModel):
    """The saga's `status` query, as operators see it: without the buyer's client secret."""

    model_config = ConfigDict(from_attributes=True)

    phase: str
    bid_id: int
    artwork_id: int
    buyer_id: int
    currency: str
    hammer_price: Decimal
    amount: Decimal | None
    fee_amount: Decimal | None
    payment_intent_id: str | None
    expires_at: datetime | None
    original_expires_at: datetime | None
    extensions: list[DeadlineExtensionPublic]
    attempts: int
    failure_reason: str | None
    window_closed: str | None
    cancel_request: CancelRequestPublic | None
    processing_since: datetime | None
    attention: str | None
    error: str | None
    compensation: str | None
