"""The worker SIGKILLed while a checkout waits: Temporal keeps the saga, a new worker ends it."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.harness import Harness, assert_reopened, assert_sold
from tests.support.polling import eventually

pytestmark = pytest.mark.faults


async def past_deadline(expires_at_epoch: float) -> None:
    """Waits out the buyer's window (bounded: the windows here are seconds long)."""
    await eventually(
        lambda: asyncio.sleep(0, time.time()),
        lambda now: now > expires_at_epoch + 1,
        timeout=60,
        interval=0.5,
        what="the payment deadline passed",
    )


async def test_a_payment_made_while_the_worker_is_dead_sells_once_it_is_back(
    harness: Harness,
) -> None:
    checkout = await harness.open_checkout()
    await harness.kill("worker")

    assert await harness.pay(checkout) == "succeeded"
    # localstripe's webhook reaches the API, which hands it to Temporal: nobody acts on it yet.
    await harness.signaled(checkout)
    waiting = await harness.verdict(checkout.bid_id)
    assert waiting.rows is not None and waiting.rows.artwork_status == "pending_payment"

    await harness.start("worker")
    verdict = await harness.settled(checkout)
    assert_sold(verdict)
    assert await harness.activities_scheduled(checkout, "complete_sale") == 1


async def test_a_worker_dead_across_the_deadline_reopens_once_it_is_back(
    harness: Harness,
) -> None:
    checkout = await harness.open_checkout()
    await harness.kill("worker")
    await past_deadline(checkout.expires_at.timestamp())

    # Nobody canceled anything while the worker was away.
    intent = await harness.stripe.v1.payment_intents.retrieve_async(checkout.payment_intent_id)
    assert intent.status == "requires_payment_method"

    await harness.start("worker")
    assert_reopened(await harness.settled(checkout))


async def test_money_landing_after_the_deadline_while_the_worker_is_dead_still_sells(
    harness: Harness,
) -> None:
    """The deadline fired unseen; the buyer paid late. Stripe has the money: it is a sale."""
    checkout = await harness.open_checkout()
    await harness.kill("worker")
    await past_deadline(checkout.expires_at.timestamp())

    assert await harness.pay(checkout) == "succeeded"
    await harness.signaled(checkout)
    await harness.start("worker")
    assert_sold(await harness.settled(checkout))
