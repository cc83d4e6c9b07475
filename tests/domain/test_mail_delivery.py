"""The rules of sending emails: the retry schedule, giving up, and how mails show money."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.mail_delivery import (
    MAX_RETRY_DELAY,
    RetryPolicy,
    format_money,
    is_permanent_refusal,
    one_line,
    time_left,
    utc_text,
)
from domain.money import CURRENCIES, currency_rule

QUEUED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DEFAULT = RetryPolicy(initial=timedelta(seconds=30), retry_for=timedelta(hours=24))

initials = st.floats(min_value=0.01, max_value=3600).map(lambda s: timedelta(seconds=s))
windows = st.floats(min_value=0.001, max_value=72).map(lambda h: timedelta(hours=h))
policies = st.builds(RetryPolicy, initial=initials, retry_for=windows)
attempt_counts = st.integers(min_value=1, max_value=10_000)


def test_the_default_schedule_doubles_from_30_seconds_up_to_30_minutes() -> None:
    delays = [DEFAULT.delay(attempts).total_seconds() for attempts in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1800, 1800, 1800]


@given(policies, attempt_counts)
def test_delays_never_shrink_and_stay_between_the_first_and_the_cap(
    policy: RetryPolicy, attempts: int
) -> None:
    delay, later = policy.delay(attempts), policy.delay(attempts + 1)
    assert policy.initial <= delay <= later
    assert later <= max(MAX_RETRY_DELAY, policy.initial)


@given(policies, attempt_counts, st.floats(min_value=0, max_value=100 * 3600))
def test_a_mail_is_retried_until_its_time_is_up_and_never_after(
    policy: RetryPolicy, attempts: int, seconds_after_queueing: float
) -> None:
    failed_at = QUEUED + timedelta(seconds=seconds_after_queueing)
    retry_at = policy.next_attempt(attempts=attempts, queued_at=QUEUED, failed_at=failed_at)
    give_up_at = QUEUED + policy.retry_for
    if failed_at >= give_up_at:
        assert retry_at is None
    else:
        assert retry_at is not None
        assert failed_at < retry_at <= give_up_at  # the last try falls on the give-up time
        assert retry_at <= failed_at + policy.delay(attempts)


def test_the_last_retry_falls_on_the_give_up_time_then_the_mail_is_given_up() -> None:
    policy = RetryPolicy(initial=timedelta(minutes=20), retry_for=timedelta(hours=1))
    failed_at = QUEUED + timedelta(minutes=50)
    last = policy.next_attempt(attempts=3, queued_at=QUEUED, failed_at=failed_at)
    assert last == QUEUED + timedelta(hours=1)
    assert policy.next_attempt(attempts=4, queued_at=QUEUED, failed_at=last) is None


def test_a_policy_needs_positive_times() -> None:
    with pytest.raises(ValueError, match="positive"):
        RetryPolicy(initial=timedelta(0), retry_for=timedelta(hours=1))
    with pytest.raises(ValueError, match="follows an attempt"):
        DEFAULT.delay(0)


@pytest.mark.parametrize(
    ("code", "stage", "permanent"),
    [
        (550, "recipient", True),
        (553, "recipient", True),
        (450, "recipient", False),  # mailbox busy: later
        (None, "recipient", False),
        (530, "login", False),  # our settings, for every message: an operator fixes them
        (550, "sender", False),
        (554, "data", False),
    ],
)
def test_only_a_5xx_to_the_recipient_refuses_a_mail_for_good(
    code: int | None, stage: str, permanent: bool
) -> None:
    assert is_permanent_refusal(code, stage=stage) is permanent


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("1287.64", "usd", "1,287.64 USD"),
        ("0.50", "eur", "0.50 EUR"),
        ("12880.00", "jpy", "12,880 JPY"),
        ("1400.00", "isk", "1,400 ISK"),  # whole kronur, though Stripe counts hundredths
        ("1.23", "kwd", "1.230 KWD"),
        ("99999999.99", "usd", "99,999,999.99 USD"),
    ],
)
def test_money_is_shown_with_its_currency_code(amount: str, currency: str, shown: str) -> None:
    assert format_money(Decimal(amount), currency) == shown
    assert format_money(amount, currency.upper()) == shown


@given(
    st.sampled_from(sorted(CURRENCIES)),
    st.integers(min_value=1, max_value=9_999_999_999),
)
def test_money_shows_every_chargeable_amount_exactly(currency: str, units: int) -> None:
    rule = currency_rule(currency)
    amount = (Decimal(units) * rule.quantum).quantize(Decimal("0.01"))
    shown = format_money(amount, currency)
    number, code = shown.split(" ")
    assert code == currency.upper()
    assert Decimal(number.replace(",", "")) == amount


def test_money_a_mail_cannot_show_is_refused_not_rounded() -> None:
    with pytest.raises(ValueError, match="decimals"):
        format_money("12.50", "jpy")
    with pytest.raises(ValueError, match="not an amount"):
        format_money("NaN", "usd")
    with pytest.raises(ValueError, match="not an amount"):
        format_money("abc", "usd")


@pytest.mark.parametrize(
    ("left", "said"),
    [
        (timedelta(minutes=9, seconds=59), "9 minutes left"),
        (timedelta(minutes=1), "1 minute left"),
        (timedelta(seconds=59), "less than a minute left"),
        (timedelta(0), "the deadline has passed"),
        (timedelta(seconds=-5), "the deadline has passed"),
        (timedelta(hours=5, minutes=1), "5 hours 1 minute left"),
    ],
)
def test_time_left_counts_down_in_whole_minutes(left: timedelta, said: str) -> None:
    assert time_left(QUEUED + left, QUEUED) == said


def test_times_are_shown_in_utc() -> None:
    paris = datetime.fromisoformat("2026-12-01T15:05:30+01:00")
    assert utc_text(paris) == "2026-12-01 14:05 UTC"
    with pytest.raises(ValueError, match="aware"):
        utc_text(datetime(2026, 12, 1))


@given(st.text(max_size=400))
def test_header_text_is_one_bounded_line(text: str) -> None:
    line = one_line(text, 80)
    assert "\n" not in line and "\r" not in line
    assert len(line) <= 80
