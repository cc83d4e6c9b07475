"""What reconciliation makes of the three views: each combination, and what is safe to do."""

from __future__ import annotations

import pytest

from domain.reconciliation import (
    CheckoutRow,
    FindingKind,
    IntentSeen,
    Repair,
    SagaSeen,
    SagaState,
    assess,
    bids_to_look_at,
    checkout_finding,
    intent_finding,
    intents_to_read_again,
)

NOW = 1_800_000_000
GRACE = 15 * 60
OLD = NOW - GRACE - 1
YOUNG = NOW - 60


def row(
    bid: str = "won",
    artwork: str = "pending_payment",
    payment: str | None = "pending",
    intent: str | None = "pi_1",
) -> CheckoutRow:
    return CheckoutRow(7, 3, bid, artwork, payment, intent if payment else None)


def intent(
    status: str = "requires_payment_method", pi: str = "pi_1", created: int = OLD
) -> IntentSeen:
    return IntentSeen(pi, status, bid_id=7, created=created, amount_minor=10330, currency="usd")


def saga(state: SagaState, restarted: bool = False) -> SagaSeen:
    return SagaSeen(7, state, restarted)


@pytest.mark.parametrize(
    ("state", "paid", "expected"),
    [
        (SagaState.RUNNING, False, None),
        (SagaState.RUNNING, True, (FindingKind.PAID_SAGA_WAITING, Repair.NOTIFY_SAGA)),
        (SagaState.TERMINATED, False, (FindingKind.SAGA_NOT_RUNNING, Repair.RESTART_SAGA)),
        (SagaState.MISSING, False, (FindingKind.SAGA_NOT_RUNNING, Repair.RESTART_SAGA)),
        (SagaState.TIMED_OUT, False, (FindingKind.SAGA_NOT_RUNNING, Repair.RESTART_SAGA)),
        (SagaState.FAILED, False, (FindingKind.SAGA_NOT_RUNNING, Repair.RESTART_SAGA)),
        (SagaState.TERMINATED, True, (FindingKind.PAID_SAGA_NOT_RUNNING, Repair.RESTART_SAGA)),
        (SagaState.COMPLETED, False, (FindingKind.SAGA_COMPLETED_UNDECIDED, None)),
    ],
)
def test_an_undecided_checkout_is_restarted_unless_its_saga_runs_or_completed(
    state: SagaState, paid: bool, expected: tuple[FindingKind, Repair | None] | None
) -> None:
    status = "succeeded" if paid else "requires_payment_method"
    finding = checkout_finding(row(), {"pi_1": intent(status)}, saga(state))
    assert (finding and (finding.kind, finding.repair)) == expected


def test_a_saga_that_failed_again_after_a_restart_is_left_to_an_operator() -> None:
    finding = checkout_finding(row(), {}, saga(SagaState.FAILED, restarted=True))
    assert finding is not None
    assert (finding.kind, finding.repair) == (FindingKind.RESTART_FAILED, None)


def test_a_checkout_not_described_is_left_alone() -> None:
    assert checkout_finding(row(payment=None), {}, None) is None


def test_rows_that_disagree_are_reported_whatever_the_saga() -> None:
    finding = checkout_finding(row(bid="unpaid", artwork="active"), {}, saga(SagaState.MISSING))
    assert finding is not None
    assert (finding.kind, finding.repair) == (FindingKind.ROWS_DISAGREE, None)


CANCEL = Repair.CANCEL_INTENT


