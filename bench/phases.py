"""The benchmark's phases, each timed on the same stack in the same run.

Every checkout goes through the HTTP API as people do; Stripe's webhooks are signed and
posted by the benchmark (localstripe's own deliveries are off), as Stripe would post them.
The twin is driven the same way: started with the update the close uses, paid through the
bare webhook endpoint.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import stripe
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from bench.driver import Timed, run_many
from bench.stack import DRIVER, BenchStack
from bench.temporal_requests import handled_between, read_requests
from bench.twin import twin_workflow_id
from bench.usage import PartUsage, cpu_spent, snapshot
from devstack.auction_client import Auction, AuctionClient, OpenCheckout
from devstack.pay import VISA, attempt_payment
from devstack.stripe_events import deliver, event_body
from infra.db import asyncpg_dsn
from infra.settings import Settings
from infra.tables import Artwork, Bid
from workflows.search_attributes import start_attributes
from workflows.starts import saga_input, saga_summary
from workflows.types import (
    AwaitCheckout,
    AwaitedStage,
    CheckoutPhase,
    CheckoutStatus,
    PaymentSagaInput,
    saga_workflow_id,
)

SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"
PRICE, WINNING_BID, CURRENCY = "150.00", "180.00", "usd"
# The stack counts as idle below this many cores busy over a window.
QUIET_CORES, QUIET_WINDOW_SECONDS, QUIET_WAIT_SECONDS = 0.1, 0.5, 20.0
# Backends report their counters to pg_stat_database at most this often (PostgreSQL 15+).
STATS_FLUSH_SECONDS = 1.1


@dataclass
class Measured:
    """A phase's timings, the CPU seconds each process spent during it, and the transactions
    PostgreSQL counted (`xact_commit`, `xact_rollback` of pg_stat_database)."""

    timed: Timed
    cpu: dict[str, float]
    transactions: dict[str, int] = field(default_factory=dict)
    temporal_requests: dict[str, int] = field(default_factory=dict)  # by operation


@dataclass
class Bench:
    stack: BenchStack
    api: AuctionClient
    bare: httpx.AsyncClient
    temporal: Client
    stripe: stripe.StripeClient
    # What the phases leave for the next ones.
    sold_events: list[dict[str, Any]] = field(default_factory=list)
    waiting: list[OpenCheckout] = field(default_factory=list)
    _next_twin: int = 0

    @property
    def secret(self) -> str:
        return self.stack.cluster.webhook_secret

    @functools.cached_property
    def settings(self) -> Settings:
        return self.stack.cluster.settings()

    def usage(self) -> dict[str, PartUsage]:
        return snapshot(self.stack.pids(), alone=frozenset({DRIVER}))

    def twin_numbers(self, count: int) -> range:
        numbers = range(self._next_twin, self._next_twin + count)
        self._next_twin += count
        return numbers

    async def quiesce(self) -> None:
        """Waits until the stack is idle (what the last phase left, such as its emails, is
        done), so each phase's CPU is its own; at most QUIET_WAIT_SECONDS."""
        deadline = time.monotonic() + QUIET_WAIT_SECONDS
        while time.monotonic() < deadline:
            before = self.usage()
            await asyncio.sleep(QUIET_WINDOW_SECONDS)
            busy = sum(cpu_spent(before, self.usage()).values()) / QUIET_WINDOW_SECONDS
            if busy < QUIET_CORES:
                return

    async def measure(self, timing: Coroutine[Any, Any, Timed]) -> Measured:
        try:
            await self.quiesce()
            metrics = self.stack.cluster.temporal_metrics_url
            requested = await read_requests(metrics)
            before, committed = self.usage(), await self._transactions()
        except BaseException:
            timing.close()  # interrupted before it started: not left "never awaited"
            raise
        timed = await timing
        cpu = cpu_spent(before, self.usage())
        await asyncio.sleep(STATS_FLUSH_SECONDS)
        after = await self._transactions()
        transactions = {kind: after[kind] - committed[kind] for kind in after}
        handled = handled_between(requested, await read_requests(metrics))
        return Measured(timed, cpu, transactions, handled)

    async def _transactions(self) -> dict[str, int]:
        connection = await asyncpg.connect(asyncpg_dsn(self.stack.cluster.database_url))
        try:
            row = await connection.fetchrow(
                "SELECT xact_commit, xact_rollback FROM pg_stat_database"
                " WHERE datname = current_database()"
            )
        finally:
            await connection.close()
        assert row is not None
        # Less this very connection's own transaction, counted when it ends.
        return {"commits": int(row["xact_commit"]), "rollbacks": int(row["xact_rollback"])}


def _expect(response: httpx.Response, what: str) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"{what}: HTTP {response.status_code} {response.text[:200]}")


def _expect_sold(status: CheckoutStatus, who: str) -> None:
    if status.phase is not CheckoutPhase.SOLD:
        raise RuntimeError(f"{who} ended {status.phase}, not sold")


# The twin.


def twin_input(number: int, settings: Settings) -> PaymentSagaInput:
    """The twin's input, made as the API makes the saga's from a bid and its artwork, with the
    stack's settings: the same fees and the same buyer's window."""
    artwork = Artwork(
        id=number, seller_id=number, title="Twin", starting_price=Decimal(PRICE), currency=CURRENCY
    )
    bid = Bid(id=number, artwork_id=number, bidder_id=number, amount=Decimal(WINNING_BID))
    return saga_input(bid, artwork, settings)


