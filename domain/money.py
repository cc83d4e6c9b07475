"""Money: Decimal amounts, Stripe minor units, and the buyer-pays-the-fee total.

Everything here is pure and exact. Amounts are `Decimal` with at most two decimal places (what
`NUMERIC(10,2)` stores); Stripe receives integers in each currency's minor unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")

# The largest value a NUMERIC(10,2) column holds.
MAX_STORED_AMOUNT = Decimal("99999999.99")

# Stripe accepts at most eight digits in `amount`, whatever the currency.
MAX_STRIPE_MINOR_UNITS = 99_999_999


class MoneyError(ValueError):
    """An amount or currency we cannot charge; `field` names the input at fault."""

    def __init__(self, message: str, field: str = "amount") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class CurrencyRule:
    """How Stripe expresses one currency.

    `exponent` is the number of decimals Stripe's integer amounts carry (100 USD = 10000);
    `step` is the granularity Stripe accepts in those units (three-decimal currencies must end
    in 0; ISK, though two-decimal in the API, only takes whole kronur); `minimum` is Stripe's
    smallest charge in major units.
    """

    code: str
    exponent: int
    step: int = 1
    minimum: Decimal = Decimal("0")

    @property
    def quantum(self) -> Decimal:
        """The smallest amount, in major units, that Stripe can charge in this currency."""
        return Decimal(self.step).scaleb(-self.exponent)


def _rules() -> dict[str, CurrencyRule]:
    # Stripe's documented minimum charge amounts.
    two_decimal = {
        "usd": "0.50", "eur": "0.50", "gbp": "0.30", "chf": "0.50", "cad": "0.50",
        "aud": "0.50", "nzd": "0.50", "sgd": "0.50", "hkd": "4.00", "sek": "3.00",
        "nok": "3.00", "dkk": "2.50", "pln": "2.00",
    }  # fmt: skip
    rules = {
        code: CurrencyRule(code, 2, 1, Decimal(minimum)) for code, minimum in two_decimal.items()
    }
    rules["jpy"] = CurrencyRule("jpy", 0, 1, Decimal("50"))
    # Stripe documents no fixed minimum for these: it is the equivalent of 0.50 USD after
    # conversion. Our floor is about 1 USD, so exchange-rate swings cannot push a charge
    # below Stripe's (values in major units, multiples of each currency's step).
    zero_decimal = {
        "krw": "1400", "clp": "950", "vnd": "26000", "xaf": "600", "xof": "600",
        "xpf": "110", "pyg": "8000", "rwf": "1500", "bif": "3000", "djf": "180",
        "gnf": "9000", "kmf": "450", "mga": "4600", "vuv": "120",
    }  # fmt: skip
    for code, minimum in zero_decimal.items():
        rules[code] = CurrencyRule(code, 0, 1, Decimal(minimum))
    three_decimal = {"bhd": "0.40", "jod": "0.71", "kwd": "0.31", "omr": "0.39", "tnd": "3.00"}
    for code, minimum in three_decimal.items():
        rules[code] = CurrencyRule(code, 3, step=10, minimum=Decimal(minimum))
    rules["isk"] = CurrencyRule("isk", 2, step=100, minimum=Decimal("140"))
    return rules


CURRENCIES: dict[str, CurrencyRule] = _rules()
SUPPORTED_CURRENCIES = frozenset(CURRENCIES)


def currency_rule(currency: str) -> CurrencyRule:
    rule = CURRENCIES.get(currency.lower())
    if rule is None:
        raise MoneyError(
            f"unsupported currency {currency!r}; use one of {', '.join(sorted(CURRENCIES))}",
            field="currency",
        )
    return rule


def parse_amount(value: Decimal | str | int, field: str = "amount") -> Decimal:
    """A positive amount with at most two decimals that fits NUMERIC(10,2), never rounded."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise MoneyError(f"{value!r} is not a number", field) from None
    if not amount.is_finite():
        raise MoneyError("amount must be a finite number", field)
    if amount <= 0:
        raise MoneyError("amount must be greater than zero", field)
    if amount > MAX_STORED_AMOUNT:
        raise MoneyError(f"amount exceeds the maximum of {MAX_STORED_AMOUNT}", field)
    if amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
        raise MoneyError("amount has more than two decimal places", field)
    return amount.quantize(CENT)


