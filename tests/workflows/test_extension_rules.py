"""When an operator may extend a checkout's deadline: the rules the update's validator applies."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from workflows.details import render_details
from workflows.extensions import extension, extension_refusal
from workflows.types import (
    CancelCheckout,
    CheckoutPhase,
    CheckoutStatus,
    ExtendDeadline,
    WindowClosed,
)

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
DEADLINE = NOW + timedelta(minutes=10)
A_DAY = 1440


def awaiting(**changes: Any) -> CheckoutStatus:
    status = CheckoutStatus(
        phase=CheckoutPhase.AWAITING_PAYMENT,
        bid_id=1,
        artwork_id=2,
        buyer_id=3,
        currency="usd",
        hammer_price=Decimal("150.00"),
        amount=Decimal("154.79"),
        payment_intent_id="pi_1",
        expires_at=DEADLINE,
        original_expires_at=DEADLINE,
    )
    return replace(status, **changes)


def asked(minutes: int = 30, reason: str = "bank holiday") -> ExtendDeadline:
    return ExtendDeadline(minutes=minutes, reason=reason, requested_by="ops@example.com")


def test_a_payable_checkout_may_get_more_time() -> None:
    assert extension_refusal(awaiting(), asked(), A_DAY, NOW) is None
    granted = extension(awaiting(), asked(reason="  bank holiday "), NOW)
    assert granted.expires_at == DEADLINE + timedelta(minutes=30)
    assert (granted.reason, granted.requested_by, granted.requested_at) == (
        "bank holiday",
        "ops@example.com",
        NOW,
    )


@pytest.mark.parametrize(
    ("status", "request_", "refusal"),
    [
        (awaiting(phase=CheckoutPhase.SOLD), asked(), "the checkout already ended: sold"),
        (
            awaiting(phase=CheckoutPhase.SETTLING, window_closed=WindowClosed.DEADLINE),
            asked(),
            "the buyer's window already closed (deadline)",
        ),
        (
            awaiting(cancel_request=CancelCheckout(reason="fraud", requested_by="ops")),
            asked(),
            "the checkout is being canceled by ops",
        ),
        (
            awaiting(phase=CheckoutPhase.RESERVING, expires_at=None, original_expires_at=None),
            asked(),
            "the checkout is reserving, not awaiting payment",
        ),
        (
            awaiting(phase=CheckoutPhase.OPENING_PAYMENT),
            asked(),
            "the checkout is opening_payment, not awaiting payment",
        ),
        (awaiting(expires_at=NOW), asked(), "already passed"),
        (awaiting(), asked(minutes=0), "minutes must be a positive number"),
        (awaiting(), asked(minutes=-5), "minutes must be a positive number"),
        (awaiting(), asked(reason=" "), "a reason is required"),
        (awaiting(), asked(minutes=A_DAY + 1), "at most 1440 minutes past the original"),
        (awaiting(), asked(minutes=10**30), "at most 1440 minutes past the original"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_refusals_name_their_reason(
    status: CheckoutStatus, request_: ExtendDeadline, refusal: str
) -> None:
    refused = extension_refusal(status, request_, A_DAY, NOW)
    assert refused is not None and refusal in refused


def test_extensions_add_up_to_the_limit_counted_from_the_original_deadline() -> None:
    moved = awaiting(expires_at=DEADLINE + timedelta(minutes=45))
    assert extension_refusal(moved, asked(minutes=15), 60, NOW) is None
    refused = extension_refusal(moved, asked(minutes=16), 60, NOW)
    assert refused is not None and "it already moved 45, and 16 more would pass" in refused
    assert extension(moved, asked(minutes=15), NOW).expires_at == DEADLINE + timedelta(hours=1)


def test_the_web_ui_shows_who_extended_the_deadline_and_why() -> None:
    status = awaiting()
    granted = extension(status, asked(), NOW)
    status.expires_at = granted.expires_at
    status.extensions.append(granted)
    details = render_details(status)
    assert f"deadline {granted.expires_at.isoformat()}" in details
    assert f"original deadline {DEADLINE.isoformat()}" in details
    assert "extended by 30 min" in details and "by ops@example.com" in details
    assert "bank holiday" in details


def test_the_web_ui_shows_the_latest_extensions_and_counts_the_rest() -> None:
    status = awaiting()
    for _ in range(7):
        granted = extension(status, asked(minutes=1), NOW)
        status.expires_at = granted.expires_at
        status.extensions.append(granted)
    details = render_details(status)
    assert "2 earlier extensions" in details
    assert details.count("extended by 1 min") == 5
