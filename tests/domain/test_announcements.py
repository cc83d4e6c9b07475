"""What each transition tells whom: the events' routing and payloads, and the emails queued."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from domain.announcements import (
    CheckoutFacts,
    LiveEvent,
    LiveEventName,
    MailKind,
    Party,
    ReopenReason,
    artwork_sold,
    bid_placed,
    bidding_reopened,
    money,
    payment_failed,
    payment_required,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BUYER = Party(user_id=11, email="bea@example.com", name="Bea")
SELLER = Party(user_id=22, email="sam@example.com", name="Sam")
FACTS = CheckoutFacts(
    bid_id=7,
    artwork_id=3,
    artwork_title="Blue hour",
    currency="usd",
    hammer_price=Decimal("1250.00"),
    buyer=BUYER,
    seller=SELLER,
    fee_amount=Decimal("37.64"),
    amount=Decimal("1287.64"),
    expires_at=NOW + timedelta(minutes=10),
)

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2)


def test_payment_required_reaches_the_winner_and_the_watchers_with_the_total() -> None:
    announced = payment_required(FACTS, NOW)
    (event,), (mail,) = announced.events, announced.mails
    assert event.name is LiveEventName.PAYMENT_REQUIRED
    assert (event.users, event.to_watchers) == ((BUYER.user_id,), True)
    assert event.payload() == {
        "event_id": "payment_required:7",
        "occurred_at": NOW.isoformat(),
        "artwork_id": 3,
        "bid_id": 7,
        "hammer_price": "1250.00",
        "fee_amount": "37.64",
        "amount": "1287.64",
        "currency": "usd",
        "expires_at": (NOW + timedelta(minutes=10)).isoformat(),
    }
    assert (mail.kind, mail.recipient) == (MailKind.PAYMENT_REQUIRED, BUYER)
    assert mail.context["amount"] == "1287.64"


def test_a_decline_is_for_the_winner_alone_and_named_by_stripes_event() -> None:
    announced = payment_failed(
        FACTS, reason="card_declined", attempts=2, stripe_event_id="evt_1", occurred_at=NOW
    )
    (event,) = announced.events
    assert (event.users, event.to_watchers) == ((BUYER.user_id,), False)
    assert event.event_id == "payment_failed:7:evt_1"
    assert event.payload()["attempts"] == 2
    assert [mail.recipient for mail in announced.mails] == [BUYER]
    other = payment_failed(
        FACTS, reason="card_declined", attempts=3, stripe_event_id="evt_2", occurred_at=NOW
    )
    assert other.mails[0].message_id("x.test") != announced.mails[0].message_id("x.test")


def test_a_sale_tells_both_parties_and_the_watchers() -> None:
    announced = artwork_sold(FACTS, charge_id="ch_1", occurred_at=NOW)
    (event,) = announced.events
    assert set(event.users) == {BUYER.user_id, SELLER.user_id} and event.to_watchers
    assert event.payload()["hammer_price"] == "1250.00"
    kinds = {(mail.kind, mail.recipient) for mail in announced.mails}
    assert kinds == {(MailKind.PAYMENT_RECEIPT, BUYER), (MailKind.ARTWORK_SOLD, SELLER)}
    receipt = next(m for m in announced.mails if m.kind is MailKind.PAYMENT_RECEIPT)
    sold = next(m for m in announced.mails if m.kind is MailKind.ARTWORK_SOLD)
    assert receipt.context["charge_id"] == "ch_1"
    assert sold.context["net"] == "1250.00"  # the buyer paid the processing fee


def test_reopening_says_why_to_the_winner_and_the_seller() -> None:
    expired = bidding_reopened(
        FACTS, reason=ReopenReason.EXPIRED, detail=None, highest_bid=None, occurred_at=NOW
    )
    assert expired.events[0].payload()["reason"] == "expired"
    assert expired.events[0].payload()["highest_bid"] is None
    assert [m.kind for m in expired.mails] == [MailKind.PAYMENT_EXPIRED, MailKind.BIDDING_REOPENED]
    canceled = bidding_reopened(
        FACTS,
        reason=ReopenReason.CANCELED,
        detail="canceled by ops: buyer asked",
        highest_bid=Decimal("900"),
        occurred_at=NOW,
    )
    assert canceled.events[0].payload()["highest_bid"] == "900.00"
    to_buyer, to_seller = canceled.mails
    assert (to_buyer.kind, to_buyer.recipient) == (MailKind.CHECKOUT_CANCELED, BUYER)
    assert (to_seller.kind, to_seller.recipient) == (MailKind.BIDDING_REOPENED, SELLER)
    assert to_buyer.context["detail"] == "canceled by ops: buyer asked"


def test_no_event_carries_a_client_secret() -> None:
    every = [
        *payment_required(FACTS, NOW).events,
        *artwork_sold(FACTS, charge_id="ch_1", occurred_at=NOW).events,
        *bid_placed(
            bid_id=1, artwork_id=3, amount=Decimal(5), currency="usd", occurred_at=NOW
        ).events,
    ]
    for event in every:
        assert "secret" not in event.to_wire()


@given(amount=amounts, bid_id=st.integers(1, 2**63 - 1), watchers=st.booleans())
def test_events_cross_postgres_notify_unchanged(
    amount: Decimal, bid_id: int, watchers: bool
) -> None:
    event = LiveEvent(
        LiveEventName.BID_PLACED,
        f"bid_placed:{bid_id}",
        artwork_id=bid_id,
        occurred_at=NOW,
        users=(1, 2) if watchers else (),
        to_watchers=watchers,
        fields={"bid_id": bid_id, "amount": money(amount), "currency": "eur"},
    )
    wire = event.to_wire()
    assert LiveEvent.from_wire(wire) == event
    assert len(wire.encode()) < 8000  # PostgreSQL's NOTIFY payload limit
    assert json.loads(wire)["payload"]["amount"] == money(amount)


@given(amount=amounts)
def test_money_is_a_two_place_decimal_string_that_reads_back_exactly(amount: Decimal) -> None:
    text = money(amount)
    assert Decimal(text) == amount
    assert len(text.partition(".")[2]) == 2


@given(
    transition=st.from_regex(r"bid-[0-9]{1,19}(-decline-evt_[A-Za-z0-9]{1,30})?", fullmatch=True),
    user_id=st.integers(1, 2**63 - 1),
    kind=st.sampled_from(MailKind),
)
def test_message_ids_are_deterministic_and_well_formed(
    transition: str, user_id: int, kind: MailKind
) -> None:
    facts = CheckoutFacts(**{**FACTS.__dict__, "buyer": Party(user_id, "b@example.com")})
    mail = payment_required(facts, NOW).mails[0]
    mail = type(mail)(kind, transition, mail.recipient, mail.bid_id, mail.artwork_id, {})
    first, again = mail.message_id("auction.example"), mail.message_id("auction.example")
    assert first == again
    assert first.startswith("<") and first.endswith("@auction.example>")
    assert " " not in first and first.count("@") == 1
