"""Stripe's deliveries as they really come: twice, ten at once, out of order, after the end,
for intents that are not ours, of types we do not use. Each is answered 2xx (so Stripe stops
retrying) and the checkout still has one outcome.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devstack.auction_client import OpenCheckout
from devstack.pay import attempt_payment, fail_3d_secure
from devstack.stripe_events import event_body
from devstack.verdict import Outcome
from tests.faults.harness import Harness, assert_reopened, assert_sold

pytestmark = pytest.mark.faults

SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"


async def delivered_ok(harness: Harness, body: dict[str, Any]) -> None:
    answer = await harness.deliver(body)
    assert answer.status_code == 200, answer.text


async def all_sagas(harness: Harness) -> int:
    return (await harness.temporal.count_workflows()).count


async def unchanged(harness: Harness, checkout: OpenCheckout, run_id: str | None) -> None:
    """The checkout's saga is the same run as before, and no Stripe event reached it."""
    described = await harness.saga(checkout).describe()
    assert described.run_id == run_id
    assert await harness.signals(checkout) == 0


async def test_one_success_delivered_again_and_again_sells_once(harness: Harness) -> None:
    checkout = await harness.open_checkout()
    assert await harness.pay(checkout) == "succeeded"
    event = await harness.event_sent_for(checkout, SUCCEEDED)

    for _ in range(5):
        await delivered_ok(harness, event)
    assert_sold(await harness.settled(checkout))
    await delivered_ok(harness, event)  # Stripe retrying after the sale
    assert await harness.activities_scheduled(checkout, "complete_sale") == 1


async def test_ten_copies_at_once_sell_once(harness: Harness) -> None:
    checkout = await harness.open_checkout()
    assert await harness.pay(checkout) == "succeeded"
    # localstripe holds its event a second before sending it: these copies race it.
    event = await harness.event_sent_for(checkout, SUCCEEDED)

    answers = await asyncio.gather(*(harness.deliver(event) for _ in range(10)))
    assert [answer.status_code for answer in answers] == [200] * 10
    assert_sold(await harness.settled(checkout))
    assert await harness.activities_scheduled(checkout, "complete_sale") == 1


async def test_a_decline_delivered_after_the_success_leaves_the_sale_standing(
    harness: Harness,
) -> None:
    checkout = await harness.open_checkout()
    # The first attempt fails 3-D Secure; Stripe's payment_failed event is held back.
    failed = await fail_3d_secure(
        harness.stripe, harness.cluster.localstripe_url, checkout.payment_intent_id
    )
    assert failed == "requires_payment_method"
    decline = await event_body(harness.stripe, checkout.payment_intent_id, FAILED)
    await harness.kill("worker")  # both events wait for the saga, in the wrong order
    assert await harness.pay(checkout) == "succeeded"
    await harness.signaled(checkout)

    await delivered_ok(harness, decline)
    await harness.signaled(checkout, 2)
    await harness.start("worker")

    # Whether the saga looks at the stale decline or not, the payment ends succeeded.
    assert_sold(await harness.settled(checkout))


async def test_events_after_the_checkout_ended_change_nothing(harness: Harness) -> None:
    unpaid = await harness.open_checkout()
    assert_reopened(await harness.settled(unpaid))
    paid = await harness.open_checkout()
    assert await harness.pay(paid) == "succeeded"
    assert_sold(await harness.settled(paid))
    runs = {
        checkout.bid_id: (await harness.saga(checkout).describe()).run_id
        for checkout in (unpaid, paid)
    }

    late_decline = await event_body(harness.stripe, unpaid.payment_intent_id, FAILED)
    await delivered_ok(harness, late_decline)
    await delivered_ok(harness, await harness.event_sent_for(paid, SUCCEEDED))
    await delivered_ok(harness, await event_body(harness.stripe, paid.payment_intent_id, FAILED))

    assert_reopened(await harness.verdict(unpaid.bid_id))
    assert_sold(await harness.verdict(paid.bid_id))
    for checkout in (unpaid, paid):
        assert (await harness.saga(checkout).describe()).run_id == runs[checkout.bid_id]


async def test_events_for_intents_that_are_not_ours_change_nothing(harness: Harness) -> None:
    waiting = await harness.open_checkout()
    run_id = (await harness.saga(waiting).describe()).run_id
    sagas_before = await all_sagas(harness)
    # An intent someone else opened on the same Stripe account, paid, and one claiming a
    # bid that does not exist.
    stranger = await harness.stripe.v1.payment_intents.create_async(
        params={"amount": 5000, "currency": "usd", "payment_method_types": ["card"]}  # type: ignore[typeddict-unknown-key]
    )
    claiming = await harness.stripe.v1.payment_intents.create_async(
        params={
            "amount": 5000,
            "currency": "usd",
            "payment_method_types": ["card"],  # type: ignore[typeddict-unknown-key]
            "metadata": {"bid_id": "987654321"},
        }
    )
    status, _ = await attempt_payment(harness.stripe, stranger.id)
    assert status == "succeeded"  # localstripe's own webhook for it reaches the API too

    for intent_id, kind in [(stranger.id, SUCCEEDED), (claiming.id, FAILED)]:
        answer = await harness.deliver(await event_body(harness.stripe, intent_id, kind))
        assert answer.status_code == 200, answer.text
        assert answer.json()["handled"] is False

    assert await all_sagas(harness) == sagas_before
    await unchanged(harness, waiting, run_id)
    assert (await harness.verdict(waiting.bid_id)).outcome is Outcome.UNDECIDED


async def test_events_of_types_the_saga_does_not_use_change_nothing(harness: Harness) -> None:
    checkout = await harness.open_checkout()
    run_id = (await harness.saga(checkout).describe()).run_id
    for kind in ("payment_intent.created", "payment_intent.requires_action", "charge.refunded"):
        body = await event_body(harness.stripe, checkout.payment_intent_id, kind)
        answer = await harness.deliver(body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["handled"] is False

    await unchanged(harness, checkout, run_id)
    assert (await harness.verdict(checkout.bid_id)).outcome is Outcome.UNDECIDED
    assert_reopened(await harness.settled(checkout))  # and the deadline still ends it
