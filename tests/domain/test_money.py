from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.money import (
    CURRENCIES,
    MAX_STRIPE_MINOR_UNITS,
    FeeSchedule,
    MoneyError,
    charge_for,
    from_minor_units,
    parse_amount,
    to_minor_units,
)

DEFAULT_FEES = FeeSchedule()

cents = st.integers(min_value=50, max_value=97_000_000).map(lambda c: Decimal(c).scaleb(-2))
fee_schedules = st.builds(
    FeeSchedule,
    percent=st.decimals(min_value=0, max_value=10, places=2),
    fixed=st.decimals(min_value=0, max_value=5, places=2),
)


def test_buyer_pays_the_fee_on_a_round_price() -> None:
    charge = charge_for(Decimal("1000.00"), "usd", DEFAULT_FEES)
    # Stripe keeps 2.9 % + 0.30 of 1030.17, i.e. 30.17493 rounded to 30.17: the seller nets
    # exactly 1000.00; one cent less and the seller would be a cent short.
    assert charge.total == Decimal("1030.17")
    assert charge.processing_fee == Decimal("30.17")
    assert charge.total_minor == 103017
    assert DEFAULT_FEES.net_minor(103017, "usd") == 100000
    assert DEFAULT_FEES.net_minor(103016, "usd") == 99999


def test_zero_decimal_currency_is_charged_in_whole_units() -> None:
    charge = charge_for(Decimal("10000"), "jpy", DEFAULT_FEES)
    assert charge.total_minor == int(charge.total)
    assert charge.total == charge.total.to_integral_value()


def test_three_decimal_currency_ends_in_zero() -> None:
    charge = charge_for(Decimal("250.00"), "kwd", DEFAULT_FEES)
    assert charge.total_minor % 10 == 0
    assert charge.total_minor == int(charge.total * 1000)


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (Decimal("12.34"), "usd", 1234),
        (Decimal("500"), "jpy", 500),
        (Decimal("5.12"), "kwd", 5120),
        (Decimal("5"), "isk", 500),
    ],
)
def test_minor_units_follow_stripe(amount: Decimal, currency: str, minor: int) -> None:
    assert to_minor_units(amount, currency) == minor
    assert from_minor_units(minor, currency) == amount


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(Decimal("10.5"), "jpy"), (Decimal("5.50"), "isk"), (Decimal("0.001"), "usd")],
)
def test_amounts_stripe_could_only_round_are_refused(amount: Decimal, currency: str) -> None:
    with pytest.raises(MoneyError):
        to_minor_units(amount, currency)


@pytest.mark.parametrize(
    "raw", ["0", "-1", "1.005", "100000000.00", "NaN", "Infinity", "abc", "1e30"]
)
def test_bad_amounts_are_refused_never_rounded(raw: str) -> None:
    with pytest.raises(MoneyError) as refused:
        parse_amount(raw, field="starting_price")
    assert refused.value.field == "starting_price"


def test_total_over_stripes_eight_digits_is_refused() -> None:
    # 999,999.99 USD is Stripe's ceiling; the fee pushes this hammer price over it.
    with pytest.raises(MoneyError, match="exceeds the largest charge"):
        charge_for(Decimal("990000.00"), "usd", DEFAULT_FEES)
    assert (
        charge_for(Decimal("970000.00"), "usd", DEFAULT_FEES).total_minor <= MAX_STRIPE_MINOR_UNITS
    )


def test_below_stripes_minimum_is_refused() -> None:
    with pytest.raises(MoneyError, match="minimum"):
        charge_for(Decimal("0.40"), "usd", DEFAULT_FEES)


@pytest.mark.parametrize("code", sorted(CURRENCIES))
def test_every_currency_has_a_chargeable_minimum(code: str) -> None:
    """Stripe refuses a charge below its minimum (`amount_too_small`), which no retry fixes:
    the API must refuse such a price up front in every currency it accepts."""
    rule = CURRENCIES[code]
    assert rule.minimum > 0
    assert to_minor_units(rule.minimum, code) % rule.step == 0
    below = rule.minimum - rule.quantum
    if below > 0:
        with pytest.raises(MoneyError, match="minimum"):
            charge_for(below, code, DEFAULT_FEES)
    assert charge_for(rule.minimum, code, DEFAULT_FEES).total >= rule.minimum


def test_unknown_currency_names_the_currency_field() -> None:
    with pytest.raises(MoneyError) as refused:
        charge_for(Decimal("10.00"), "xyz", DEFAULT_FEES)
    assert refused.value.field == "currency"


@given(hammer=cents, fees=fee_schedules)
def test_seller_nets_at_least_the_hammer_price_and_the_fee_is_minimal(
    hammer: Decimal, fees: FeeSchedule
) -> None:
    try:
        charge = charge_for(hammer, "usd", fees)
    except MoneyError:
        assume(False)
        raise
    hammer_minor = to_minor_units(hammer, "usd")
    assert fees.net_minor(charge.total_minor, "usd") >= hammer_minor
    assert fees.net_minor(charge.total_minor - 1, "usd") < hammer_minor
    assert charge.total == charge.hammer_price + charge.processing_fee
    assert isinstance(charge.total, Decimal)
    assert charge.total == charge.total.quantize(Decimal("0.01"))


@given(
    code=st.sampled_from(sorted(CURRENCIES)),
    units=st.integers(min_value=1, max_value=9_999_999),
)
def test_minor_units_round_trip(code: str, units: int) -> None:
    rule = CURRENCIES[code]
    minor = units * rule.step
    amount = from_minor_units(minor, code)
    assert to_minor_units(amount, code) == minor


@given(code=st.sampled_from(sorted(CURRENCIES)), hammer=cents)
def test_every_currency_gets_a_chargeable_minimal_total(code: str, hammer: Decimal) -> None:
    rule = CURRENCIES[code]
    hammer = (hammer / rule.quantum).to_integral_value() * rule.quantum
    assume(hammer >= max(rule.minimum, rule.quantum))
    try:
        charge = charge_for(hammer, code, DEFAULT_FEES)
    except MoneyError as refused:
        assert "exceeds" in str(refused)  # noqa: PT017 (only the ceiling may refuse here)
        return
    hammer_minor = to_minor_units(charge.hammer_price, code)
    assert charge.total_minor % rule.step == 0
    assert DEFAULT_FEES.net_minor(charge.total_minor, code) >= hammer_minor
    assert DEFAULT_FEES.net_minor(charge.total_minor - rule.step, code) < hammer_minor
    assert to_minor_units(charge.total, code) == charge.total_minor
