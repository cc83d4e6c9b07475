"""The async engine and session factory, built once per process."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SessionFactory = async_sessionmaker[AsyncSession]

# What DATABASE_POOL_SIZE and DATABASE_POOL_TIMEOUT_SECONDS default to (see the settings).
DEFAULT_POOL_SIZE = 10
DEFAULT_POOL_TIMEOUT_SECONDS = 10.0


def create_engine(
    database_url: str,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    pool_timeout_seconds: float = DEFAULT_POOL_TIMEOUT_SECONDS,
) -> AsyncEngine:
    """At most `pool_size` connections, opened as needed and then kept: no overflow, whose
    connections were opened and closed again with every burst. A session that finds them
    all in use waits up to `pool_timeout_seconds`, then gets `sqlalchemy.exc.TimeoutError`.

    No `pool_pre_ping`: with asyncpg it cost every check-out three round trips (BEGIN, a
    ping, ROLLBACK). A connection PostgreSQL closed (a restart) is replaced at check-out for
    free instead (below); one that dies under a statement fails that statement, and
    SQLAlchemy then discards it with every connection opened before it, so the next session
    gets a fresh one. Returning a connection after a COMMIT sends nothing: the adapter rolls
    back only a transaction still open (tests/infra/test_db.py counts both at PostgreSQL).
    """
    engine = create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout_seconds,
    )
    event.listen(engine.sync_engine, "checkout", _replace_if_closed_by_the_server)
    return engine


def _replace_if_closed_by_the_server(
    dbapi_connection: Any, _record: object, _proxy: object
) -> None:
    """asyncpg marks a connection closed as soon as the server hangs up on it (a restart, a
    terminated backend): that costs no round trip to look at. The pool answers
    `DisconnectionError` by connecting that slot again before handing it out."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("PostgreSQL closed this connection")


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def autocommit_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions on the same pool whose every statement is its own transaction: no BEGIN and
    no COMMIT, two round trips fewer each time. For a lookup of one statement, or a write
    that one statement makes whole (an upsert); never for work that needs several
    statements to agree."""
    return session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))


async def without_transaction(session: AsyncSession) -> None:
    """Makes a fresh session's statements each its own transaction, as the sessions of
    `autocommit_session_factory` are: for a lookup of one statement in code that holds a
    transactional factory, no BEGIN and ROLLBACK around it. Call before its first statement."""
    await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def asyncpg_dsn(database_url: str) -> str:
    """DATABASE_URL as asyncpg itself reads it, for a connection of its own outside the pool
    (a LISTEN): SQLAlchemy's `+asyncpg` dialect removed."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)
