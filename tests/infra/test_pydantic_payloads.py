"""The service's payload converter writes what the SDK's pydantic converter writes, reads it
back the same, and builds each type's adapter once per process, not once per workflow run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.contracts import OpenedPaymentIntent, Reservation
from domain.stripe_events import PaymentEvent, PaymentEventKind
from infra.pydantic_payloads import SharedAdapterPayloadConverter, cached_adapters
from infra.temporal import data_converter
from tests.support.stack import codec_settings
from workflows.types import (
    CancelCheckout,
    CarriedCheckout,
    CheckoutPhase,
    CheckoutStatus,
    DeadlineExtension,
    PaymentSagaInput,
    WindowClosed,
)

AT = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
EVENT = PaymentEvent(
    event_id="evt_1",
    kind=PaymentEventKind.FAILED,
    payment_intent_id="pi_1",
    created=1767225600,
    failure_code="card_declined",
    failure_message="Your card was declined. ½ € \u00e9",
    bid_id=7,
)
STATUS = CheckoutStatus(
    phase=CheckoutPhase.SETTLING,
    bid_id=7,
    artwork_id=3,
    buyer_id=11,
    currency="eur",
    hammer_price=Decimal("1234.50"),
    amount=Decimal("1270.40"),
    fee_amount=Decimal("35.90"),
    expires_at=AT,
    extensions=[DeadlineExtension(30, "bank holiday", "ops", AT, AT)],
    window_closed=WindowClosed.CANCELED,
    cancel_request=CancelCheckout(reason="duplicate listing"),
)
VALUES: list[tuple[Any, type]] = [
    (PaymentSagaInput(7, 3, 11, Decimal("1234.50"), "eur", seller_id=5), PaymentSagaInput),
    (
        PaymentSagaInput(7, 3, 11, Decimal("1"), "usd", carried=CarriedCheckout(STATUS, [EVENT])),
        PaymentSagaInput,
    ),
    (STATUS, CheckoutStatus),
    (EVENT, PaymentEvent),
    (Reservation(reserved=False, reason="sold already"), Reservation),
    (
        OpenedPaymentIntent(
            payment_id=1,
            payment_intent_id="pi_1",
            client_secret="pi_1_secret",
            stripe_status="requires_payment_method",
            expires_at=AT,
            amount=Decimal("10.60"),
            fee_amount=Decimal("0.60"),
            currency="usd",
        ),
        OpenedPaymentIntent,
    ),
    (None, type(None)),
    ([1, "two", 3.5], list),
]


@pytest.mark.parametrize(("value", "kind"), VALUES, ids=lambda v: type(v).__name__)
def test_payloads_are_byte_for_byte_the_sdks(value: Any, kind: type) -> None:
    ours = data_converter(codec_settings()).payload_converter
    sdks = pydantic_data_converter.payload_converter
    (written,) = ours.to_payloads([value])
    assert written == sdks.to_payloads([value])[0]
    assert ours.from_payloads([written], [kind]) == sdks.from_payloads([written], [kind])
    assert ours.from_payloads([written], [kind]) == [value]


@dataclass(frozen=True)
class SeenOnlyHere:
    """A type no other test decodes, so this test alone moves its cache entry."""

    amount: Decimal
    at: datetime


def test_each_type_is_adapted_once_whatever_the_number_of_runs() -> None:
    value = SeenOnlyHere(Decimal("9.99"), AT)
    before = cached_adapters()
    # The worker makes a new converter for each workflow run it starts or replays.
    for _ in range(5):
        converter = SharedAdapterPayloadConverter()
        payloads = converter.to_payloads([value])
        assert converter.from_payloads(payloads, [SeenOnlyHere]) == [value]
    after = cached_adapters()
    assert after.misses - before.misses == 1
    assert after.hits - before.hits == 4


def test_an_unhashable_type_hint_is_still_read() -> None:
    unhashable: Any = Annotated[Decimal, ["metadata in a list"]]
    with pytest.raises(TypeError):
        hash(unhashable)
    converter = SharedAdapterPayloadConverter()
    payloads = converter.to_payloads([Decimal("1.5")])
    assert converter.from_payloads(payloads, [unhashable]) == [Decimal("1.5")]
