"""The rules of sending the queued emails: when to try again, when to give up, how they show
money and time. Pure: the dispatcher applies them, tests state them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from domain.money import CurrencyRule, currency_rule

# However long an outage lasts, a mail is tried at least this often once it is back.
MAX_RETRY_DELAY = timedelta(minutes=30)


@dataclass(frozen=True)
class RetryPolicy:
    """`initial` after the first failed attempt, doubling up to `cap`, for `retry_for` after
    the row was queued; a failure after that gives the mail up."""

    initial: timedelta
    retry_for: timedelta
    cap: timedelta = MAX_RETRY_DELAY

    def __post_init__(self) -> None:
        if self.initial <= timedelta(0) or self.retry_for <= timedelta(0):
            raise ValueError("retry delays must be positive")

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt (1 for the first)."""
        if attempts < 1:
            raise ValueError("a delay follows an attempt")
        cap = max(self.cap, self.initial)
        # In float seconds: a timedelta doubled some forty times overflows.
        doubled = self.initial.total_seconds() * 2.0 ** min(attempts - 1, 64)
        return timedelta(seconds=min(doubled, cap.total_seconds()))

    def give_up_at(self, queued_at: datetime) -> datetime:
        return queued_at + self.retry_for

    def next_attempt(
        self, *, attempts: int, queued_at: datetime, failed_at: datetime
    ) -> datetime | None:
        """When to try again after a failed attempt, or None: the mail is given up.

        The last retry is due at the give-up time itself, so a mail is never dropped while
        its time lasts; one that fails then (or later) is given up.
        """
        give_up_at = self.give_up_at(queued_at)
        if failed_at >= give_up_at:
            return None
        return min(failed_at + self.delay(attempts), give_up_at)


def is_permanent_refusal(code: int | None, *, stage: str) -> bool:
    """Whether an SMTP answer refuses this message for good.

    Only a 5xx to RCPT (no such mailbox, address refused) is about the message: it would be
    refused again. A 5xx to anything else (authentication, our sender, the server's policy)
    says the server or our settings are wrong for every message, which an operator can fix,
    so the mail waits for it like for an outage.
    """
    return stage == "recipient" and code is not None and 500 <= code < 600


def display_decimals(rule: CurrencyRule) -> int:
    """Decimals people expect: none where Stripe only takes whole units (JPY, and ISK,
    which Stripe's API counts in hundredths), the currency's exponent otherwise."""
    return 0 if rule.quantum >= 1 else rule.exponent


def format_money(amount: Decimal | str | int, currency: str) -> str:
    """`1,287.64 USD`, `12,880 JPY`, `1.230 KWD`: grouped, with the currency's decimals and
    its code. Never rounds a stored amount away silently: it raises instead."""
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"{amount!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{amount!r} is not an amount")
    rule = currency_rule(currency)
    places = display_decimals(rule)
    shown = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if shown != value:
        raise ValueError(f"{amount} {rule.code.upper()} has more decimals than it can show")
    return f"{shown:,.{places}f} {rule.code.upper()}"


def time_left(deadline: datetime, now: datetime) -> str:
    """How long the buyer has, in words, counted down to whole minutes."""
    remaining = deadline - now
    if remaining <= timedelta(0):
        return "the deadline has passed"
    minutes = int(remaining.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute left"
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''} left"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} hours {minutes} minute{'s' if minutes != 1 else ''} left"


def utc_text(moment: datetime) -> str:
    """A moment as people read it in a mail: `2026-12-01 14:05 UTC`."""
    if moment.tzinfo is None:
        raise ValueError("a mail shows aware times only")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def one_line(text: str, limit: int = 200) -> str:
    """Header text from stored text: whitespace (newlines too) collapsed, length bounded.

    A title or name with a line break would otherwise add a header to the message.
    """
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
