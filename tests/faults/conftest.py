"""One cluster of real processes per module (see devstack/cluster.py), with the options the
module's `cluster_options` fixture asks for; every part is running again before each test.

Run with `make faults` (or `pytest -m faults`): plain `make test` deselects them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from devstack.auction_client import AuctionClient
from devstack.cluster import Cluster, ClusterOptions
from infra.db import create_engine, session_factory
from infra.stripe_api import connect_stripe
from infra.temporal import connect_temporal
from tests.faults.harness import Harness

# One line per HTTP request to Stripe or the API would bury a failure's verdict.
for noisy in ("stripe", "httpx", "aiohttp.access"):
    logging.getLogger(noisy).setLevel(logging.WARNING)

# The API answers within the saga's own bounds (20 s for an update), or 503.
HTTP_TIMEOUT = httpx.Timeout(60.0)
# Folders of clusters whose module had a failure, kept for their logs.
KEPT: list[Path] = []


@pytest.fixture(scope="module")
def cluster_options() -> ClusterOptions:
    return ClusterOptions(payment_timeout_seconds=10)


@pytest_asyncio.fixture(scope="module")
async def cluster(
    request: pytest.FixtureRequest, cluster_options: ClusterOptions
) -> AsyncIterator[Cluster]:
    # Not pytest's tmp_path: every pytest run as this user prunes older runs' folders, and
    # other runs on this machine would delete a cluster's data under its feet.
    root = Path(tempfile.mkdtemp(prefix="auction-faults-"))
    options = dataclasses.replace(cluster_options, database_url=os.environ.get("DATABASE_URL"))
    cluster = Cluster(root, options)
    failures_before = request.session.testsfailed
    await asyncio.to_thread(cluster.start)
    try:
        yield cluster
    finally:
        await asyncio.to_thread(cluster.stop)
        if request.session.testsfailed > failures_before:
            KEPT.append(cluster.logs)
        else:
            shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture(scope="module")
async def harness(cluster: Cluster) -> AsyncIterator[Harness]:
    settings = cluster.settings()
    engine = create_engine(settings.require_database_url(), pool_size=2)
    stripe_connection = connect_stripe(settings)
    temporal = await connect_temporal(settings)
    async with httpx.AsyncClient(base_url=cluster.api_url, timeout=HTTP_TIMEOUT) as api:
        yield Harness(
            cluster=cluster,
            api=AuctionClient(api, cluster.jwt_secret),
            stripe=stripe_connection.client,
            temporal=temporal,
            sessions=session_factory(engine),
        )
    await stripe_connection.aclose()
    await engine.dispose()


@pytest_asyncio.fixture(autouse=True)
async def every_part_running(harness: Harness) -> AsyncIterator[None]:
    """A test starts on a whole cluster, whatever the previous one broke."""
    await harness.mend()
    yield


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for logs in KEPT:
        terminalreporter.write_line(f"logs of a cluster with failures: {logs}")
