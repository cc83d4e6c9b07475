"""Stripe failing for a while, as seen by the worker through the edge proxy: answering 500,
or answering after the worker's Stripe timeout (STRIPE_TIMEOUT_SECONDS) gave up on it.

The buyer, the tests and localstripe's webhooks reach localstripe directly; only the
worker's requests cross the proxy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from devstack.cluster import Cluster, ClusterOptions
from devstack.verdict import Outcome, intents_by_bid, read_intents
from tests.faults.harness import Harness, assert_reopened, assert_sold
from tests.support.edge_proxy import EdgeProxy, Fault
from workflows.types import saga_workflow_id

pytestmark = pytest.mark.faults

STRIPE_TIMEOUT_SECONDS = 2.0
TOO_SLOW_SECONDS = 4.0  # past the worker's timeout: it gives up, Stripe still acts
CREATE = ("POST", "/v1/payment_intents")


@pytest_asyncio.fixture(scope="module")
async def proxy() -> AsyncIterator[EdgeProxy]:
    edge = EdgeProxy(upstream="http://localstripe.invalid")  # aimed once the cluster has ports
    await edge.start()
    yield edge
    await edge.stop()


@pytest.fixture(scope="module")
def cluster_options(proxy: EdgeProxy) -> ClusterOptions:
    return ClusterOptions(
        payment_timeout_seconds=10,
        stripe_timeout_seconds=STRIPE_TIMEOUT_SECONDS,
        worker_stripe_api_base=proxy.url,
    )


@pytest.fixture(autouse=True)
def no_faults_left(proxy: EdgeProxy, cluster: Cluster) -> Iterator[None]:
    proxy.upstream = cluster.localstripe_url
    proxy.faults.clear()
    proxy.seen.clear()
    yield
    proxy.faults.clear()


def create_fault(
    *,
    answer_status: int | None = None,
    forward_anyway: bool = False,
    delay_seconds: float = 0.0,
    remaining: int = 1,
) -> Fault:
    # Only the create: its path ends there, whereas retrieve and cancel go on to the id.
    return Fault(
        *CREATE,
        path_suffix="/payment_intents",
        answer_status=answer_status,
        forward_anyway=forward_anyway,
        delay_seconds=delay_seconds,
        remaining=remaining,
    )


async def intents_opened_for(harness: Harness, bid_id: int) -> list[str]:
    return intents_by_bid(await read_intents(harness.stripe)).get(bid_id, [])


async def strays_carry_our_key(harness: Harness, bid_id: int, sold: str) -> None:
    """Any other intent for this bid was made with the sold one's idempotency key: at Stripe,
    which answers a key with its first intent, it is the same intent. localstripe ignores keys
    and makes a second, whose client secret was never handed out."""
    key = f"{saga_workflow_id(bid_id)}-payment-intent"
    for intent_id, intent in (await read_intents(harness.stripe)).items():
        metadata = intent.get("metadata") or {}
        if metadata.get("bid_id") == str(bid_id) and intent_id != sold:
            assert metadata.get("idempotency_key") == key


async def test_stripe_answering_500_on_create_for_a_while_still_sells(
    harness: Harness, proxy: EdgeProxy
) -> None:
    proxy.faults.append(create_fault(answer_status=500, remaining=3))
    checkout = await harness.open_checkout()

    creates = proxy.requests_to(*CREATE)
    key = f"{saga_workflow_id(checkout.bid_id)}-payment-intent"
    # Stripe replays a 5xx its endpoint answered for the key: each retry sends the next one.
    assert [seen.idempotency_key for seen in creates] == [key, f"{key}-1", f"{key}-2", f"{key}-3"]
    assert await harness.pay(checkout) == "succeeded"
    assert_sold(await harness.settled(checkout))
    assert await intents_opened_for(harness, checkout.bid_id) == [checkout.payment_intent_id]


async def test_stripe_answering_500_at_the_deadline_for_a_while_still_reopens(
    harness: Harness, proxy: EdgeProxy
) -> None:
    checkout = await harness.open_checkout()
    intent_path = f"/v1/payment_intents/{checkout.payment_intent_id}"
    proxy.faults += [
        Fault("GET", intent_path, answer_status=500, remaining=2),
        Fault("POST", intent_path, path_suffix="/cancel", answer_status=503, remaining=2),
    ]

    assert_reopened(await harness.settled(checkout))
    assert len(proxy.requests_to("POST", f"{intent_path}/cancel")) >= 3


async def test_stripe_answering_500_after_creating_the_intent_leaves_no_second_one_open(
    harness: Harness, proxy: EdgeProxy
) -> None:
    """Stripe created the intent but answered 500: the retry finds that intent by its key."""
    proxy.faults.append(create_fault(answer_status=500, forward_anyway=True, remaining=1))
    checkout = await harness.open_checkout()
    assert len(proxy.requests_to(*CREATE)) == 1  # the retry created nothing

    assert await harness.pay(checkout) == "succeeded"
    assert_sold(await harness.settled(checkout))
    assert await intents_opened_for(harness, checkout.bid_id) == [checkout.payment_intent_id]


async def test_stripe_too_slow_on_create_still_sells_the_intent_the_buyer_got(
    harness: Harness, proxy: EdgeProxy
) -> None:
    proxy.faults.append(create_fault(delay_seconds=TOO_SLOW_SECONDS, remaining=1))
    checkout = await harness.open_checkout()

    creates = proxy.requests_to(*CREATE)
    assert len(creates) == 2  # the first timed out, the retry answered
    assert len({seen.idempotency_key for seen in creates}) == 1
    assert await harness.pay(checkout) == "succeeded"
    verdict = await harness.settled(checkout)
    assert verdict.outcome is Outcome.SOLD
    # Only the emulator's second intent (see `strays_carry_our_key`) may stand beside it.
    assert [p for p in verdict.problems if not p.startswith("a second PaymentIntent")] == []
    await strays_carry_our_key(harness, checkout.bid_id, checkout.payment_intent_id)


async def test_stripe_too_slow_at_the_deadline_still_reopens(
    harness: Harness, proxy: EdgeProxy
) -> None:
    checkout = await harness.open_checkout()
    cancel_path = f"/v1/payment_intents/{checkout.payment_intent_id}/cancel"
    proxy.faults.append(Fault("POST", cancel_path, delay_seconds=TOO_SLOW_SECONDS, remaining=2))

    assert_reopened(await harness.settled(checkout))
    assert len(proxy.requests_to("POST", cancel_path)) >= 2
