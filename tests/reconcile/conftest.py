"""Reconciliation looks at everything a deployment has: each module gets a deployment of its
own (a database, a Temporal dev server, the module's localstripe, an idempotency prefix) and
one worker serving it, as `python worker.py` would (sagas and reconciliation alike)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio
import stripe
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from devstack.processes import run_migrations
from infra.db import SessionFactory, session_factory
from infra.settings import Settings
from infra.stripe_api import connect_stripe
from infra.temporal import data_converter
from tests.support.databases import empty_database
from tests.support.stack import codec_settings, serve_worker, settings_for
from workflows.search_attributes import CHECKOUT_SEARCH_ATTRIBUTES


@dataclass(frozen=True)
class Deployment:
    settings: Settings
    database_url: str
    sessions: SessionFactory
    temporal: Client
    stripe: stripe.StripeClient


@pytest_asyncio.fixture(scope="module")
async def temporal_of_module() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server of its own: schedules and workflow ids are seen by no other module."""
    binary = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary,
        data_converter=data_converter(codec_settings()),
        search_attributes=CHECKOUT_SEARCH_ATTRIBUTES,
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="module")
async def deployment(
    database_url: str, localstripe_url: str, temporal_of_module: WorkflowEnvironment
) -> AsyncIterator[Deployment]:
    async with empty_database(database_url, "reconcile") as (url, engine):
        await asyncio.to_thread(run_migrations, url)
        settings = settings_for(
            url,
            localstripe_url,
            idempotency_prefix=f"reconcile-{uuid.uuid4().hex[:8]}",
            mail_dispatcher=False,
        )
        stripe_connection = connect_stripe(settings)
        sessions = session_factory(engine)
        client = temporal_of_module.client
        async with serve_worker(settings, sessions, client, stripe_connection.client):
            yield Deployment(settings, url, sessions, client, stripe_connection.client)
        await stripe_connection.aclose()