@pytest.mark.parametrize(
    ("seen", "checkout", "state", "expected"),
    [
        # Money.
        (intent("succeeded"), row("paid", "sold", "succeeded"), SagaState.COMPLETED, None),
        (
            intent("succeeded"),
            row("unpaid", "active", "expired"),
            SagaState.COMPLETED,
            (FindingKind.MONEY_WITHOUT_SALE, None),
        ),
        (intent("succeeded"), row("unpaid", "active", "expired"), SagaState.RUNNING, None),
        (
            intent("succeeded", pi="pi_2"),
            row("paid", "sold", "succeeded"),
            SagaState.COMPLETED,
            (FindingKind.MONEY_WITHOUT_SALE, None),
        ),
        (intent("succeeded", created=YOUNG), None, SagaState.MISSING, None),
        (intent("succeeded"), None, SagaState.MISSING, (FindingKind.MONEY_WITHOUT_SALE, None)),
        (
            intent("processing"),
            row("unpaid", "active", "canceled"),
            SagaState.COMPLETED,
            (FindingKind.MONEY_IN_FLIGHT, None),
        ),
        (
            intent(),
            row("paid", "sold", "succeeded"),
            SagaState.COMPLETED,
            (FindingKind.SOLD_WITHOUT_PAYMENT, None),
        ),
        # Leftovers of decided checkouts.
        (
            intent(),
            row("unpaid", "active", "expired"),
            SagaState.COMPLETED,
            (FindingKind.LEFTOVER_INTENT, CANCEL),
        ),
        (
            intent("requires_action", pi="pi_2"),
            row("paid", "sold", "succeeded"),
            SagaState.COMPLETED,
            (FindingKind.LEFTOVER_INTENT, CANCEL),
        ),
        (intent(), row("unpaid", "active", "expired"), SagaState.RUNNING, None),
        (intent(pi="pi_2"), row(), SagaState.RUNNING, None),  # undecided: canceled later
        (intent(pi="pi_2"), row(), SagaState.TERMINATED, None),
        # Orphans: no payment recorded.
        (intent(), None, SagaState.MISSING, (FindingKind.ORPHAN_INTENT, CANCEL)),
        (intent(created=YOUNG), None, SagaState.MISSING, None),
        (intent(), None, SagaState.RUNNING, None),
        (
            intent(),
            row("active", "active", None),
            SagaState.MISSING,
            (FindingKind.ORPHAN_INTENT, CANCEL),
        ),
        (
            intent(),
            row("unpaid", "active", None),
            SagaState.FAILED,
            (FindingKind.ORPHAN_INTENT, CANCEL),
        ),
        # A won bid without a payment: its restart may adopt the intent (Stripe's key).
        (intent(), row(payment=None), SagaState.TERMINATED, None),
        (intent("canceled"), None, SagaState.MISSING, None),
    ],
)
def test_an_intent_is_canceled_only_when_no_checkout_can_still_use_it(
    seen: IntentSeen,
    checkout: CheckoutRow | None,
    state: SagaState,
    expected: tuple[FindingKind, Repair | None] | None,
) -> None:
    finding = intent_finding(seen, checkout, saga(state), now=NOW, grace=GRACE)
    assert (finding and (finding.kind, finding.repair)) == expected


def test_an_intent_whose_saga_was_not_described_is_never_canceled() -> None:
    assert intent_finding(intent(), None, None, now=NOW, grace=GRACE) is None


def test_money_without_a_sale_is_urgent_and_never_repaired() -> None:
    finding = intent_finding(
        intent("succeeded"), row("unpaid", "active", "canceled"), saga(SagaState.COMPLETED),
        now=NOW, grace=GRACE,
    )  # fmt: skip
    assert finding is not None and finding.kind.urgent and finding.repair is None
    assert "10330 usd" in finding.detail and "reopened" in finding.detail


def test_the_recorded_intent_of_an_undecided_checkout_is_judged_with_its_checkout() -> None:
    paid = intent("succeeded")
    findings = assess(
        [row()], [paid], {7: saga(SagaState.TERMINATED)}, now=NOW, orphan_grace_seconds=GRACE
    )
    assert [(f.kind, f.repair) for f in findings] == [
        (FindingKind.PAID_SAGA_NOT_RUNNING, Repair.RESTART_SAGA)
    ]
    assert intents_to_read_again([row()], [paid]) == []


def test_an_artwork_reserved_for_no_winner_is_reported() -> None:
    [finding] = assess([], [], {}, [12], now=NOW, orphan_grace_seconds=GRACE)
    assert (finding.kind, finding.artwork_id, finding.repair) == (
        FindingKind.ROWS_DISAGREE,
        12,
        None,
    )


def test_only_what_may_need_a_repair_is_looked_at_closer() -> None:
    sold = CheckoutRow(1, 1, "paid", "sold", "succeeded", "pi_sold")
    reopened = CheckoutRow(2, 2, "unpaid", "active", "expired", "pi_reopened")
    waiting = CheckoutRow(3, 3, "won", "pending_payment", "pending", "pi_waiting")
    intents = [
        IntentSeen("pi_sold", "succeeded", 1, OLD),
        IntentSeen("pi_reopened", "canceled", 2, OLD),
        IntentSeen("pi_waiting", "requires_payment_method", 3, OLD),
        IntentSeen("pi_orphan", "requires_payment_method", 4, OLD),
    ]
    assert bids_to_look_at([sold, reopened, waiting], intents) == [3, 4]
    assert intents_to_read_again([sold, reopened, waiting], intents) == ["pi_orphan"]


def test_money_an_operator_refunded_in_full_is_no_longer_reported() -> None:
    reopened = row("unpaid", "active", "expired")
    completed = saga(SagaState.COMPLETED)

    def judged(refunded: int) -> FindingKind | None:
        seen = IntentSeen("pi_1", "succeeded", 7, OLD, 10330, "usd", refunded_minor=refunded)
        finding = intent_finding(seen, reopened, completed, now=NOW, grace=GRACE)
        return None if finding is None else finding.kind

    assert judged(0) is FindingKind.MONEY_WITHOUT_SALE
    assert judged(5000) is FindingKind.MONEY_WITHOUT_SALE  # a part is still owed
    assert judged(10330) is None
    refunded = IntentSeen("pi_1", "succeeded", 7, OLD, 10330, "usd", refunded_minor=10330)
    assert bids_to_look_at([reopened], [refunded]) == []
