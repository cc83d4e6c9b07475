"""Temporal's server SIGKILLed mid-checkout and restarted on its database file and ports."""

from __future__ import annotations

import pytest

from devstack.cluster import ClusterOptions
from tests.faults.harness import Harness, assert_reopened, assert_sold

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def cluster_options() -> ClusterOptions:
    # Room for a restart and a payment before the deadline, even on a busy machine.
    return ClusterOptions(payment_timeout_seconds=15)


SUCCEEDED = "payment_intent.succeeded"


async def test_a_checkout_waiting_across_a_restart_sells_when_paid(harness: Harness) -> None:
    checkout = await harness.open_checkout()
    await harness.kill("temporal")
    await harness.start("temporal")

    assert await harness.pay(checkout) == "succeeded"
    verdict = await harness.settled(checkout)
    assert_sold(verdict)
    assert await harness.signals(checkout) == 1  # it sold on the webhook, not by chance


async def test_a_checkout_waiting_across_a_restart_reopens_when_unpaid(harness: Harness) -> None:
    checkout = await harness.open_checkout()
    await harness.kill("temporal")
    await harness.start("temporal")

    assert_reopened(await harness.settled(checkout))


async def test_a_payment_made_while_temporal_is_down_still_sells(harness: Harness) -> None:
    """localstripe's only delivery is refused while Temporal is away, and never retried:
    the saga still finds the money when it asks Stripe at the deadline (or sooner, if a
    scheduled reconciliation tells it that Stripe holds its payment)."""
    checkout = await harness.open_checkout()
    await harness.kill("temporal")
    log_mark = harness.localstripe_log_size()

    assert await harness.pay(checkout) == "succeeded"
    await harness.localstripe_delivery_failed(SUCCEEDED, since=log_mark)
    await harness.start("temporal")

    verdict = await harness.settled(checkout)
    assert_sold(verdict)
    assert await harness.signals(checkout) == 0  # the event was lost: asking Stripe sold it


async def test_a_webhook_refused_while_temporal_is_down_is_taken_on_redelivery(
    harness: Harness,
) -> None:
    # A deadline far away: only the redelivered event can make this sale in time.
    async with harness.payment_window(300):
        checkout = await harness.open_checkout()
        await harness.kill("temporal")
        log_mark = harness.localstripe_log_size()
        assert await harness.pay(checkout) == "succeeded"
        await harness.localstripe_delivery_failed(SUCCEEDED, since=log_mark)
        event = await harness.event_sent_for(checkout, SUCCEEDED)

        refused = await harness.deliver(event)
        assert refused.status_code >= 500, refused.text  # so Stripe delivers it again

        await harness.start("temporal")
        redelivered = await harness.deliver(event)
        assert redelivered.status_code == 200, redelivered.text
        verdict = await harness.settled(checkout, timeout=120)
        assert_sold(verdict)
        assert await harness.signals(checkout) == 1
