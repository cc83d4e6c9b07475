"""`make load` / `python -m loadtest`: N checkouts through a stack of its own, then an audit.

    python -m loadtest [--checkouts 500] [--concurrency 16] [--payment-window 20]

Starts PostgreSQL (or uses DATABASE_URL), Temporal's dev server, localstripe, the worker and
the API as separate processes; runs the checkouts through the HTTP API with a mix of
outcomes (paid, declined then paid, never paid, canceled by an operator, the success event
delivered several times); waits for every deadline; then audits the database against
localstripe and Temporal. Exits 1 on any violation. The stack is stopped whatever happens;
its logs are kept when the audit fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from devstack.cluster import Cluster, ClusterOptions, stop_on_sigterm
from loadtest.runner import LoadOptions, Timings, run_load


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def parse(argv: list[str] | None) -> LoadOptions:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__.split("\n")[0])
    parser.add_argument("--checkouts", "-n", type=_positive, default=500)
    parser.add_argument("--concurrency", "-c", type=_positive, default=16)
    parser.add_argument(
        "--payment-window",
        type=_positive,
        default=20,
        metavar="SECONDS",
        help="PAYMENT_TIMEOUT_SECONDS of the stack: how long never-paid checkouts wait",
    )
    args = parser.parse_args(argv)
    return LoadOptions(args.checkouts, args.concurrency, args.payment_window)


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # pgserver, harmless
    stop_on_sigterm()
    root = Path(tempfile.mkdtemp(prefix="auction-load-"))
    cluster = Cluster(
        root,
        ClusterOptions(
            payment_timeout_seconds=options.payment_window_seconds,
            database_url=os.environ.get("DATABASE_URL"),
        ),
    )
    timings = Timings()
    passed = False
    print(f"Starting a stack of its own in {root}", flush=True)
    try:
        started = time.monotonic()
        with cluster:
            timings.stack_start = time.monotonic() - started
            print(f"  up in {timings.stack_start:.1f} s; driving {options.checkouts} checkouts")
            passed = asyncio.run(run_load(cluster, options, timings)).passed
    except KeyboardInterrupt as stopped:
        print(f"\nInterrupted ({str(stopped) or 'SIGINT'}): the stack is stopped", file=sys.stderr)
        return 130
    finally:
        if passed:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"The stack's logs: {cluster.logs}", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
