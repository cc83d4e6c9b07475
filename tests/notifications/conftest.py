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
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from devstack.processes import run_migrations
from infra.db import SessionFactory, create_engine, session_factory


@dataclass(frozen=True)
class MailDatabase:
    url: str
    sessions: SessionFactory


@pytest_asyncio.fixture(scope="module")
async def mail_database(database_url: str) -> AsyncIterator[MailDatabase]:
    admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    name = f"mail_{uuid.uuid4().hex[:8]}"
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(run_migrations, url)
    engine = create_engine(url)
    start = (uuid.uuid4().int % 1_000_000 + 1) * 1_000_000
    async with engine.begin() as connection:
        for table in ("users", "artworks", "bids", "payments", "notifications"):
            await connection.execute(
                text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :start)"),
                {"table": table, "start": start},
            )
    try:
        yield MailDatabase(url, session_factory(engine))
    finally:
        await engine.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()
