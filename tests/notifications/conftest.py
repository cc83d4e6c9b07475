"""The emails' tests run on a database of their own: a dispatcher sends every due row of its
table, and the rest of the suite leaves rows no dispatcher ever sent.

Its ids start far from the shared database's: sagas are named after their bid
(`payment-bid-{id}`) on the one Temporal server of the session.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack.processes import run_migrations
from infra.db import SessionFactory, session_factory
from tests.support.databases import empty_database


@dataclass(frozen=True)
class MailDatabase:
    url: str
    engine: AsyncEngine
    sessions: SessionFactory


@pytest_asyncio.fixture(scope="module")
async def mail_database(database_url: str) -> AsyncIterator[MailDatabase]:
    async with empty_database(database_url, "mail") as (url, engine):
        await asyncio.to_thread(run_migrations, url)
        start = (uuid.uuid4().int % 1_000_000 + 1) * 1_000_000
        async with engine.begin() as connection:
            for table in ("users", "artworks", "bids", "payments", "notifications"):
                await connection.execute(
                    text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :start)"),
                    {"table": table, "start": start},
                )
        yield MailDatabase(url, engine, session_factory(engine))
