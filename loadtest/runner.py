"""A load run: N checkouts through the HTTP API of a stack of its own, then the audit."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from sqlalchemy import func
from sqlmodel import col, select

from devstack.auction_client import AuctionClient
from devstack.cluster import Cluster
from infra.db import SessionFactory, create_engine, session_factory
from infra.stripe_api import connect_stripe
from infra.tables import Bid
from infra.temporal import connect_temporal
from loadtest.audit import RUNNING_SAGAS, AuditReport, audit
from loadtest.progress import Progress
from loadtest.scenarios import Checkout, Scenario, Tools, drive, plan

# After the last checkout is driven, its deadline still has to pass: this much longer at most.
SETTLE_MARGIN_SECONDS = 180.0


@dataclass(frozen=True)
class LoadOptions:
    checkouts: int
    concurrency: int
    payment_window_seconds: int


@dataclass
class Timings:
    stack_start: float = 0.0
    driving: float = 0.0
    settling: float = 0.0
    audit: float = 0.0
    # One create and cancel at localstripe, alone, before and after the run: how much its
    # store's growth (it pickles the whole store on every write) slows it.
    stripe_write_before: float = 0.0
    stripe_write_after: float = 0.0


async def _time_a_stripe_write(tools: Tools) -> float:
    intents = tools.stripe.v1.payment_intents
    started = time.monotonic()
    probe = await intents.create_async(
        params={"amount": 100, "currency": "usd", "payment_method_types": ["card"]}  # type: ignore[typeddict-unknown-key]
    )
    await intents.cancel_async(probe.id)
    return (time.monotonic() - started) / 2


async def run_load(cluster: Cluster, options: LoadOptions, timings: Timings) -> AuditReport:
    settings = cluster.settings()
    engine = create_engine(settings.require_database_url(), pool_size=4)
    sessions = session_factory(engine)
    stripe_connection = connect_stripe(settings)
    temporal = await connect_temporal(settings)
    limits = httpx.Limits(max_connections=options.concurrency * 4)
    try:
        async with httpx.AsyncClient(base_url=cluster.api_url, timeout=60, limits=limits) as api:
            tools = Tools(
                api=AuctionClient(api, cluster.jwt_secret),
                stripe=stripe_connection.client,
                localstripe_url=cluster.localstripe_url,
                temporal=temporal,
                webhook_secret=cluster.webhook_secret,
            )
            timings.stripe_write_before = await _time_a_stripe_write(tools)
            checkouts = await _drive_all(tools, sessions, options, timings)
            timings.stripe_write_after = await _time_a_stripe_write(tools)
        started = time.monotonic()
        report = await audit(
            checkouts,
            sessions=sessions,
            stripe_client=stripe_connection.client,
            temporal=temporal,
            delivered_mail=cluster.delivered_message_ids,
        )
        timings.audit = time.monotonic() - started
        print_report(checkouts, report, tools, options, timings)
        return report
    finally:
        await stripe_connection.aclose()
        await engine.dispose()


async def _drive_all(
    tools: Tools, sessions: SessionFactory, options: LoadOptions, timings: Timings
) -> list[Checkout]:
    progress = Progress(options.checkouts)
    limit = asyncio.Semaphore(options.concurrency)
    bid_ids: list[int] = []

    async def one(index: int, scenario: Scenario) -> Checkout:
        async with limit:
            checkout = await drive(tools, index, scenario)
        progress.driven += 1
        progress.errors += checkout.error is not None
        if checkout.opened is not None:
            bid_ids.append(checkout.opened.bid_id)
        return checkout

    display = asyncio.create_task(progress.keep_showing(lambda: _bid_statuses(sessions, bid_ids)))
    try:
        started = time.monotonic()
        checkouts = await asyncio.gather(
            *(one(index, scenario) for index, scenario in enumerate(plan(options.checkouts)))
        )
        timings.driving = time.monotonic() - started
        started = time.monotonic()
        await _wait_until_all_decided(tools, sessions, bid_ids, options)
        timings.settling = time.monotonic() - started
    finally:
        display.cancel()
    progress.decided = await _bid_statuses(sessions, bid_ids)
    progress.show(final=True)
    return checkouts


async def _bid_statuses(sessions: SessionFactory, bid_ids: list[int]) -> dict[str, int]:
    query = (
        select(Bid.status, func.count())
        .where(col(Bid.id).in_(list(bid_ids)))
        .group_by(col(Bid.status))
    )
    async with sessions() as session:
        return {status: count for status, count in (await session.exec(query)).all()}


async def _wait_until_all_decided(
    tools: Tools, sessions: SessionFactory, bid_ids: list[int], options: LoadOptions
) -> None:
    """Until no bid of the run is still `won` and no saga runs, or the bound passes (the
    audit then reports what is left)."""
    deadline = time.monotonic() + options.payment_window_seconds + SETTLE_MARGIN_SECONDS
    while time.monotonic() < deadline:
        waiting = (await _bid_statuses(sessions, bid_ids)).get("won", 0)
        if not waiting:
            running = await tools.temporal.count_workflows(RUNNING_SAGAS)
            if not running.count:
                return
        await asyncio.sleep(1)


def _percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def print_report(
    checkouts: list[Checkout],
    report: AuditReport,
    tools: Tools,
    options: LoadOptions,
    timings: Timings,
) -> None:
    columns = ("sold", "reopened", "undecided", "broken", "not opened")
    print(f"\n{'scenario':<22}{'asked':>7}" + "".join(f"{name:>12}" for name in columns))
    for scenario, counts in report.counts.items():
        asked = sum(1 for checkout in checkouts if checkout.scenario is scenario)
        cells = "".join(f"{counts.get(name, 0):>12}" for name in columns)
        print(f"{scenario.value:<22}{asked:>7}{cells}")

    opened = [c.open_seconds for c in checkouts if c.opened is not None]
    payments = [seconds for _, seconds in sorted(tools.payment_latency)]
    tenth = max(1, len(payments) // 10)
    decided_in = timings.driving + timings.settling
    wall = timings.stack_start + decided_in + timings.audit
    print(
        f"\ncheckouts {options.checkouts}, concurrency {options.concurrency}, "
        f"payment window {options.payment_window_seconds} s\n"
        f"wall time {wall:.1f} s: stack start {timings.stack_start:.1f} s, driving "
        f"{timings.driving:.1f} s, waiting for the last deadlines {timings.settling:.1f} s, "
        f"audit {timings.audit:.1f} s\n"
        f"throughput: {options.checkouts / max(timings.driving, 1e-9):.1f} checkouts/s "
        f"opened and played; {options.checkouts / max(decided_in, 1e-9):.1f} checkouts/s "
        f"decided end to end (deadlines included)\n"
        f"opening a checkout (artwork, bid, close, create-intent): p50 "
        f"{_percentile(opened, 0.5):.2f} s, p95 {_percentile(opened, 0.95):.2f} s\n"
        f"the buyer's payment at localstripe (update + confirm): median "
        f"{statistics.median(payments[:tenth]) * 1000 if payments else 0:.0f} ms in the first "
        f"tenth of the run, {statistics.median(payments[-tenth:]) * 1000 if payments else 0:.0f}"
        f" ms in the last\n"
        f"one write at localstripe, alone: {timings.stripe_write_before * 1000:.0f} ms before "
        f"the run, {timings.stripe_write_after * 1000:.0f} ms after it\n"
        f"emails: {report.emails_queued} queued by the checkouts"
    )
    if report.violations:
        print(f"\nAUDIT FAILED: {len(report.violations)} violations")
        for violation in report.violations[:40]:
            print(f"  - {violation}")
        if len(report.violations) > 40:
            print(f"  ... and {len(report.violations) - 40} more")
    else:
        print(
            "\nAUDIT PASSED: every checkout sold or reopened as asked; database, localstripe "
            "and Temporal agree; nothing left pending or running; every email received by the "
            "SMTP server exactly once"
        )
