import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.checkout import (
    ARTWORK_TRANSITIONS,
    BID_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    TERMINAL_PAYMENT_STATUSES,
    ArtworkStatus,
    BidStatus,
    IntentState,
    PaymentStatus,
    TransitionRefused,
    intent_state,
    plan_transition,
)


def test_the_happy_path_is_allowed() -> None:
    assert plan_transition(
        "artwork", ArtworkStatus.ACTIVE, ArtworkStatus.PENDING_PAYMENT, ARTWORK_TRANSITIONS
    )
    assert plan_transition(
        "artwork", ArtworkStatus.PENDING_PAYMENT, ArtworkStatus.SOLD, ARTWORK_TRANSITIONS
    )
    assert plan_transition("bid", BidStatus.WON, BidStatus.PAID, BID_TRANSITIONS)
    assert plan_transition(
        "payment", PaymentStatus.FAILED, PaymentStatus.SUCCEEDED, PAYMENT_TRANSITIONS
    )


def test_a_retry_of_a_landed_transition_is_a_no_op() -> None:
    assert not plan_transition(
        "artwork", ArtworkStatus.SOLD, ArtworkStatus.SOLD, ARTWORK_TRANSITIONS
    )
    assert not plan_transition("bid", BidStatus.UNPAID, BidStatus.UNPAID, BID_TRANSITIONS)


def test_a_second_decline_is_a_write() -> None:
    assert plan_transition(
        "payment", PaymentStatus.FAILED, PaymentStatus.FAILED, PAYMENT_TRANSITIONS
    )


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (ArtworkStatus.SOLD, ArtworkStatus.ACTIVE),  # a late expiry never reopens a sale
        (ArtworkStatus.ACTIVE, ArtworkStatus.SOLD),  # no sale without a reservation
    ],
)
def test_decided_outcomes_are_never_undone(current: ArtworkStatus, target: ArtworkStatus) -> None:
    with pytest.raises(TransitionRefused):
        plan_transition("artwork", current, target, ARTWORK_TRANSITIONS)


def test_a_sold_payment_cannot_expire() -> None:
    with pytest.raises(TransitionRefused):
        plan_transition(
            "payment", PaymentStatus.SUCCEEDED, PaymentStatus.EXPIRED, PAYMENT_TRANSITIONS
        )


@given(current=st.sampled_from(list(PaymentStatus)), target=st.sampled_from(list(PaymentStatus)))
def test_terminal_payments_admit_nothing_but_retries(
    current: PaymentStatus, target: PaymentStatus
) -> None:
    if current in TERMINAL_PAYMENT_STATUSES and current != target:
        with pytest.raises(TransitionRefused):
            plan_transition("payment", current, target, PAYMENT_TRANSITIONS)


@pytest.mark.parametrize(
    ("stripe_status", "state"),
    [
        ("succeeded", IntentState.PAID),
        ("canceled", IntentState.CANCELED),
        ("processing", IntentState.IN_FLIGHT),
        ("requires_capture", IntentState.IN_FLIGHT),
        ("requires_payment_method", IntentState.OPEN),
        ("requires_confirmation", IntentState.OPEN),
        ("requires_action", IntentState.OPEN),
    ],
)
def test_what_a_stripe_status_means_for_the_deadline(
    stripe_status: str, state: IntentState
) -> None:
    assert intent_state(stripe_status) is state
