"""The judge of the fault suite and the load audit: it must say no when the views disagree."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from devstack.verdict import CheckoutRows, Outcome, SagaView, intents_by_bid, judge

BID = 7

SOLD_ROWS = CheckoutRows(
    bid_id=BID,
    artwork_id=3,
    artwork_status="sold",
    bid_status="paid",
    payment_status="succeeded",
    amount=Decimal("154.79"),
    currency="usd",
    payment_intent_id="pi_paid",
    charge_id="ch_1",
)
REOPENED_ROWS = CheckoutRows(
    bid_id=BID,
    artwork_id=3,
    artwork_status="active",
    bid_status="unpaid",
    payment_status="expired",
    amount=Decimal("154.79"),
    currency="usd",
    payment_intent_id="pi_paid",
)
WAITING_ROWS = CheckoutRows(
    bid_id=BID,
    artwork_id=3,
    artwork_status="pending_payment",
    bid_status="won",
    payment_status="pending",
    amount=Decimal("154.79"),
    currency="usd",
    payment_intent_id="pi_paid",
)


def intent(status: str, *, intent_id: str = "pi_paid", amount: int = 15479) -> dict[str, Any]:
    return {
        "id": intent_id,
        "status": status,
        "amount": amount,
        "currency": "usd",
        "latest_charge": "ch_1" if status == "succeeded" else None,
        "metadata": {"bid_id": str(BID)},
    }


def intents(*found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {each["id"]: each for each in found}


def test_a_consistent_sale_is_sold_and_ok() -> None:
    verdict = judge(BID, SOLD_ROWS, intents(intent("succeeded")), SagaView("COMPLETED", "sold"))
    assert verdict.outcome is Outcome.SOLD and verdict.ok and verdict.settled


def test_a_sale_stripe_never_took_the_money_for_is_a_problem() -> None:
    verdict = judge(
        BID, SOLD_ROWS, intents(intent("requires_payment_method")), SagaView("COMPLETED", "sold")
    )
    assert not verdict.ok
    assert "requires_payment_method at Stripe" in str(verdict)


def test_a_sale_for_another_amount_is_a_problem() -> None:
    stripe = intents(intent("succeeded", amount=15478))
    verdict = judge(BID, SOLD_ROWS, stripe, SagaView("COMPLETED", "sold"))
    assert not verdict.ok
    assert "Stripe charged 15478 usd" in str(verdict)


def test_money_taken_for_a_reopened_checkout_is_a_problem() -> None:
    stripe = intents(intent("succeeded"))
    verdict = judge(BID, REOPENED_ROWS, stripe, SagaView("COMPLETED", "reopened"))
    assert verdict.outcome is Outcome.REOPENED and not verdict.ok


def test_a_second_intent_left_open_or_paid_is_a_problem() -> None:
    for status in ("requires_payment_method", "succeeded"):
        stripe = intents(intent("succeeded"), intent(status, intent_id="pi_stray"))
        verdict = judge(
            BID,
            SOLD_ROWS,
            stripe,
            SagaView("COMPLETED", "sold"),
            intents_by_bid(stripe)[BID],
        )
        assert not verdict.ok
        assert f"pi_stray for this bid is {status}" in str(verdict)


def test_a_second_intent_canceled_is_fine() -> None:
    stripe = intents(intent("succeeded"), intent("canceled", intent_id="pi_stray"))
    verdict = judge(
        BID, SOLD_ROWS, stripe, SagaView("COMPLETED", "sold"), intents_by_bid(stripe)[BID]
    )
    assert verdict.ok


def test_the_saga_disagreeing_with_the_database_is_a_problem() -> None:
    stripe = intents(intent("canceled"))
    assert not judge(BID, REOPENED_ROWS, stripe, SagaView("COMPLETED", "sold")).ok
    assert not judge(BID, REOPENED_ROWS, stripe, SagaView("FAILED")).ok
    stopped = judge(
        BID, WAITING_ROWS, intents(intent("requires_payment_method")), SagaView("TERMINATED")
    )
    assert stopped.outcome is Outcome.UNDECIDED and stopped.problems


def test_a_checkout_still_waiting_is_not_settled() -> None:
    running = SagaView("RUNNING")
    waiting = judge(BID, WAITING_ROWS, intents(intent("requires_payment_method")), running)
    assert waiting.outcome is Outcome.UNDECIDED and not waiting.settled
    # Rows written, the saga not yet completed: not settled either.
    assert not judge(BID, SOLD_ROWS, intents(intent("succeeded")), running).settled


def test_rows_the_promise_excludes_are_broken() -> None:
    half_sold = CheckoutRows(BID, 3, "sold", "won", "pending", payment_intent_id="pi_paid")
    verdict = judge(BID, half_sold, intents(intent("succeeded")), SagaView("COMPLETED", "sold"))
    assert verdict.outcome is Outcome.BROKEN and not verdict.ok


def test_the_emails_of_the_outcome_queued_once_each_are_fine() -> None:
    told = dataclasses.replace(
        SOLD_ROWS,
        mails=("artwork_sold", "payment_failed", "payment_receipt", "payment_required"),
    )
    assert judge(BID, told, intents(intent("succeeded")), SagaView("COMPLETED", "sold")).ok
    told = dataclasses.replace(
        REOPENED_ROWS, mails=("bidding_reopened", "payment_expired", "payment_required")
    )
    assert judge(BID, told, intents(intent("canceled")), SagaView("COMPLETED", "reopened")).ok


def test_an_email_missing_or_of_another_outcome_is_a_problem() -> None:
    untold = dataclasses.replace(SOLD_ROWS, mails=("payment_required",))
    verdict = judge(BID, untold, intents(intent("succeeded")), SagaView("COMPLETED", "sold"))
    assert not verdict.ok
    assert "emails queued" in verdict.problems[0]
    mixed = dataclasses.replace(
        REOPENED_ROWS,
        mails=("bidding_reopened", "payment_expired", "payment_receipt", "payment_required"),
    )
    assert not judge(BID, mixed, intents(intent("canceled")), SagaView("COMPLETED", "reopened")).ok
