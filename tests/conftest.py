"""The real servers the suite runs against, started once per session (or per module).

PostgreSQL: DATABASE_URL if set, else an embedded pgserver in a temporary folder.
Temporal: the dev server (`temporal`) and the time-skipping test server, from PyPI.
Stripe: localstripe, one per module, so webhooks and objects never leak between modules.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import stripe
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from devstack.processes import (
    free_port,
    run_migrations,
    start_localstripe,
    start_postgres,
)
from infra.db import SessionFactory, create_engine, session_factory
from infra.search_attributes import ensure_search_attributes
from infra.settings import Settings
from infra.stripe_api import connect_stripe
from infra.temporal import data_converter
from tests.support.stack import codec_settings, settings_for
from workflows.search_attributes import CHECKOUT_SEARCH_ATTRIBUTES

# pgserver logs from its exit hook, after pytest has closed the captured streams.
logging.getLogger("pgserver").setLevel(logging.WARNING)

# Speed is measured by the benchmark, not by tests: no per-example deadline.
hypothesis_settings.register_profile("auction", deadline=None, print_blob=True)
hypothesis_settings.load_profile("auction")


def _binary(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(found).exists(), f"{name} is missing: `make install` brings it from PyPI"
    return found


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        run_migrations(configured)
        yield Settings(database_url=configured).database_url
        return
    postgres = start_postgres(tmp_path_factory.mktemp("postgres"))
    url = postgres.create_database("auction_test")
    run_migrations(url)
    yield Settings(database_url=url).database_url
    postgres.stop()


@pytest_asyncio.fixture(scope="session")
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    yield session_factory(engine)
    await engine.dispose()


@pytest_asyncio.fixture(scope="session")
async def temporal_dev() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=data_converter(codec_settings()),
        search_attributes=CHECKOUT_SEARCH_ATTRIBUTES,
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="module")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"),
        data_converter=data_converter(codec_settings()),
    )
    # The test server takes no attributes at start, but registers them as a worker would.
    assert await ensure_search_attributes(env.client, env.client.namespace)
    yield env
    await env.shutdown()


@pytest.fixture(scope="module")
def localstripe_url() -> Iterator[str]:
    service = start_localstripe(free_port())
    yield service.url
    service.stop()


@pytest_asyncio.fixture(scope="module")
async def stripe_client(
    localstripe_url: str, database_url: str
) -> AsyncIterator[stripe.StripeClient]:
    connection = connect_stripe(settings_for(database_url, localstripe_url))
    yield connection.client
    await connection.aclose()
