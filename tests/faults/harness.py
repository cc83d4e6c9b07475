"""The fault tests' hands and eyes on a running cluster.

Hands: break a part (SIGKILL, crash) and bring it back, pay as the buyer, deliver Stripe's
events again. Eyes: the verdict on a checkout (database, Stripe and Temporal together), the
saga's history and its pending activities. Starting and stopping processes blocks, so it
runs in a thread: the edge proxy lives on this event loop and must keep answering.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import stripe
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle

from activities.reconcile_repairs import NOTICE_EVENT_PREFIX
from devstack.auction_client import AuctionClient, OpenCheckout
from devstack.cluster import PARTS, Cluster
from devstack.pay import VISA, attempt_payment
from devstack.processes import log_contains, log_size
from devstack.stripe_events import deliver, sent_event
from devstack.verdict import (
    Outcome,
    Verdict,
    intents_by_bid,
    judge,
    read_intents,
    read_rows,
    read_saga,
)
from infra.db import SessionFactory
from tests.support.polling import eventually
from workflows.types import StripeEventSignal, saga_workflow_id

# Bounds on waiting for the service: generous, since two other test runs share these cores.
SETTLE_SECONDS = 90.0


@dataclass
class Harness:
    cluster: Cluster
    api: AuctionClient
    stripe: stripe.StripeClient
    temporal: Client
    sessions: SessionFactory

    # Breaking and mending parts.

    async def kill(self, part: str) -> None:
        await asyncio.to_thread(self.cluster.kill_part, part)

    async def start(self, part: str) -> None:
        await asyncio.to_thread(self.cluster.start_part, part)

    async def crash_database(self) -> None:
        await asyncio.to_thread(self.cluster.crash_database)

    async def start_database(self) -> None:
        await asyncio.to_thread(self.cluster.start_database_again)

    async def mend(self) -> None:
        """Every part running again, whatever a test left broken."""
        if self.cluster.owns_database:
            await self.start_database()
        for part in PARTS:
            await self.start(part)

    @asynccontextmanager
    async def payment_window(self, seconds: int) -> AsyncIterator[None]:
        """Checkouts opened inside give the buyer `seconds` to pay (the API is restarted)."""
        before = self.cluster.options.payment_timeout_seconds
        await asyncio.to_thread(self.cluster.reconfigure, payment_timeout_seconds=seconds)
        try:
            yield
        finally:
            await self.mend()
            await asyncio.to_thread(self.cluster.reconfigure, payment_timeout_seconds=before)

    # The people.

    async def open_checkout(self, price: str = "1000.00", bid: str = "1200.00") -> OpenCheckout:
        return await self.api.close_on_one_bid(price, bid)

    async def pay(self, checkout: OpenCheckout, card: str = VISA) -> str:
        status, _ = await attempt_payment(self.stripe, checkout.payment_intent_id, card)
        return status

    # Stripe's deliveries.

    async def deliver(self, body: dict[str, Any]) -> httpx.Response:
        return await deliver(self.api.http, body, self.cluster.webhook_secret)

    async def event_sent_for(self, checkout: OpenCheckout, event_type: str) -> dict[str, Any]:
        """The event localstripe itself made for this checkout's intent (to deliver again)."""

        async def sent() -> dict[str, Any] | None:
            return await sent_event(self.stripe, checkout.payment_intent_id, event_type)

        found = await eventually(sent, lambda e: e is not None, what=f"{event_type} at Stripe")
        assert found is not None
        return found

    async def localstripe_delivery_failed(self, event_type: str, since: int) -> None:
        """Waits until localstripe logs that the API refused its delivery (it never retries)."""
        line = f'webhook "{event_type}" failed'.encode()
        log = self.cluster.log_of("localstripe")
        await eventually(
            lambda: asyncio.sleep(0, log_contains(log, since, line)),
            bool,
            timeout=60,
            interval=0.25,
            what=f"localstripe's delivery of {event_type} refused",
        )

    def localstripe_log_size(self) -> int:
        return log_size(self.cluster.log_of("localstripe"))

    # Looking.

    async def verdict(self, bid_id: int) -> Verdict:
        saga = await read_saga(self.temporal, bid_id)  # first: see devstack.verdict
        rows = (await read_rows(self.sessions, [bid_id])).get(bid_id)
        intents = await read_intents(self.stripe)
        opened = intents_by_bid(intents).get(bid_id, [])
        return judge(bid_id, rows, intents, saga, opened)

    async def settled(
        self,
        checkout: OpenCheckout,
        timeout: float = SETTLE_SECONDS,  # noqa: ASYNC109 (a bound on polling)
    ) -> Verdict:
        return await eventually(
            lambda: self.verdict(checkout.bid_id),
            lambda verdict: verdict.settled,
            timeout=timeout,
            interval=0.25,
            what=f"checkout of bid {checkout.bid_id} settled",
        )

    def saga(self, checkout: OpenCheckout) -> WorkflowHandle[Any, Any]:
        return self.temporal.get_workflow_handle(saga_workflow_id(checkout.bid_id))

    async def history(self, checkout: OpenCheckout) -> list[Any]:
        return [event async for event in self.saga(checkout).fetch_history_events()]

    async def signals(self, checkout: OpenCheckout) -> int:
        """The Stripe events the saga received. A scheduled reconciliation may also tell it
        that Stripe holds its payment: that signal is not one of Stripe's events."""
        history = await self.history(checkout)
        signaled = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        senders = [
            await self._signal_event_id(event) for event in history if event.event_type == signaled
        ]
        return sum(not sender.startswith(NOTICE_EVENT_PREFIX) for sender in senders)

    async def _signal_event_id(self, event: HistoryEvent) -> str:
        """The Stripe event id a signal carries, read through the cluster's payload codec."""
        payloads = event.workflow_execution_signaled_event_attributes.input.payloads
        if not payloads:
            return ""
        (signal,) = await self.temporal.data_converter.decode(payloads[:1], [StripeEventSignal])
        return str(getattr(signal, "event_id", ""))

    async def activities_scheduled(self, checkout: OpenCheckout, name: str) -> int:
        scheduled = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        return sum(
            event.event_type == scheduled
            and event.activity_task_scheduled_event_attributes.activity_type.name == name
            for event in await self.history(checkout)
        )

    async def signaled(self, checkout: OpenCheckout, count: int = 1) -> None:
        await eventually(
            lambda: self.signals(checkout),
            lambda seen: seen >= count,
            timeout=30,
            interval=0.2,
            what=f"{count} Stripe event(s) accepted by the saga of bid {checkout.bid_id}",
        )

    async def retried_activity(self, checkout: OpenCheckout) -> str | None:
        """The name of a pending activity of the saga that is past its first attempt."""
        described = await self.saga(checkout).describe()
        for pending in described.raw_description.pending_activities:
            if pending.attempt >= 2:
                return str(pending.activity_type.name)
        return None

    async def retrying(self, checkout: OpenCheckout) -> str:
        """Waits until the saga retries a step (its first attempt failed); returns its name."""
        retried = await eventually(
            lambda: self.retried_activity(checkout),
            lambda name: name is not None,
            timeout=60,
            interval=0.25,
            what=f"a step retried by the saga of bid {checkout.bid_id}",
        )
        assert retried is not None
        return retried


def assert_sold(verdict: Verdict) -> None:
    assert verdict.outcome is Outcome.SOLD and verdict.ok, f"expected sold: {verdict}"


def assert_reopened(verdict: Verdict, payment_status: str = "expired") -> None:
    assert verdict.outcome is Outcome.REOPENED and verdict.ok, f"expected reopened: {verdict}"
    assert verdict.rows is not None and verdict.rows.payment_status == payment_status, verdict
    assert verdict.rows.artwork_status == "active", verdict
