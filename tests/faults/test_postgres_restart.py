"""PostgreSQL crashing mid-checkout (`pg_ctl stop -m immediate`) and coming back on the same
data: writes that failed are retried, a webhook the API could not take is taken again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.faults.harness import Harness, assert_reopened, assert_sold

pytestmark = pytest.mark.faults

SUCCEEDED = "payment_intent.succeeded"


@pytest_asyncio.fixture(autouse=True)
async def our_own_database(harness: Harness) -> AsyncIterator[None]:
    if not harness.cluster.owns_database:
        pytest.skip("PostgreSQL comes from DATABASE_URL: these tests crash their own server")
    yield


async def test_a_sale_due_while_the_database_is_down_lands_once_it_is_back(
    harness: Harness,
) -> None:
    checkout = await harness.open_checkout()
    await harness.kill("worker")  # holds the sale back until the database is down
    assert await harness.pay(checkout) == "succeeded"
    await harness.signaled(checkout)

    await harness.crash_database()
    await harness.start("worker")
    await harness.retrying(checkout)  # recording the sale fails until PostgreSQL is back
    await harness.start_database()

    verdict = await harness.settled(checkout)
    assert_sold(verdict)
    assert await harness.activities_scheduled(checkout, "complete_sale") == 1


async def test_a_deadline_passing_while_the_database_is_down_reopens_once_it_is_back(
    harness: Harness,
) -> None:
    checkout = await harness.open_checkout()
    await harness.crash_database()
    # At the deadline Stripe cancels the intent; writing that down fails until PostgreSQL
    # returns.
    await harness.retrying(checkout)
    await harness.start_database()

    assert_reopened(await harness.settled(checkout))


async def test_a_webhook_refused_while_the_database_is_down_is_taken_on_redelivery(
    harness: Harness,
) -> None:
    async with harness.payment_window(300):  # only the redelivery can sell it in time
        checkout = await harness.open_checkout()
        await harness.crash_database()
        log_mark = harness.localstripe_log_size()
        assert await harness.pay(checkout) == "succeeded"
        await harness.localstripe_delivery_failed(SUCCEEDED, since=log_mark)
        event = await harness.event_sent_for(checkout, SUCCEEDED)

        refused = await harness.deliver(event)
        assert refused.status_code >= 500, refused.text  # so Stripe delivers it again

        await harness.start_database()
        redelivered = await harness.deliver(event)
        assert redelivered.status_code == 200, redelivered.text
        verdict = await harness.settled(checkout, timeout=120)
        assert_sold(verdict)
        assert await harness.signals(checkout) == 1
