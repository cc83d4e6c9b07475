"""Who is calling, as `users` records it: a known caller is only read; a new one, or one whose
token says something new, is written, once even when their first requests race."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth import TokenClaims, identify_caller
from infra.db import SessionFactory, autocommit_session_factory, create_engine, session_factory
from tests.support.stack import unique
from tests.support.statements import Statements


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    own = create_engine(database_url, pool_size=4)
    yield own
    await own.dispose()


def claims_of(subject: str, name: str = "Ada") -> TokenClaims:
    return TokenClaims(sub=subject, email=f"{subject}@example.com", name=name)


async def row_lock_marker(sessions: SessionFactory, subject: str) -> str:
    """The row's `xmax`: a lock taken on the row (FOR UPDATE, an upsert) writes its
    transaction id there; a read leaves it."""
    async with sessions() as session:
        query = text("SELECT xmax::text FROM users WHERE subject = :subject")
        rows = await session.exec(query, params={"subject": subject})  # type: ignore[call-overload]
        return str(rows.scalar_one())


async def test_a_known_caller_with_the_same_claims_is_only_read(engine: AsyncEngine) -> None:
    sessions, statements = session_factory(engine), Statements(engine)
    claims = claims_of(unique("ada"))
    async with sessions() as session:
        first = await identify_caller(session, claims)
    marker = await row_lock_marker(sessions, claims.sub)

    mark = len(statements.sent)
    async with sessions() as session:
        again = await identify_caller(session, claims)
    assert statements.since(mark) == ["SELECT"]
    assert again == first
    assert await row_lock_marker(sessions, claims.sub) == marker


async def test_a_known_caller_costs_one_round_trip_on_the_apis_sessions(
    engine: AsyncEngine,
) -> None:
    """The API identifies callers on autocommit sessions: the read alone goes to PostgreSQL,
    where a transaction would add its BEGIN and COMMIT."""
    claims, statements = claims_of(unique("ada")), Statements(engine)
    async with session_factory(engine)() as session:
        await identify_caller(session, claims)

    trips, mark = len(statements.transaction_control), len(statements.sent)
    async with session_factory(engine)() as session:
        await identify_caller(session, claims)
    assert await statements.transaction_control_since(trips) == ["BEGIN", "COMMIT"]

    trips, mark = len(statements.transaction_control), len(statements.sent)
    async with autocommit_session_factory(engine)() as session:
        await identify_caller(session, claims)
    assert await statements.transaction_control_since(trips) == []
    assert statements.since(mark) == ["SELECT"]


async def test_a_new_caller_and_new_claims_are_written(engine: AsyncEngine) -> None:
    sessions, statements = session_factory(engine), Statements(engine)
    subject = unique("grace")
    mark = len(statements.sent)
    async with sessions() as session:
        created = await identify_caller(session, claims_of(subject, "Grace"))
    assert statements.since(mark) == ["SELECT", "INSERT"]

    async with sessions() as session:
        renamed = await identify_caller(session, claims_of(subject, "Grace Hopper"))
    assert renamed.id == created.id and renamed.name == "Grace Hopper"
    async with sessions() as session:
        query = text("SELECT name FROM users WHERE subject = :subject")
        stored = await session.exec(query, params={"subject": subject})  # type: ignore[call-overload]
        assert stored.scalar_one() == "Grace Hopper"


async def test_first_requests_racing_for_a_new_caller_record_one_user(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    claims = claims_of(unique("lin"))

    async def one_request() -> int:
        async with sessions() as session:
            return (await identify_caller(session, claims)).id

    ids = await asyncio.gather(*(one_request() for _ in range(8)))
    assert len(set(ids)) == 1
    async with sessions() as session:
        query = text("SELECT count(*) FROM users WHERE subject = :subject")
        count = await session.exec(query, params={"subject": claims.sub})  # type: ignore[call-overload]
        assert count.scalar_one() == 1
