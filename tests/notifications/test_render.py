"""Each kind of email, rendered from the context its transition queues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.announcements import (
    CheckoutFacts,
    MailKind,
    Party,
    ReopenReason,
    artwork_sold,
    bidding_reopened,
    deadline_extended,
    payment_failed,
    payment_required,
)
from notifications.render import (
    NOTIFICATION_HEADER,
    MailRenderer,
    RenderFailed,
    compose,
)
from notifications.smtp import wire_bytes

NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
RENDERER = MailRenderer("https://auction.example/")
BUYER = Party(7, "bea@example.com", "Bea Buyer")
SELLER = Party(8, "sam@example.com", "Sam Seller")


def facts(currency: str = "usd", title: str = "Harbour at dusk", **prices: Any) -> CheckoutFacts:
    values: dict[str, Any] = {
        "hammer_price": "1250.00",
        "fee_amount": "37.64",
        "amount": "1287.64",
        **prices,
    }
    return CheckoutFacts(
        bid_id=12,
        artwork_id=3,
        artwork_title=title,
        currency=currency,
        hammer_price=Decimal(values["hammer_price"]),
        buyer=BUYER,
        seller=SELLER,
        fee_amount=Decimal(values["fee_amount"]),
        amount=Decimal(values["amount"]),
        expires_at=NOW + timedelta(minutes=9, seconds=30),
    )


def contexts(checkout: CheckoutFacts) -> dict[MailKind, dict[str, Any]]:
    """Every kind's context, exactly as the transitions' builders queue it."""
    mails = [
        *payment_required(checkout, NOW).mails,
        *payment_failed(
            checkout,
            reason="card_declined: Your card was declined.",
            attempts=1,
            stripe_event_id="evt_1",
            occurred_at=NOW,
        ).mails,
        *deadline_extended(checkout, extension_id="upd-1", minutes=30, occurred_at=NOW).mails,
        *artwork_sold(checkout, charge_id="ch_123", occurred_at=NOW).mails,
        *bidding_reopened(
            checkout, reason=ReopenReason.EXPIRED, detail=None, highest_bid=None, occurred_at=NOW
        ).mails,
        *bidding_reopened(
            checkout,
            reason=ReopenReason.CANCELED,
            detail="buyer account flagged",
            highest_bid=None,
            occurred_at=NOW,
        ).mails,
    ]
    found: dict[MailKind, dict[str, Any]] = {}
    for mail in mails:  # the seller's reopening mail of the cancel wins, both are fine
        found[mail.kind] = dict(mail.context)
    return found


CONTEXTS = contexts(facts())
# What each kind must tell, in both parts.
MUST_SAY = {
    MailKind.PAYMENT_REQUIRED: [
        "1,250.00 USD",
        "37.64 USD",
        "1,287.64 USD",
        "2026-12-01 14:09 UTC",
        "9 minutes left",
        "https://auction.example/checkout/12",
        "sign in there with your auction access token",
        "POST https://auction.example/api/payments/create-intent",
    ],
    MailKind.PAYMENT_FAILED: [
        "card_declined: Your card was declined.",
        "9 minutes left",
        "https://auction.example/checkout/12",
    ],
    MailKind.DEADLINE_EXTENDED: [
        "30 more minutes",
        "2026-12-01 14:09 UTC",
        "9 minutes left",
        "1,287.64 USD",
        "https://auction.example/checkout/12",
    ],
    MailKind.PAYMENT_RECEIPT: ["1,287.64 USD", "ch_123", "not refunded"],
    MailKind.ARTWORK_SOLD: ["1,250.00 USD", "37.64 USD (paid by the buyer)", "You receive"],
    MailKind.PAYMENT_EXPIRED: ["passed", "2026-12-01 14:09 UTC", "no longer counts"],
    MailKind.CHECKOUT_CANCELED: ["called off", "buyer account flagged"],
    MailKind.BIDDING_REOPENED: ["back on sale", "buyer account flagged"],
}


@pytest.mark.parametrize("kind", list(MailKind))
def test_each_kind_tells_what_it_must_in_text_and_html(kind: MailKind) -> None:
    rendered = RENDERER.render(kind, CONTEXTS[kind], NOW)
    for phrase in MUST_SAY[kind]:
        assert phrase in rendered.text, (kind, phrase)
        assert phrase in rendered.html, (kind, phrase)
    assert "Harbour at dusk" in rendered.subject
    assert rendered.text.startswith("Hello Bea Buyer,") or rendered.text.startswith(
        "Hello Sam Seller,"
    )


def test_a_seller_hears_of_an_expiry_and_the_buyer_does_not_see_who_canceled() -> None:
    checkout = facts()
    expired = bidding_reopened(
        checkout, reason=ReopenReason.EXPIRED, detail=None, highest_bid=None, occurred_at=NOW
    )
    to_seller = next(mail for mail in expired.mails if mail.kind is MailKind.BIDDING_REOPENED)
    text = RENDERER.render(to_seller.kind, to_seller.context, NOW).text
    assert "did not pay by the deadline (2026-12-01 14:09 UTC)" in text
    canceled = RENDERER.render(
        MailKind.CHECKOUT_CANCELED, CONTEXTS[MailKind.CHECKOUT_CANCELED], NOW
    )
    assert "ops@example.com" not in canceled.text + canceled.html


def test_zero_decimal_currencies_show_whole_units() -> None:
    checkout = facts("jpy", hammer_price="125000", fee_amount="3986", amount="128986")
    rendered = RENDERER.render(
        MailKind.PAYMENT_REQUIRED, contexts(checkout)[MailKind.PAYMENT_REQUIRED], NOW
    )
    assert "128,986 JPY" in rendered.text
    assert "125,000 JPY" in rendered.html
    assert ".00 JPY" not in rendered.text


def test_html_is_escaped_and_text_is_not() -> None:
    title = '<script>alert("x")</script> & Co'
    context = contexts(facts(title=title))[MailKind.PAYMENT_RECEIPT]
    rendered = RENDERER.render(MailKind.PAYMENT_RECEIPT, context, NOW)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in rendered.html
    assert title in rendered.text


@given(st.text(min_size=1, max_size=200), st.text(max_size=100))
def test_any_title_and_name_make_a_message_with_one_line_headers(title: str, name: str) -> None:
    context = {**CONTEXTS[MailKind.ARTWORK_SOLD], "artwork_title": title, "recipient_name": name}
    rendered = RENDERER.render(MailKind.ARTWORK_SOLD, context, NOW)
    message = compose(
        rendered,
        kind=MailKind.ARTWORK_SOLD,
        message_id="<artwork_sold.bid-12.u8@auction.example>",
        mail_from="Auction payments <payments@auction.example>",
        to_email="sam@example.com",
        to_name=name,
        now=NOW,
    )
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Message-ID"] == "<artwork_sold.bid-12.u8@auction.example>"
    assert "\n" not in str(parsed["Subject"])
    assert parsed["To"].addresses[0].addr_spec == "sam@example.com"


def test_the_message_is_multipart_alternative_with_our_headers() -> None:
    rendered = RENDERER.render(MailKind.PAYMENT_RECEIPT, CONTEXTS[MailKind.PAYMENT_RECEIPT], NOW)
    message = compose(
        rendered,
        kind=MailKind.PAYMENT_RECEIPT,
        message_id="<payment_receipt.bid-12.u7@auction.example>",
        mail_from="Auction payments <payments@auction.example>",
        to_email="bea@example.com",
        to_name="Bea Buyer",
        now=NOW,
    )
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]  # the richer part last, as RFC 2046 asks
    assert message[NOTIFICATION_HEADER] == "payment_receipt"
    assert message["Auto-Submitted"] == "auto-generated"
    assert str(message["To"]) == "Bea Buyer <bea@example.com>"


def test_a_context_missing_what_its_kind_shows_cannot_render() -> None:
    broken = {**CONTEXTS[MailKind.PAYMENT_RECEIPT]}
    del broken["currency"]
    with pytest.raises(RenderFailed, match="payment_receipt"):
        RENDERER.render(MailKind.PAYMENT_RECEIPT, broken, NOW)
    with pytest.raises(RenderFailed):
        RENDERER.render(
            MailKind.PAYMENT_RECEIPT, {**CONTEXTS[MailKind.PAYMENT_RECEIPT], "currency": "xxx"}, NOW
        )


def test_a_long_message_id_goes_out_on_one_line() -> None:
    message_id = "<payment_required.bid-9223372036854775807.u9223372036854775807@auction.example>"
    rendered = RENDERER.render(MailKind.PAYMENT_REQUIRED, CONTEXTS[MailKind.PAYMENT_REQUIRED], NOW)
    message = compose(
        rendered,
        kind=MailKind.PAYMENT_REQUIRED,
        message_id=message_id,
        mail_from="Auction payments <payments@auction.example>",
        to_email="bea@example.com",
        to_name="Bea Buyer",
        now=NOW,
    )
    wire = wire_bytes(message)
    assert f"\r\nMessage-ID: {message_id}\r\n".encode() in wire
    parsed = message_from_bytes(wire, policy=policy.default)
    assert str(parsed["Message-ID"]) == message_id
