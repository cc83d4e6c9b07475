"""What each checkout of a load run does after the auction closed, and how it must end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import stripe
from temporalio.client import Client

from devstack.auction_client import AuctionClient, OpenCheckout
from devstack.pay import VISA, attempt_payment, fail_3d_secure
from devstack.stripe_events import deliver, event_body, sent_event
from devstack.verdict import Outcome
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.types import CancelCheckout, saga_workflow_id

SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"


class Scenario(StrEnum):
    PAID = "paid"
    DECLINED_THEN_PAID = "declined_then_paid"
    NEVER_PAID = "never_paid"
    OPERATOR_CANCELED = "operator_canceled"
    DUPLICATE_DELIVERIES = "duplicate_deliveries"


# The outcome and the payment's final status each scenario must end with.
EXPECTED: dict[Scenario, tuple[Outcome, str]] = {
    Scenario.PAID: (Outcome.SOLD, "succeeded"),
    Scenario.DECLINED_THEN_PAID: (Outcome.SOLD, "succeeded"),
    Scenario.NEVER_PAID: (Outcome.REOPENED, "expired"),
    Scenario.OPERATOR_CANCELED: (Outcome.REOPENED, "canceled"),
    Scenario.DUPLICATE_DELIVERIES: (Outcome.SOLD, "succeeded"),
}

# Twenty slots, repeated: every stretch of a run mixes all scenarios.
MIX = (
    (Scenario.PAID,) * 8
    + (Scenario.DECLINED_THEN_PAID,) * 3
    + (Scenario.NEVER_PAID,) * 4
    + (Scenario.OPERATOR_CANCELED,) * 2
    + (Scenario.DUPLICATE_DELIVERIES,) * 3
)
# (currency, starting price, winning bid): two-decimal, zero-decimal and another two-decimal
# currency, so amounts cross minor units differently.
PRICES = (("usd", "150.00", "180.00"), ("jpy", "12000", "15500"), ("eur", "99.90", "120.55"))
# Copies of the success event Stripe "retries": some at once, one after the others.
DUPLICATE_COPIES = 3


def plan(checkouts: int) -> list[Scenario]:
    interleaved = [MIX[(i * 7) % len(MIX)] for i in range(len(MIX))]  # 7 is prime to 20
    return [interleaved[i % len(interleaved)] for i in range(checkouts)]


@dataclass
class Tools:
    """What a load run drives checkouts with: the people, Stripe and an operator."""

    api: AuctionClient
    stripe: stripe.StripeClient
    localstripe_url: str
    temporal: Client
    webhook_secret: str
    # (when, seconds) of each buyer's payment at Stripe, to see localstripe slow down.
    payment_latency: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Checkout:
    index: int
    scenario: Scenario
    opened: OpenCheckout | None = None
    error: str | None = None
    deliveries: list[int] = field(default_factory=list)  # status codes of our redeliveries
    open_seconds: float = 0.0


async def drive(tools: Tools, index: int, scenario: Scenario) -> Checkout:
    """Opens a checkout through the API and plays the scenario; never raises."""
    checkout = Checkout(index, scenario)
    currency, price, bid = PRICES[index % len(PRICES)]
    try:
        started = time.monotonic()
        checkout.opened = await tools.api.close_on_one_bid(price, bid, currency)
        checkout.open_seconds = time.monotonic() - started
        await STEPS[scenario](tools, checkout, checkout.opened)
    except Exception as failed:  # reported as a violation, with what it was doing
        checkout.error = f"{type(failed).__name__}: {failed}"
    return checkout


async def _pay(tools: Tools, opened: OpenCheckout) -> None:
    started = time.monotonic()
    status, declined = await attempt_payment(tools.stripe, opened.payment_intent_id, VISA)
    tools.payment_latency.append((started, time.monotonic() - started))
    if status != "succeeded":
        raise RuntimeError(f"the buyer's payment is {status} ({declined})")


async def _paid(tools: Tools, checkout: Checkout, opened: OpenCheckout) -> None:
    await _pay(tools, opened)


async def _declined_then_paid(tools: Tools, checkout: Checkout, opened: OpenCheckout) -> None:
    status = await fail_3d_secure(tools.stripe, tools.localstripe_url, opened.payment_intent_id)
    if status != "requires_payment_method":
        raise RuntimeError(f"after a failed 3-D Secure the intent is {status}")
    # localstripe sends nothing for it; Stripe would send this, built from the same state.
    body = await event_body(tools.stripe, opened.payment_intent_id, FAILED)
    checkout.deliveries.append(
        (await deliver(tools.api.http, body, tools.webhook_secret)).status_code
    )
    await _pay(tools, opened)


async def _never_paid(tools: Tools, checkout: Checkout, opened: OpenCheckout) -> None:
    """The buyer walks away: the deadline reopens bidding."""


async def _operator_canceled(tools: Tools, checkout: Checkout, opened: OpenCheckout) -> None:
    handle = tools.temporal.get_workflow_handle_for(
        PaymentSagaWorkflow.run, saga_workflow_id(opened.bid_id)
    )
    await handle.execute_update(
        PaymentSagaWorkflow.cancel_checkout,
        CancelCheckout(reason="withdrawn by the seller (load run)", requested_by="load-operator"),
    )


async def _duplicate_deliveries(tools: Tools, checkout: Checkout, opened: OpenCheckout) -> None:
    since = int(time.time()) - 1
    await _pay(tools, opened)
    event = await _sent_by_stripe(tools, opened.payment_intent_id, since)
    at_once = [
        deliver(tools.api.http, event, tools.webhook_secret) for _ in range(DUPLICATE_COPIES)
    ]
    answers = await asyncio.gather(*at_once)
    answers.append(await deliver(tools.api.http, event, tools.webhook_secret))
    checkout.deliveries += [answer.status_code for answer in answers]


async def _sent_by_stripe(tools: Tools, intent_id: str, since: int) -> dict[str, Any]:
    """localstripe's own success event (made when the payment succeeded, sent 1 s later)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        event = await sent_event(tools.stripe, intent_id, SUCCEEDED, since)
        if event is not None:
            return event
        await asyncio.sleep(0.2)
    raise RuntimeError(f"localstripe made no {SUCCEEDED} event for {intent_id} in 30 s")


Step = Callable[[Tools, Checkout, OpenCheckout], Awaitable[None]]
STEPS: dict[Scenario, Step] = {
    Scenario.PAID: _paid,
    Scenario.DECLINED_THEN_PAID: _declined_then_paid,
    Scenario.NEVER_PAID: _never_paid,
    Scenario.OPERATOR_CANCELED: _operator_canceled,
    Scenario.DUPLICATE_DELIVERIES: _duplicate_deliveries,
}
