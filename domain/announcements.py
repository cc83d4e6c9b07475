"""What a checkout's transitions tell people: live events for clients, emails for the parties.

Each transition yields one `Announcement`. The transaction that makes the transition also
writes its announcement (events published at commit, emails queued as rows), so a client
hears of a change if and only if it committed, and a retried transition announces nothing new:
every event and email is named after the transition that caused it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from email.utils import parseaddr
from enum import StrEnum

from domain.money import CENT

Scalar = str | int | None


# Why a failed checkout reopened, as people read it: our errors are for operators.
TECHNICAL_PROBLEM = "a technical problem on our side stopped the checkout"


class LiveEventName(StrEnum):
    BID_PLACED = "bid_placed"
    PAYMENT_REQUIRED = "payment_required"
    PAYMENT_FAILED = "payment_failed"
    DEADLINE_EXTENDED = "deadline_extended"
    ARTWORK_SOLD = "artwork_sold"
    BIDDING_REOPENED = "bidding_reopened"


class MailKind(StrEnum):
    PAYMENT_REQUIRED = "payment_required"
    PAYMENT_FAILED = "payment_failed"
    DEADLINE_EXTENDED = "deadline_extended"
    PAYMENT_RECEIPT = "payment_receipt"
    ARTWORK_SOLD = "artwork_sold"
    PAYMENT_EXPIRED = "payment_expired"
    CHECKOUT_CANCELED = "checkout_canceled"
    BIDDING_REOPENED = "bidding_reopened"


class MailStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # given up after MAIL_RETRY_HOURS


class ReopenReason(StrEnum):
    EXPIRED = "expired"
    CANCELED = "canceled"


def money(amount: Decimal) -> str:
    """Money on the wire: a decimal string with two places, as the REST API shows it."""
    return str(amount.quantize(CENT))


def mail_domain(mail_from: str) -> str:
    """The domain our Message-IDs are named in: the sender's (MAIL_FROM's)."""
    address = parseaddr(mail_from)[1]
    local, _, domain = address.rpartition("@")
    if not local or not domain or "." not in domain.strip("."):
        raise ValueError(f"{mail_from!r} names no address with a domain")
    return domain


@dataclass(frozen=True)
class Party:
    user_id: int
    email: str
    name: str | None = None


@dataclass(frozen=True)
class CheckoutFacts:
    """Who and what a checkout is about, as its transaction reads them."""

    bid_id: int
    artwork_id: int
    artwork_title: str
    currency: str
    hammer_price: Decimal
    buyer: Party
    seller: Party
    fee_amount: Decimal | None = None
    amount: Decimal | None = None
    expires_at: datetime | None = None

    def prices(self) -> dict[str, Scalar]:
        fee = self.fee_amount if self.fee_amount is not None else Decimal(0)
        return {
            "hammer_price": money(self.hammer_price),
            "fee_amount": money(fee),
            "amount": money(self.amount if self.amount is not None else self.hammer_price + fee),
            "currency": self.currency,
        }

    def mail_context(self) -> dict[str, Scalar]:
        return {
            "bid_id": self.bid_id,
            "artwork_id": self.artwork_id,
            "artwork_title": self.artwork_title,
            "expires_at": _iso(self.expires_at),
            **self.prices(),
        }


@dataclass(frozen=True)
class LiveEvent:
    """One Socket.IO event: sent to the named users' rooms, and the artwork's watchers'."""

    name: LiveEventName
    event_id: str
    artwork_id: int
    occurred_at: datetime
    users: tuple[int, ...]
    to_watchers: bool
    fields: Mapping[str, Scalar] = field(default_factory=dict)

    def payload(self) -> dict[str, Scalar]:
        return {
            "event_id": self.event_id,
            "occurred_at": _iso(self.occurred_at),
            "artwork_id": self.artwork_id,
            **self.fields,
        }

    def to_wire(self) -> str:
        """The NOTIFY payload (PostgreSQL allows 8000 bytes; ours stay far below)."""
        return json.dumps(
            {
                "name": self.name.value,
                "users": list(self.users),
                "to_watchers": self.to_watchers,
                "payload": self.payload(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_wire(cls, text: str) -> LiveEvent:
        raw = json.loads(text)
        payload = dict(raw["payload"])
        event_id, occurred_at = payload.pop("event_id"), payload.pop("occurred_at")
        artwork_id = payload.pop("artwork_id")
        return cls(
            name=LiveEventName(raw["name"]),
            event_id=str(event_id),
            artwork_id=int(artwork_id),
            occurred_at=datetime.fromisoformat(str(occurred_at)),
            users=tuple(int(user) for user in raw["users"]),
            to_watchers=bool(raw["to_watchers"]),
            fields=payload,
        )


@dataclass(frozen=True)
class Mail:
    """One email to queue: its `Message-ID` is derived from the transition, so a repeat of
    the transition (a retried activity, a restarted saga) finds the row it already wrote."""

    kind: MailKind
    transition: str
    recipient: Party
    bid_id: int
    artwork_id: int
    context: Mapping[str, Scalar]

    def message_id(self, domain: str) -> str:
        return f"<{self.kind.value}.{self.transition}.u{self.recipient.user_id}@{domain}>"


@dataclass(frozen=True)
class Announcement:
    events: tuple[LiveEvent, ...] = ()
    mails: tuple[Mail, ...] = ()


def bid_placed(
    *,
    bid_id: int,
    artwork_id: int,
    amount: Decimal,
    currency: str,
    occurred_at: datetime,
) -> Announcement:
    event = LiveEvent(
        LiveEventName.BID_PLACED,
        f"bid_placed:{bid_id}",
        artwork_id,
        occurred_at,
        users=(),
        to_watchers=True,
        fields={"bid_id": bid_id, "amount": money(amount), "currency": currency},
    )
    return Announcement(events=(event,))


def payment_required(facts: CheckoutFacts, occurred_at: datetime) -> Announcement:
    event = _checkout_event(
        LiveEventName.PAYMENT_REQUIRED,
        facts,
        occurred_at,
        to=(facts.buyer,),
        to_watchers=True,
        fields={**facts.prices(), "expires_at": _iso(facts.expires_at)},
    )
    mail = _mail(MailKind.PAYMENT_REQUIRED, f"bid-{facts.bid_id}", facts.buyer, facts)
    return Announcement(events=(event,), mails=(mail,))


def payment_failed(
    facts: CheckoutFacts, *, reason: str, attempts: int, stripe_event_id: str, occurred_at: datetime
) -> Announcement:
    event = _checkout_event(
        LiveEventName.PAYMENT_FAILED,
        facts,
        occurred_at,
        occurrence=stripe_event_id,
        to=(facts.buyer,),
        to_watchers=False,
        fields={"reason": reason, "attempts": attempts, "expires_at": _iso(facts.expires_at)},
    )
    transition = f"bid-{facts.bid_id}-decline-{stripe_event_id}"
    mail = _mail(MailKind.PAYMENT_FAILED, transition, facts.buyer, facts, reason=reason)
    return Announcement(events=(event,), mails=(mail,))


def deadline_extended(
    facts: CheckoutFacts, *, extension_id: str, minutes: int, occurred_at: datetime
) -> Announcement:
    """An operator gave the winner more time: `facts.expires_at` is the new deadline."""
    event = _checkout_event(
        LiveEventName.DEADLINE_EXTENDED,
        facts,
        occurred_at,
        occurrence=extension_id,
        to=(facts.buyer,),
        to_watchers=True,
        fields={"minutes": minutes, "expires_at": _iso(facts.expires_at)},
    )
    transition = f"bid-{facts.bid_id}-extension-{_safe(extension_id)}"
    mail = _mail(MailKind.DEADLINE_EXTENDED, transition, facts.buyer, facts, minutes=minutes)
    return Announcement(events=(event,), mails=(mail,))


def _safe(text: str) -> str:
    """A Message-ID's local part takes letters, digits and a few marks: the rest become -."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)[:80]


def artwork_sold(
    facts: CheckoutFacts, *, charge_id: str | None, occurred_at: datetime
) -> Announcement:
    event = _checkout_event(
        LiveEventName.ARTWORK_SOLD,
        facts,
        occurred_at,
        to=(facts.buyer, facts.seller),
        to_watchers=True,
        fields={"hammer_price": money(facts.hammer_price), "currency": facts.currency},
    )
    transition = f"bid-{facts.bid_id}"
    # The buyer paid the processing fee on top: the seller keeps the whole hammer price.
    receipt = _mail(MailKind.PAYMENT_RECEIPT, transition, facts.buyer, facts, charge_id=charge_id)
    sold = _mail(
        MailKind.ARTWORK_SOLD, transition, facts.seller, facts, net=money(facts.hammer_price)
    )
    return Announcement(events=(event,), mails=(receipt, sold))


def bidding_reopened(
    facts: CheckoutFacts,
    *,
    reason: ReopenReason,
    detail: str | None,
    highest_bid: Decimal | None,
    occurred_at: datetime,
) -> Announcement:
    event = _checkout_event(
        LiveEventName.BIDDING_REOPENED,
        facts,
        occurred_at,
        to=(facts.buyer, facts.seller),
        to_watchers=True,
        fields={
            "reason": reason.value,
            "highest_bid": None if highest_bid is None else money(highest_bid),
        },
    )
    transition = f"bid-{facts.bid_id}"
    to_buyer = (
        MailKind.PAYMENT_EXPIRED if reason is ReopenReason.EXPIRED else MailKind.CHECKOUT_CANCELED
    )
    mails = (
        _mail(to_buyer, transition, facts.buyer, facts, reason=reason.value, detail=detail),
        _mail(
            MailKind.BIDDING_REOPENED,
            transition,
            facts.seller,
            facts,
            reason=reason.value,
            detail=detail,
        ),
    )
    return Announcement(events=(event,), mails=mails)


def _checkout_event(
    name: LiveEventName,
    facts: CheckoutFacts,
    occurred_at: datetime,
    *,
    to: tuple[Party, ...],
    to_watchers: bool,
    occurrence: str | None = None,
    fields: Mapping[str, Scalar],
) -> LiveEvent:
    """An event of the checkout of `facts.bid_id`, named after its transition: the name and
    the bid, and `occurrence` for a transition that may happen more than once (a decline)."""
    event_id = f"{name.value}:{facts.bid_id}" + (f":{occurrence}" if occurrence else "")
    return LiveEvent(
        name,
        event_id,
        facts.artwork_id,
        occurred_at,
        users=tuple(party.user_id for party in to),
        to_watchers=to_watchers,
        fields={"bid_id": facts.bid_id, **fields},
    )


def _mail(
    kind: MailKind, transition: str, recipient: Party, facts: CheckoutFacts, **extra: Scalar
) -> Mail:
    context = {**facts.mail_context(), "recipient_name": recipient.name, **extra}
    return Mail(kind, transition, recipient, facts.bid_id, facts.artwork_id, context)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
