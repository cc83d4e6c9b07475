"""A queued notification as the email people read: subject, plain text and HTML, from the
templates in `notifications/templates`, and the `multipart/alternative` message around them.

The row's context is what the transition knew; what depends on the moment of sending (the
minutes left to pay) is computed here, when the mail goes out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from domain.announcements import MailKind
from domain.mail_delivery import format_money, one_line, time_left, utc_text

TEMPLATES = Path(__file__).parent / "templates"
NOTIFICATION_HEADER = "X-Auction-Notification"


class RenderFailed(Exception):
    """The row cannot become a mail (its context lacks what its kind shows): no retry helps."""


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def _quoted(title: str) -> str:
    return f"“{one_line(title, 80)}”"


SUBJECTS: dict[MailKind, Callable[[Mapping[str, Any]], str]] = {
    MailKind.PAYMENT_REQUIRED: lambda v: (
        f"You won {_quoted(v['artwork_title'])}: pay {v['total']} by {v['deadline']}"
    ),
    MailKind.PAYMENT_FAILED: lambda v: (
        f"Your payment for {_quoted(v['artwork_title'])} did not go through"
    ),
    MailKind.DEADLINE_EXTENDED: lambda v: (
        f"More time to pay for {_quoted(v['artwork_title'])}: until {v['deadline']}"
    ),
    MailKind.PAYMENT_RECEIPT: lambda v: f"Receipt: {v['total']} for {_quoted(v['artwork_title'])}",
    MailKind.ARTWORK_SOLD: lambda v: f"{_quoted(v['artwork_title'])} sold for {v['hammer_price']}",
    MailKind.PAYMENT_EXPIRED: lambda v: (
        f"Your winning bid on {_quoted(v['artwork_title'])} has expired"
    ),
    MailKind.CHECKOUT_CANCELED: lambda v: (
        f"The checkout for {_quoted(v['artwork_title'])} was called off"
    ),
    MailKind.BIDDING_REOPENED: lambda v: f"{_quoted(v['artwork_title'])} is back on sale",
}


class MailRenderer:
    def __init__(self, public_base_url: str) -> None:
        self._base_url = public_base_url.rstrip("/")
        common: dict[str, Any] = {
            "loader": FileSystemLoader(TEMPLATES),
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": True,
        }
        self._text = Environment(autoescape=False, **common)  # noqa: S701  (plain text)
        self._html = Environment(autoescape=True, **common)

    def view(self, kind: MailKind, context: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """What the templates show, from the row's context at the moment `now`."""
        currency = str(context["currency"])

        def money(key: str) -> str | None:
            value = context.get(key)
            return None if value is None else format_money(str(value), currency)

        raw_deadline = context.get("expires_at")
        deadline = None if raw_deadline is None else datetime.fromisoformat(str(raw_deadline))
        bid_id = int(context["bid_id"])
        return {
            "kind": kind.value,
            "recipient_name": _name(context.get("recipient_name")),
            "artwork_title": str(context["artwork_title"]),
            "artwork_id": int(context["artwork_id"]),
            "bid_id": bid_id,
            "hammer_price": money("hammer_price"),
            "fee_amount": money("fee_amount"),
            "total": money("amount"),
            "net": money("net"),
            "charge_id": context.get("charge_id"),
            "reason": context.get("reason"),
            "minutes": context.get("minutes"),
            # The saga's words for people: never who pressed the button, nor our errors.
            "detail": _text_or_none(context.get("detail")),
            "deadline": None if deadline is None else utc_text(deadline),
            "time_left": None if deadline is None else time_left(deadline, now),
            "checkout_url": f"{self._base_url}/checkout/{bid_id}",
            "create_intent_url": f"{self._base_url}/api/payments/create-intent",
        }

    def render(self, kind: MailKind, context: Mapping[str, Any], now: datetime) -> RenderedMail:
        try:
            view = self.view(kind, context, now)
            subject = one_line(SUBJECTS[kind](view), 250)
            text = self._text.get_template(f"{kind.value}.txt.j2").render(view, subject=subject)
            html = self._html.get_template(f"{kind.value}.html.j2").render(view, subject=subject)
        except (KeyError, TypeError, ValueError, TemplateError) as broken:
            raise RenderFailed(f"cannot render {kind.value}: {broken!r}") from broken
        return RenderedMail(subject, text, html)


def compose(
    rendered: RenderedMail,
    *,
    kind: MailKind,
    message_id: str,
    mail_from: str,
    to_email: str,
    to_name: str | None,
    now: datetime,
) -> EmailMessage:
    """The message as sent: `multipart/alternative`, text first (the fallback), HTML last."""
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = mail_from
    message["To"] = _address(to_email, to_name)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    message[NOTIFICATION_HEADER] = kind.value
    # RFC 3834: out-of-office replies and the like should not answer a machine.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def envelope_sender(mail_from: str) -> str:
    return parseaddr(mail_from)[1]


def _address(email: str, name: str | None) -> Address | str:
    display_name = _name(name)
    if display_name is None:
        return email
    user, _, domain = email.rpartition("@")
    return Address(display_name=display_name, username=user, domain=domain)


def _name(value: object) -> str | None:
    text = _text_or_none(value)
    return None if text is None else one_line(text, 100) or None


def _text_or_none(value: object) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None
