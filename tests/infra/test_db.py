"""The engine's pool, as PostgreSQL sees it: no round trip spent on checking connections, no
connection opened and closed again under a burst, and a connection that died replaced.

Counts come from PostgreSQL itself, for a database of the test's own: `pg_stat_database`
(transactions committed and rolled back, sessions opened) once every connection has closed,
which is when a backend's counts are final.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.errors import DATABASE_UNAVAILABLE, database_refusal
from infra.db import create_engine, session_factory
from tests.support.databases import empty_database
from tests.support.polling import eventually


@dataclass(frozen=True)
class Counts:
    commits: int
    rollbacks: int
    sessions: int

    def __sub__(self, before: Counts) -> Counts:
        return Counts(
            self.commits - before.commits,
            self.rollbacks - before.rollbacks,
            self.sessions - before.sessions,
        )


@dataclass(frozen=True)
class OwnDatabase:
    url: str
    name: str
    admin: AsyncEngine  # on the suite's database: its own transactions are not counted

    async def counts_once_closed(self, engine: AsyncEngine) -> Counts:
        """The database's counts once `engine` closed its connections."""
        await engine.dispose()
        await eventually(self._backends, lambda n: n == 0, what=f"{self.name} without backends")
        async with self.admin.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT coalesce(sum(xact_commit), 0), coalesce(sum(xact_rollback), 0),"
                        " coalesce(sum(sessions), 0) FROM pg_stat_database WHERE datname = :name"
                    ),
                    {"name": self.name},
                )
            ).one()
        return Counts(*(int(value) for value in row))

    async def _backends(self) -> int:
        async with self.admin.connect() as connection:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name")
            return int((await connection.execute(query, {"name": self.name})).scalar_one())

    async def running(self, pid: int) -> bool:
        """Whether backend `pid` is executing a statement now."""
        async with self.admin.connect() as connection:
            query = text("SELECT state = 'active' FROM pg_stat_activity WHERE pid = :pid")
            return bool((await connection.execute(query, {"pid": pid})).scalar())

    async def terminate(self, pid: int) -> None:
        async with self.admin.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest_asyncio.fixture
async def own_database(database_url: str) -> AsyncIterator[OwnDatabase]:
    async with empty_database(database_url, "pool") as (url, _):
        admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
        name = make_url(url).database
        assert name is not None
        yield OwnDatabase(url, name, admin)
        await admin.dispose()


async def warmed_up(own: OwnDatabase, pool_size: int) -> tuple[AsyncEngine, Counts]:
    """An engine past SQLAlchemy's first connect (which reads the server's settings once in
    a transaction it rolls back), and the counts from there."""
    engine = create_engine(own.url, pool_size=pool_size)
    async with engine.connect():
        pass
    return engine, await own.counts_once_closed(engine)


async def test_sessions_that_commit_cost_no_rollback(own_database: OwnDatabase) -> None:
    engine, before = await warmed_up(own_database, pool_size=2)
    sessions = session_factory(engine)
    for _ in range(20):
        async with sessions() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            await session.commit()
    spent = await own_database.counts_once_closed(engine) - before
    # A pre-ping would have rolled back once per check-out, and a reset on return after the
    # COMMIT would have too: neither reaches PostgreSQL.
    assert spent.rollbacks == 0, spent
    assert spent.commits >= 20, spent


async def test_a_burst_waits_for_the_pools_connections_and_opens_no_more(
    own_database: OwnDatabase,
) -> None:
    engine, before = await warmed_up(own_database, pool_size=2)
    sessions = session_factory(engine)

    async def one_request() -> None:
        async with sessions() as session:
            await session.exec(text("SELECT pg_sleep(0.02)"))  # type: ignore[call-overload]
            await session.commit()

    await asyncio.gather(*(one_request() for _ in range(16)))
    spent = await own_database.counts_once_closed(engine) - before
    assert spent.sessions == 2, spent  # the pool's size: none opened and closed again
    assert spent.rollbacks == 0, spent


async def test_a_connection_postgresql_closed_is_replaced_before_it_is_used(
    own_database: OwnDatabase,
) -> None:
    engine = create_engine(own_database.url, pool_size=1)
    async with engine.connect() as connection:
        first = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    await own_database.terminate(first)  # as a restart of PostgreSQL does to every backend
    await eventually(lambda: asyncio.sleep(0, driver.is_closed()), bool, what="closed seen")

    async with session_factory(engine)() as session:
        query = text("SELECT pg_backend_pid()")
        second = (await session.exec(query)).scalar_one()  # type: ignore[call-overload]
    assert second != first
    await engine.dispose()


async def test_a_connection_dying_under_a_statement_fails_it_and_not_the_next(
    own_database: OwnDatabase,
) -> None:
    engine = create_engine(own_database.url, pool_size=1)
    sessions = session_factory(engine)
    async with sessions() as session:
        pid_query = text("SELECT pg_backend_pid()")
        pid = (await session.exec(pid_query)).scalar_one()  # type: ignore[call-overload]
        sleeping = asyncio.create_task(
            session.exec(text("SELECT pg_sleep(30)"))  # type: ignore[call-overload]
        )
        await eventually(lambda: own_database.running(pid), bool, what="statement")
        await own_database.terminate(pid)
        with pytest.raises(DBAPIError) as died:
            await sleeping
    assert died.value.connection_invalidated
    assert database_refusal(died.value) == DATABASE_UNAVAILABLE  # answered 503, not 500

    async with sessions() as session:
        assert (await session.exec(text("SELECT 1"))).scalar_one() == 1  # type: ignore[call-overload]
    await engine.dispose()


async def test_a_session_waits_for_a_connection_no_longer_than_the_pool_time_out(
    own_database: OwnDatabase,
) -> None:
    engine = create_engine(own_database.url, pool_size=1, pool_timeout_seconds=0.2)
    async with engine.connect() as holder:
        await holder.execute(text("SELECT 1"))
        with pytest.raises(PoolTimeout):
            async with engine.connect() as waiting:
                await waiting.execute(text("SELECT 1"))
    await engine.dispose()
