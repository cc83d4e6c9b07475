"""ReconcileCheckoutsWorkflow against real drift: each kind made for real, found, repaired
(or reported), and a second run that changes nothing.

The tests share one deployment (see conftest): each looks at its own bids, and every run
also meets what earlier tests left for an operator, which a second run must leave alone.
"""

from __future__ import annotations

import asyncio

from domain.checkout import ArtworkStatus, BidStatus, PaymentStatus
from domain.reconciliation import FindingKind, Repair
from tests.reconcile.conftest import Deployment
from tests.reconcile.drift import (
    about,
    assert_nothing_to_repair,
    awaiting_buyer,
    intent_status,
    kinds,
    latest_run,
    open_checkout,
    reconcile,
    reserve_without_saga,
    stop_saga,
    stray_intent,
    write_rows,
)
from tests.support.buyer import pay
from tests.support.factories import checkout_rows, make_auction
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.reconcile_types import ActionOutcome
from workflows.types import CancelCheckout, CheckoutPhase


async def test_a_checkout_in_flight_is_left_alone(deployment: Deployment) -> None:
    checkout = await open_checkout(deployment)

    result = await reconcile(deployment, orphan_grace_minutes=0)
    assert about(result, checkout.bid_id) == []
    assert_nothing_to_repair(result)
    status = await checkout.handle.query(PaymentSagaWorkflow.status)
    assert status.phase is CheckoutPhase.AWAITING_PAYMENT
    assert await intent_status(deployment, checkout.payment_intent_id) == "requires_payment_method"
    ended = await checkout.handle.execute_update(
        PaymentSagaWorkflow.cancel_checkout, CancelCheckout(reason="test over")
    )
    assert ended.phase is CheckoutPhase.CANCELED


async def test_a_saga_stopped_past_its_deadline_is_restarted_and_reopens(
    deployment: Deployment,
) -> None:
    checkout = await open_checkout(deployment, timeout_seconds=2)
    await stop_saga(checkout)
    await asyncio.sleep(2.5)  # the recorded deadline passes while no saga runs

    first = await reconcile(deployment)
    [finding] = about(first, checkout.bid_id)
    assert (finding.kind, finding.repair) == (FindingKind.SAGA_NOT_RUNNING, Repair.RESTART_SAGA)
    assert "terminated" in finding.detail
    [action] = [a for a in first.actions if a.bid_id == checkout.bid_id]
    assert action.outcome is ActionOutcome.DONE

    assert (await latest_run(deployment, checkout.bid_id)).phase is CheckoutPhase.REOPENED
    rows = await checkout_rows(deployment.sessions, checkout.auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.ACTIVE, BidStatus.UNPAID)
    assert rows.payment.status == PaymentStatus.EXPIRED
    assert rows.payment.stripe_payment_intent_id == checkout.payment_intent_id  # reused
    assert await intent_status(deployment, checkout.payment_intent_id) == "canceled"

    second = await reconcile(deployment)
    assert about(second, checkout.bid_id) == []
    assert_nothing_to_repair(second)


async def test_money_landed_while_the_saga_was_stopped_is_a_sale(deployment: Deployment) -> None:
    checkout = await open_checkout(deployment)
    await stop_saga(checkout)
    assert await pay(deployment.stripe, checkout.payment_intent_id) == "succeeded"

    first = await reconcile(deployment)
    assert kinds(first, checkout.bid_id) == [FindingKind.PAID_SAGA_NOT_RUNNING]
    assert [a.repair for a in first.actions if a.bid_id == checkout.bid_id] == [Repair.RESTART_SAGA]

    assert (await latest_run(deployment, checkout.bid_id)).phase is CheckoutPhase.SOLD
    rows = await checkout_rows(deployment.sessions, checkout.auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.SOLD, BidStatus.PAID)
    assert rows.payment.status == PaymentStatus.SUCCEEDED

    second = await reconcile(deployment)
    assert about(second, checkout.bid_id) == []
    assert_nothing_to_repair(second)


async def test_a_payment_whose_webhook_never_came_is_told_to_the_running_saga(
    deployment: Deployment,
) -> None:
    checkout = await open_checkout(deployment)
    # Nothing relays Stripe's webhooks here: the saga would wait for its deadline.
    assert await pay(deployment.stripe, checkout.payment_intent_id) == "succeeded"

    first = await reconcile(deployment)
    assert kinds(first, checkout.bid_id) == [FindingKind.PAID_SAGA_WAITING]
    [action] = [a for a in first.actions if a.bid_id == checkout.bid_id]
    assert (action.repair, action.outcome) == (Repair.NOTIFY_SAGA, ActionOutcome.DONE)
    assert (await checkout.handle.result()).phase is CheckoutPhase.SOLD

    second = await reconcile(deployment)
    assert about(second, checkout.bid_id) == []
    assert_nothing_to_repair(second)