def to_minor_units(amount: Decimal, currency: str, field: str = "amount") -> int:
    """`amount` in Stripe's integer units; refuses what Stripe could only take rounded."""
    rule = currency_rule(currency)
    minor = amount.scaleb(rule.exponent)
    if minor != minor.to_integral_value() or int(minor) % rule.step:
        raise MoneyError(
            f"{amount} {rule.code.upper()} is not chargeable: amounts must be multiples of "
            f"{rule.quantum}",
            field,
        )
    return int(minor)


def from_minor_units(minor: int, currency: str) -> Decimal:
    """Stripe's integer amount back to a two-decimal `Decimal`, exactly."""
    rule = currency_rule(currency)
    return Decimal(minor).scaleb(-rule.exponent).quantize(CENT)


@dataclass(frozen=True)
class FeeSchedule:
    """Stripe's processing fee: `percent` of the charge plus `fixed` major units."""

    percent: Decimal = Decimal("2.9")
    fixed: Decimal = Decimal("0.30")

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.percent < Decimal(100):
            raise ValueError("fee percent must be in [0, 100)")
        if self.fixed < 0:
            raise ValueError("fixed fee must not be negative")

    def fee_minor(self, total_minor: int, currency: str) -> int:
        """The fee Stripe keeps from a charge of `total_minor`, rounded half up to a unit."""
        rule = currency_rule(currency)
        exact = Decimal(total_minor) * self.percent / 100 + self.fixed.scaleb(rule.exponent)
        return int(exact.to_integral_value(rounding=ROUND_HALF_UP))

    def net_minor(self, total_minor: int, currency: str) -> int:
        return total_minor - self.fee_minor(total_minor, currency)


@dataclass(frozen=True)
class Charge:
    """What the buyer pays for a hammer price: `total` = `hammer_price` + `processing_fee`."""

    hammer_price: Decimal
    processing_fee: Decimal
    total: Decimal
    total_minor: int
    currency: str


def charge_for(
    hammer_price: Decimal, currency: str, fees: FeeSchedule, field: str = "amount"
) -> Charge:
    """The smallest total whose net, after Stripe's fee, is at least the hammer price."""
    rule = currency_rule(currency)
    hammer = parse_amount(hammer_price, field)
    hammer_minor = to_minor_units(hammer, rule.code, field)
    if hammer < rule.minimum:
        raise MoneyError(
            f"amount is below Stripe's minimum charge of {rule.minimum} {rule.code.upper()}",
            field,
        )
    step = rule.step
    rate = fees.percent / 100
    estimate = (Decimal(hammer_minor) + fees.fixed.scaleb(rule.exponent)) / (1 - rate)
    total = _round_up_to_step(estimate, step)
    # Fee rounding can leave the estimate one step off either way; net is monotone in the
    # total, so walking settles on the minimum.
    while fees.net_minor(total, rule.code) < hammer_minor:
        total += step
    while total - step >= hammer_minor and fees.net_minor(total - step, rule.code) >= hammer_minor:
        total -= step
    total_amount = from_minor_units(total, rule.code)
    if total > MAX_STRIPE_MINOR_UNITS or total_amount > MAX_STORED_AMOUNT:
        limit = min(from_minor_units(MAX_STRIPE_MINOR_UNITS, rule.code), MAX_STORED_AMOUNT)
        raise MoneyError(
            f"the total with processing fees, {total_amount} {rule.code.upper()}, exceeds the "
            f"largest charge accepted ({limit} {rule.code.upper()})",
            field,
        )
    return Charge(
        hammer_price=hammer,
        processing_fee=total_amount - hammer,
        total=total_amount,
        total_minor=total,
        currency=rule.code,
    )


def _round_up_to_step(value: Decimal, step: int) -> int:
    units = (value / step).to_integral_value(rounding=ROUND_CEILING)
    return int(units) * step
