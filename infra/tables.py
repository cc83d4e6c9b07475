"""Database tables. Alembic migrations build the same schema (a test compares them)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from domain.announcements import MailKind, MailStatus
from domain.checkout import ArtworkStatus, BidStatus, PaymentStatus

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MONEY = Numeric(10, 2)


def _status_check(column: str, values: type[StrEnum]) -> CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_valid")


def _currency_check() -> CheckConstraint:
    # An ISO 4217 code in Stripe's lower case; which ones we charge in is the domain's rule.
    return CheckConstraint("currency ~ '^[a-z]{3}$'", name="currency_code")


def _created_at() -> Any:
    return Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def _updated_at() -> Any:
    return Field(
        default=None,
        sa_column=Column(
            DateTime(timezone=True),
            nullable=False,
            server_default=func.now(),
            onupdate=func.now(),
        ),
    )


def _id() -> Any:
    return Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))


def _reference(target: str, *, unique: bool = False) -> Any:
    return Field(
        sa_column=Column(
            BigInteger, ForeignKey(target), nullable=False, unique=unique, index=not unique
        )
    )


class User(SQLModel, table=True):
    __tablename__ = "users"

    # Server-side defaults (timestamps) come back with the INSERT/UPDATE itself.
    __mapper_args__ = {"eager_defaults": True}

    id: int | None = _id()
    subject: str = Field(sa_column=Column(String(255), nullable=False, unique=True))
    email: str = Field(sa_column=Column(String(320), nullable=False))
    name: str | None = Field(default=None, sa_column=Column(String(255)))
    created_at: datetime | None = _created_at()
    updated_at: datetime | None = _updated_at()


class Artwork(SQLModel, table=True):
    __tablename__ = "artworks"
    __table_args__ = (
        _status_check("status", ArtworkStatus),
        _currency_check(),
        CheckConstraint("starting_price > 0", name="starting_price_positive"),
    )

    # Server-side defaults (timestamps) come back with the INSERT/UPDATE itself.
    __mapper_args__ = {"eager_defaults": True}

    id: int | None = _id()
    seller_id: int = _reference("users.id")
    title: str = Field(sa_column=Column(String(200), nullable=False))
    starting_price: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    currency: str = Field(sa_column=Column(String(3), nullable=False, server_default="usd"))
    status: str = Field(
        default=ArtworkStatus.ACTIVE.value,
        sa_column=Column(String(20), nullable=False, server_default="active", index=True),
    )
    created_at: datetime | None = _created_at()
    updated_at: datetime | None = _updated_at()


class Bid(SQLModel, table=True):
    __tablename__ = "bids"
    __table_args__ = (
        _status_check("status", BidStatus),
        CheckConstraint("amount > 0", name="amount_positive"),
        # The database itself refuses a second winner for one artwork.
        Index(
            "uq_bids_one_winner_per_artwork",
            "artwork_id",
            unique=True,
            postgresql_where=text("status IN ('won', 'paid')"),
        ),
        Index("ix_bids_artwork_id_amount", "artwork_id", "amount"),
    )

    # Server-side defaults (timestamps) come back with the INSERT/UPDATE itself.
    __mapper_args__ = {"eager_defaults": True}

    id: int | None = _id()
    artwork_id: int = Field(sa_column=Column(BigInteger, ForeignKey("artworks.id"), nullable=False))
    bidder_id: int = _reference("users.id")
    amount: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    status: str = Field(
        default=BidStatus.ACTIVE.value,
        sa_column=Column(String(20), nullable=False, server_default="active"),
    )
    created_at: datetime | None = _created_at()
    updated_at: datetime | None = _updated_at()


class Payment(SQLModel, table=True):
    __tablename__ = "payments"
    __table_args__ = (
        _status_check("status", PaymentStatus),
        _currency_check(),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("fee_amount >= 0", name="fee_amount_not_negative"),
        # The fee is part of what the buyer pays, never all of it.
        CheckConstraint("fee_amount < amount", name="fee_below_amount"),
        Index("ix_payments_created_at", "created_at"),
    )

    # Server-side defaults (timestamps) come back with the INSERT/UPDATE itself.
    __mapper_args__ = {"eager_defaults": True}

    id: int | None = _id()
    bid_id: int = _reference("bids.id", unique=True)
    # A payment row is written only once its intent exists at Stripe.
    stripe_payment_intent_id: str = Field(
        sa_column=Column(String(255), nullable=False, unique=True)
    )
    stripe_charge_id: str | None = Field(default=None, sa_column=Column(String(255)))
    amount: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    fee_amount: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    currency: str = Field(
        default="usd", sa_column=Column(String(3), nullable=False, server_default="usd")
    )
    status: str = Field(
        default=PaymentStatus.PENDING.value,
        sa_column=Column(String(20), nullable=False, server_default="pending", index=True),
    )
    failure_reason: str | None = Field(default=None, sa_column=Column(String(500)))
    payment_metadata: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    workflow_id: str = Field(sa_column=Column(String(255), nullable=False, index=True))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_at: datetime | None = _created_at()
    updated_at: datetime | None = _updated_at()


class Notification(SQLModel, table=True):
    """An email to send, queued by the transaction of the transition it reports.

    `message_id` is derived from the transition, so a repeated transition finds its row.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        _status_check("status", MailStatus),
        _status_check("kind", MailKind),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # What the dispatcher asks for: the pending rows that are due.
        Index(
            "ix_notifications_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    __mapper_args__ = {"eager_defaults": True}

    id: int | None = _id()
    kind: str = Field(sa_column=Column(String(40), nullable=False))
    message_id: str = Field(sa_column=Column(String(255), nullable=False, unique=True))
    recipient_id: int = _reference("users.id")
    recipient_email: str = Field(sa_column=Column(String(320), nullable=False))
    bid_id: int = _reference("bids.id")
    artwork_id: int = Field(sa_column=Column(BigInteger, ForeignKey("artworks.id"), nullable=False))
    context: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    status: str = Field(
        default=MailStatus.PENDING.value,
        sa_column=Column(String(20), nullable=False, server_default="pending", index=True),
    )
    attempts: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    last_error: str | None = Field(default=None, sa_column=Column(String(1000)))
    next_attempt_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    sent_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_at: datetime | None = _created_at()
    updated_at: datetime | None = _updated_at()