async def test_a_reservation_without_any_saga_gets_one(deployment: Deployment) -> None:
    """Temporal lost the saga (no run under its id), the artwork still waits for its winner."""
    auction = await reserve_without_saga(deployment)

    first = await reconcile(deployment)
    [finding] = about(first, auction.bid_id)
    assert (finding.kind, finding.repair) == (FindingKind.SAGA_NOT_RUNNING, Repair.RESTART_SAGA)
    assert "missing" in finding.detail
    handle = await awaiting_buyer(deployment, auction.bid_id)

    second = await reconcile(deployment)  # the saga runs: nothing to do
    assert about(second, auction.bid_id) == []
    assert_nothing_to_repair(second)
    ended = await handle.execute_update(
        PaymentSagaWorkflow.cancel_checkout, CancelCheckout(reason="test over")
    )
    assert ended.phase is CheckoutPhase.CANCELED


async def test_an_intent_left_open_for_a_decided_checkout_is_canceled(
    deployment: Deployment,
) -> None:
    checkout = await open_checkout(deployment)
    await stop_saga(checkout)
    await write_rows(
        deployment, checkout.auction, artwork="active", bid="unpaid", payment="expired"
    )
    second_intent = await stray_intent(deployment, checkout.bid_id)

    first = await reconcile(deployment)
    assert kinds(first, checkout.bid_id) == [FindingKind.LEFTOVER_INTENT] * 2
    canceled = {a.payment_intent_id for a in first.actions if a.bid_id == checkout.bid_id}
    assert canceled == {checkout.payment_intent_id, second_intent}
    assert all(a.outcome is ActionOutcome.DONE for a in first.actions)
    for intent_id in (checkout.payment_intent_id, second_intent):
        assert await intent_status(deployment, intent_id) == "canceled"

    second = await reconcile(deployment)
    assert about(second, checkout.bid_id) == []
    assert_nothing_to_repair(second)


async def test_an_orphan_intent_is_canceled_once_past_its_grace(deployment: Deployment) -> None:
    never_won = await make_auction(deployment.sessions)
    orphan = await stray_intent(deployment, never_won.bid_id)
    unknown_bid = 9_000_000_000 + never_won.bid_id
    orphan_of_nobody = await stray_intent(deployment, unknown_bid)
    someone_elses = await stray_intent(deployment, unknown_bid, environment="another-deployment")

    young = await reconcile(deployment)  # 15 minutes of grace: it may be being recorded now
    assert about(young, never_won.bid_id) == about(young, unknown_bid) == []
    assert await intent_status(deployment, orphan) == "requires_payment_method"

    first = await reconcile(deployment, orphan_grace_minutes=0)
    assert (
        kinds(first, never_won.bid_id) == kinds(first, unknown_bid) == [FindingKind.ORPHAN_INTENT]
    )
    assert {a.payment_intent_id for a in first.actions if a.outcome is ActionOutcome.DONE} >= {
        orphan,
        orphan_of_nobody,
    }
    assert await intent_status(deployment, orphan) == "canceled"
    assert await intent_status(deployment, orphan_of_nobody) == "canceled"
    assert await intent_status(deployment, someone_elses) == "requires_payment_method"

    second = await reconcile(deployment, orphan_grace_minutes=0)
    assert_nothing_to_repair(second)


async def test_money_taken_for_a_reopened_checkout_is_reported_until_an_operator_refunds(
    deployment: Deployment,
) -> None:
    checkout = await open_checkout(deployment)
    await stop_saga(checkout)
    assert await pay(deployment.stripe, checkout.payment_intent_id) == "succeeded"
    await write_rows(
        deployment, checkout.auction, artwork="active", bid="unpaid", payment="expired"
    )

    for _ in range(2):  # found again each run, and never acted on
        result = await reconcile(deployment)
        [finding] = about(result, checkout.bid_id)
        assert finding.kind is FindingKind.MONEY_WITHOUT_SALE
        assert finding.kind.urgent and finding.repair is None
        assert "reopened" in finding.detail
        assert result.finding_counts[FindingKind.MONEY_WITHOUT_SALE.value] >= 1
        assert [a for a in result.actions if a.bid_id == checkout.bid_id] == []
    assert_nothing_to_repair(result)
    assert await intent_status(deployment, checkout.payment_intent_id) == "succeeded"

    # The operator refunds it at Stripe: the report has been acted on, and is gone.
    await deployment.stripe.v1.refunds.create_async(
        params={"payment_intent": checkout.payment_intent_id}
    )
    assert about(await reconcile(deployment), checkout.bid_id) == []


async def test_a_dry_run_finds_and_repairs_nothing(deployment: Deployment) -> None:
    checkout = await open_checkout(deployment)
    await stop_saga(checkout)

    dry = await reconcile(deployment, dry_run=True)
    assert kinds(dry, checkout.bid_id) == [FindingKind.SAGA_NOT_RUNNING]
    assert dry.actions == [] and dry.dry_run
    assert (await checkout.handle.describe()).status.name == "TERMINATED"  # type: ignore[union-attr]

    repaired = await reconcile(deployment)
    assert [a.bid_id for a in repaired.actions] == [checkout.bid_id]
    # A cancel that reaches a restarted saga while it reserves again ends it failed
    # (compensated): it does not know yet that a payment was recorded. Cancel once it waits.
    handle = await awaiting_buyer(deployment, checkout.bid_id)
    ended = await handle.execute_update(
        PaymentSagaWorkflow.cancel_checkout, CancelCheckout(reason="test over")
    )
    assert ended.phase is CheckoutPhase.CANCELED
    assert await intent_status(deployment, checkout.payment_intent_id) == "canceled"