def twin_event(number: int, event_type: str) -> dict[str, Any]:
    """What Stripe would send about the twin's (pretend) PaymentIntent."""
    intent: dict[str, Any] = {
        "id": f"pi_twin_{number}",
        "object": "payment_intent",
        "status": "succeeded" if event_type == SUCCEEDED else "requires_payment_method",
        "metadata": {"workflow_id": twin_workflow_id(number), "bid_id": str(number)},
    }
    return {
        "id": f"evt_twin_{event_type.rsplit('.', 1)[-1]}_{number}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": intent},
    }


async def _start_twin(bench: Bench, number: int, stage: AwaitedStage) -> CheckoutStatus:
    """As the API starts and asks the saga: an update-with-start, with the same attributes."""
    saga = twin_input(number, bench.settings)
    start: WithStartWorkflowOperation[Any, CheckoutStatus] = WithStartWorkflowOperation(
        "BenchTwinWorkflow",
        saga,
        id=twin_workflow_id(number),
        task_queue=bench.stack.twin_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=saga_summary(saga),
        search_attributes=start_attributes(saga),
        result_type=CheckoutStatus,
    )
    status: CheckoutStatus = await bench.temporal.execute_update_with_start_workflow(
        "await_checkout",
        AwaitCheckout(stage=stage),
        start_workflow_operation=start,
        result_type=CheckoutStatus,
    )
    return status


async def twin_checkouts(bench: Bench, count: int, concurrency: int) -> Measured:
    """Twins closed, asked for their intent, paid through the bare endpoint, finished."""
    numbers = bench.twin_numbers(count)

    async def one(index: int) -> None:
        number = numbers[index]
        # The seller's close, then the buyer's create-intent, as for a checkout.
        await _start_twin(bench, number, AwaitedStage.RESERVED)
        await _start_twin(bench, number, AwaitedStage.PAYMENT_INTENT)
        paid = await deliver(bench.bare, twin_event(number, SUCCEEDED), bench.secret, "/webhook")
        _expect(paid, "the bare endpoint")
        handle = bench.temporal.get_workflow_handle(
            twin_workflow_id(number), result_type=CheckoutStatus
        )
        _expect_sold(await handle.result(), f"twin {number}")

    return await bench.measure(run_many("no-op twin: start → sold", count, concurrency, one))


# The service.


async def put_up_auctions(
    bench: Bench, count: int, concurrency: int
) -> tuple[Measured, list[Auction]]:
    """Artworks with one bid each, still open: the auction's work, which the twin has no
    counterpart of. Measured on its own; the checkouts phase starts from these."""
    auctions: list[Auction] = []
    measured = await bench.measure(_putting_up(bench, count, concurrency, auctions))
    return measured, auctions


async def auctions_to_close(bench: Bench, count: int, concurrency: int) -> list[Auction]:
    """As `put_up_auctions`, unmeasured: for a phase that times the closes alone."""
    auctions: list[Auction] = []
    await _putting_up(bench, count, concurrency, auctions)
    return auctions


def _putting_up(
    bench: Bench, count: int, concurrency: int, auctions: list[Auction]
) -> Coroutine[Any, Any, Timed]:
    async def one(index: int) -> None:
        auctions.append(await bench.api.put_up_with_one_bid(PRICE, WINNING_BID, CURRENCY))

    return run_many("auctions put up (artwork, bid)", count, concurrency, one)


async def checkouts(bench: Bench, auctions: Sequence[Auction], concurrency: int) -> Measured:
    """Checkouts through the API: the auction closed, the intent asked for, paid at Stripe,
    the webhook posted, sold. Timed from the close, as the twin is from its start."""

    async def one(index: int) -> None:
        opened = await bench.api.close(auctions[index])
        status, declined = await attempt_payment(bench.stripe, opened.payment_intent_id, VISA)
        if status != "succeeded":
            raise RuntimeError(f"the payment is {status} ({declined})")
        event = await event_body(bench.stripe, opened.payment_intent_id, SUCCEEDED)
        _expect(await deliver(bench.api.http, event, bench.secret), "the webhook")
        handle = bench.temporal.get_workflow_handle(
            saga_workflow_id(opened.bid_id), result_type=CheckoutStatus
        )
        _expect_sold(await handle.result(), f"checkout of bid {opened.bid_id}")
        bench.sold_events.append(event)

    return await bench.measure(run_many("checkouts: close → sold", len(auctions), concurrency, one))


async def time_to_pay_below_capacity(
    bench: Bench, count: int, concurrency: int
) -> tuple[Measured, Measured]:
    """Close → PaymentIntent ready for checkouts, start → first activity for twins, at a
    concurrency the stack serves without queueing. Both are left waiting for payment."""

    # Put up first, as for the checkouts phase: the close and the intent alone are timed.
    auctions = await auctions_to_close(bench, count, concurrency)

    async def checkout(index: int) -> None:
        bench.waiting.append(await bench.api.close(auctions[index]))

    numbers = bench.twin_numbers(count)

    async def twin(index: int) -> None:
        await _start_twin(bench, numbers[index], AwaitedStage.RESERVED)

    ours = await bench.measure(
        run_many("close → PaymentIntent ready", count, concurrency, checkout)
    )
    twins = await bench.measure(run_many("twin: start → first activity", count, concurrency, twin))
    return ours, twins
