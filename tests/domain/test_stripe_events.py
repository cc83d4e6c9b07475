from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.stripe_events import (
    MalformedEvent,
    PaymentEventKind,
    charge_id_of,
    parse_payment_event,
)


def event(kind: str, **intent: Any) -> dict[str, Any]:
    body = {"id": "pi_123", "metadata": {"workflow_id": "payment-bid-7", "bid_id": "7"}, **intent}
    return {"id": "evt_1", "type": kind, "created": 1700000000, "data": {"object": body}}


def test_success_carries_the_charge_whether_expanded_or_not() -> None:
    expanded = parse_payment_event(event("payment_intent.succeeded", latest_charge={"id": "ch_1"}))
    plain = parse_payment_event(event("payment_intent.succeeded", latest_charge="ch_1"))
    assert expanded is not None and plain is not None
    assert expanded.kind is PaymentEventKind.SUCCEEDED
    assert expanded.charge_id == plain.charge_id == "ch_1"
    assert expanded.bid_id == 7
    assert expanded.workflow_id == "payment-bid-7"


def test_a_decline_says_why() -> None:
    failed = parse_payment_event(
        event(
            "payment_intent.payment_failed",
            last_payment_error={"code": "card_declined", "message": "Your card was declined."},
        )
    )
    assert failed is not None
    assert failed.kind is PaymentEventKind.FAILED
    assert failed.failure_reason == "card_declined: Your card was declined."
    assert failed.charge_id is None


def test_events_the_saga_does_not_use_are_ignored() -> None:
    assert parse_payment_event(event("charge.refunded")) is None
    assert parse_payment_event({"type": "customer.created"}) is None


def test_a_handled_type_without_an_intent_is_malformed() -> None:
    with pytest.raises(MalformedEvent):
        parse_payment_event({"id": "evt_1", "type": "payment_intent.succeeded", "data": {}})


@given(
    st.dictionaries(
        st.sampled_from(["id", "type", "created", "data", "object"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: (
                st.dictionaries(st.text(max_size=8), inner, max_size=4)
                | st.lists(inner, max_size=3)
            ),
            max_leaves=10,
        ),
    )
)
def test_any_json_is_parsed_or_refused_cleanly(raw: dict[str, Any]) -> None:
    try:
        parsed = parse_payment_event(raw)
    except MalformedEvent:
        return
    assert parsed is None or parsed.payment_intent_id.startswith("pi_")


@given(st.sampled_from(["payment_intent.succeeded", "payment_intent.payment_failed"]), st.text())
def test_metadata_bid_ids_are_only_taken_when_numeric(kind: str, bid: str) -> None:
    parsed = parse_payment_event(event(kind, metadata={"bid_id": bid}))
    assert parsed is not None
    assert parsed.bid_id is None or str(parsed.bid_id) == bid.lstrip("0") or parsed.bid_id == 0


def test_charge_id_of_an_intent_without_charge() -> None:
    assert charge_id_of({"latest_charge": None}) is None
