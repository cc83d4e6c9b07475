"""`make bench` / `python -m bench`: the service against a no-op twin, in one run.

    python -m bench [--quick] [--checkouts 300] [--concurrency 16] [--open-checkouts 10000]

Starts a stack of its own (PostgreSQL, Temporal's dev server on WAL SQLite, localstripe, the
SMTP sink, the worker, the API), plus the twin's worker and a bare webhook endpoint on the
same Temporal server. Then, each phase timed in the same run: the twin's throughput, the
checkouts' through the HTTP API, latencies below capacity, the webhook against the bare
endpoint, memory with N checkouts waiting. Prints a table of figures and ratios against
their goals, writes bench/results/<time>.json and a PNG beside it. Exits 1 when any
operation failed (never for speed: the goals are read, not enforced).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import profile
from bench.memory import memory_with_open_checkouts
from bench.phases import (
    Bench,
    auctions_to_close,
    checkouts,
    put_up_auctions,
    time_to_pay_below_capacity,
    twin_checkouts,
)
from bench.plot import draw
from bench.profile import Profile
from bench.report import Results, as_json, run_name, table, write_json
from bench.stack import BenchStack
from bench.webhooks import webhooks
from devstack.auction_client import AuctionClient
from devstack.cluster import stop_on_sigterm
from infra.stripe_api import connect_stripe
from infra.temporal import connect_temporal

RESULTS = Path(__file__).resolve().parent / "results"
PROFILED = ("worker", "api")


@dataclass(frozen=True)
class BenchOptions:
    checkouts: int = 300
    concurrency: int = 16
    below_capacity: int = 100
    below_capacity_concurrency: int = 4
    copies: int = 4  # deliveries of each webhook event
    webhook_checkouts: int = 500  # waiting checkouts whose events each endpoint delivers
    open_checkouts: int = 10_000
    quick: bool = False
    profile: bool = False  # one more checkouts phase, sampled by py-spy


QUICK = BenchOptions(
    checkouts=30,
    concurrency=8,
    below_capacity=12,
    copies=3,
    webhook_checkouts=12,
    open_checkouts=150,
    quick=True,
)


def parse(argv: list[str] | None) -> BenchOptions:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run, as CI does")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then one more checkouts phase with the worker and the API sampled by py-spy",
    )
    sizes = [field.name for field in dataclasses.fields(BenchOptions) if field.type == "int"]
    for name in sizes:
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=None, metavar="N")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else BenchOptions()
    chosen = {name: getattr(args, name) for name in sizes if getattr(args, name) is not None}
    for name, value in chosen.items():
        if value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return dataclasses.replace(base, profile=args.profile, **chosen)


async def run(stack: BenchStack, options: BenchOptions, files: Path) -> Results:
    cluster = stack.cluster
    settings = cluster.settings()
    stripe_connection = connect_stripe(settings)
    temporal = await connect_temporal(settings)
    limits = httpx.Limits(max_connections=options.concurrency * 2)
    try:
        async with (
            httpx.AsyncClient(base_url=cluster.api_url, timeout=120, limits=limits) as api,
            httpx.AsyncClient(base_url=stack.bare_webhook_url, timeout=120, limits=limits) as bare,
        ):
            bench = Bench(stack, AuctionClient(api, cluster.jwt_secret), bare, temporal,
                          stripe_connection.client)  # fmt: skip
            twin = await twin_checkouts(bench, options.checkouts, options.concurrency)
            put_up, auctions = await put_up_auctions(bench, options.checkouts, options.concurrency)
            sold = await checkouts(bench, auctions, options.concurrency)
            below, twin_below = await time_to_pay_below_capacity(
                bench, options.below_capacity, options.below_capacity_concurrency
            )
            memory = await memory_with_open_checkouts(
                bench, options.open_checkouts, options.concurrency
            )
            # Among the checkouts left waiting, as deliveries reach a busy service.
            hooks = await webhooks(
                bench, options.webhook_checkouts, options.copies, options.concurrency
            )
            results = Results(
                dataclasses.asdict(options), twin, put_up, sold, below, twin_below, hooks, memory
            )
            if options.profile:
                results.profiles = await profiled_checkouts(bench, options, files)
    finally:
        await stripe_connection.aclose()
    return results


async def profiled_checkouts(bench: Bench, options: BenchOptions, files: Path) -> list[Profile]:
    """The checkouts phase again, its Python processes sampled: where their CPU goes."""
    pids = {part: pid for part, pid in bench.stack.pids().items() if part in PROFILED}
    auctions = await auctions_to_close(bench, options.checkouts, options.concurrency)
    with profile.sampling(pids, files.parent, f"{files.name}-profile") as outputs:
        await checkouts(bench, auctions, options.concurrency)
    found = [profile.summarize(part, path) for part, path in outputs.items()]
    return [summary for summary in found if summary is not None]


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # pgserver, harmless
    stop_on_sigterm()
    root = Path(tempfile.mkdtemp(prefix="auction-bench-"))
    started_at = datetime.now(UTC)
    started = time.monotonic()
    print(f"Starting a stack of its own in {root}", flush=True)
    stack = BenchStack(root)
    folder = Path(os.environ.get("BENCH_RESULTS", RESULTS))
    files = folder / run_name(started_at, options.quick)  # + .json, .png, -profile-*.folded
    failed = True
    try:
        with stack:
            print(f"  up in {time.monotonic() - started:.1f} s", flush=True)
            results = asyncio.run(run(stack, options, files))
        report = as_json(results, started_at, time.monotonic() - started)
        path = write_json(report, files.with_suffix(".json"))
        chart = draw(results, path.with_suffix(".png"), f"make bench, {started_at:%Y-%m-%d}")
        print(f"\n{table(results)}\n\n  results: {path}\n  chart:   {chart}")
        errors = results.errors()
        for error in errors[:20]:
            print(f"  error: {error}", file=sys.stderr)
        failed = bool(errors)
        if failed:
            print(f"BENCH FAILED: {len(errors)} operations failed", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nInterrupted: the stack is stopped", file=sys.stderr)
        return 130
    finally:
        if failed:
            print(f"The stack's logs: {stack.cluster.logs}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
