"""The project's localstripe (devstack/localstripe_server.py) takes another card after a
declined charge, as Stripe does, through the official SDK; stock localstripe still refuses it.

If the second test fails, a localstripe release closed the gap itself and the launcher's patch
can go; if the first fails, a release changed what the patch relies on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import stripe

from devstack.processes import (
    Service,
    free_port,
    port_open,
    ready_or_stopped,
    spawn,
    start_localstripe,
    tool,
    wait_until,
)
from devstack.stripe_events import sent_event
from infra.settings import Settings
from infra.stripe_api import connect_stripe

DECLINED_WHEN_CHARGED = "pm_card_chargeCustomerFail"
VISA = "pm_card_visa"
# Where stock localstripe pickles its whole store on every write.
STATE_FILE = Path("/tmp/localstripe.pickle")  # noqa: S108 (its path, fixed in localstripe)


@pytest.fixture(scope="module")
def ours() -> Iterator[Service]:
    service = start_localstripe(free_port())
    yield service
    service.stop()


@pytest.fixture(scope="module")
def stock() -> Iterator[Service]:
    port = free_port()
    command = [tool("localstripe"), "--port", str(port), "--from-scratch"]
    service = spawn("localstripe-stock", command, f"http://localhost:{port}", None)
    ready_or_stopped(
        service, lambda: wait_until(lambda: port_open(port), "localstripe", 20, service.process)
    )
    yield service
    service.stop()


async def client_of(service: Service) -> AsyncIterator[stripe.StripeClient]:
    settings = Settings(
        stripe_api_base=service.url,
        stripe_secret_key=Settings.model_fields["stripe_secret_key"].default,
    )
    connection = connect_stripe(settings)
    yield connection.client
    await connection.aclose()


@pytest_asyncio.fixture
async def our_stripe(ours: Service) -> AsyncIterator[stripe.StripeClient]:
    async for client in client_of(ours):
        yield client


@pytest_asyncio.fixture
async def stock_stripe(stock: Service) -> AsyncIterator[stripe.StripeClient]:
    async for client in client_of(stock):
        yield client


async def declined_intent(client: stripe.StripeClient) -> str:
    """A PaymentIntent whose first charge was declined, as a buyer's bad card leaves it."""
    intents = client.v1.payment_intents
    intent = await intents.create_async(
        params={
            "amount": 12_345,
            "currency": "usd",
            # The pinned API version still takes it; the SDK's types no longer list it.
            "payment_method_types": ["card"],  # type: ignore[typeddict-unknown-key]
        }
    )
    await intents.update_async(intent.id, params={"payment_method": DECLINED_WHEN_CHARGED})
    with pytest.raises(stripe.CardError) as declined:
        await intents.confirm_async(intent.id)
    assert declined.value.code == "card_declined"
    after = await intents.retrieve_async(intent.id)
    assert after.status == "requires_payment_method"
    assert after.to_dict()["last_payment_error"]["code"] == "card_declined"
    return intent.id


async def test_after_a_decline_another_card_is_set_confirmed_and_succeeds(
    our_stripe: stripe.StripeClient,
) -> None:
    intents = our_stripe.v1.payment_intents
    intent_id = await declined_intent(our_stripe)
    updated = await intents.update_async(intent_id, params={"payment_method": VISA})
    assert updated.status == "requires_confirmation"
    confirmed = await intents.confirm_async(intent_id)
    assert confirmed.status == "succeeded"
    assert confirmed.amount == 12_345
    # The decline's event was built when it happened: it still says why.
    failed = await sent_event(our_stripe, intent_id, "payment_intent.payment_failed")
    assert failed is not None
    assert failed["data"]["object"]["last_payment_error"]["code"] == "card_declined"


async def test_stock_localstripe_still_refuses_a_second_card_after_a_decline(
    stock_stripe: stripe.StripeClient,
) -> None:
    intents = stock_stripe.v1.payment_intents
    intent_id = await declined_intent(stock_stripe)
    updated = await intents.update_async(intent_id, params={"payment_method": VISA})
    assert updated.status == "requires_payment_method"
    with pytest.raises(stripe.InvalidRequestError):
        await intents.confirm_async(intent_id)


def _state_file_stamp() -> int | None:
    try:
        return STATE_FILE.stat().st_mtime_ns
    except FileNotFoundError:
        return None


async def test_writes_keep_the_store_in_memory_without_rewriting_the_state_file(
    our_stripe: stripe.StripeClient,
) -> None:
    before = _state_file_stamp()
    intent = await our_stripe.v1.payment_intents.create_async(
        params={"amount": 2_000, "currency": "eur"}
    )
    await our_stripe.v1.payment_intents.update_async(
        intent.id, params={"metadata": {"bid_id": "7"}}
    )
    found = await our_stripe.v1.payment_intents.retrieve_async(intent.id)
    assert found.metadata["bid_id"] == "7"  # kept, and found again
    assert _state_file_stamp() == before
