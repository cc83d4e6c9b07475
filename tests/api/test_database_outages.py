"""What a request hears when the database cannot serve it now: 503 with Retry-After, never a
500. Here the API keeps a pool of one connection, which a bid holds while it waits for the
artwork's row lock, which the test holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest_asyncio
from sqlalchemy import text
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from api.errors import DATABASE_BUSY, DATABASE_UNAVAILABLE
from infra.db import SessionFactory
from infra.tables import Artwork
from tests.api.conftest import open_auction
from tests.support.polling import eventually
from tests.support.stack import Stack, running_stack, settings_for, temporal_address, unique


@pytest_asyncio.fixture
async def one_connection(
    database_url: str,
    localstripe_url: str,
    sessions: SessionFactory,
    temporal_dev: WorkflowEnvironment,
) -> AsyncIterator[Stack]:
    settings = settings_for(
        database_url,
        localstripe_url,
        temporal_address=temporal_address(temporal_dev.client),
        database_pool_size=1,
        database_pool_timeout_seconds=0.5,
    )
    async with running_stack(settings, sessions, temporal_dev.client, with_worker=False) as api:
        yield api


@asynccontextmanager
async def bid_held_on_the_artworks_lock(
    api: Stack, artwork_id: int
) -> AsyncIterator[tuple[int, asyncio.Task[httpx.Response]]]:
    """A bid in flight, holding the API's one connection while it waits for the row lock
    the test holds; yields the API's backend pid and the bid. The lock is released after."""
    async with api.sessions() as holder:
        locked = select(Artwork).where(Artwork.id == artwork_id).with_for_update()
        await holder.exec(locked)
        ours = (await holder.exec(text("SELECT pg_backend_pid()"))).scalar_one()  # type: ignore[call-overload]
        bid = asyncio.create_task(
            api.post(f"/api/artworks/{artwork_id}/bids", unique("buyer"), {"amount": "700.00"})
        )

        async def waiting_on_us() -> list[int]:
            query = text(
                "SELECT pid FROM pg_stat_activity WHERE :ours = ANY(pg_blocking_pids(pid))"
            )
            rows = await holder.exec(query, params={"ours": ours})  # type: ignore[call-overload]
            return [int(pid) for pid in rows.scalars()]

        (blocked,) = await eventually(waiting_on_us, bool, what="the bid waiting on the lock")
        try:
            yield blocked, bid
        finally:
            await holder.commit()


async def test_a_request_finding_every_connection_in_use_is_503_then_served(
    one_connection: Stack,
) -> None:
    seller, artwork_id = await open_auction(one_connection)
    async with bid_held_on_the_artworks_lock(one_connection, artwork_id) as (_, bid):
        busy = await one_connection.get(f"/api/artworks/{artwork_id}", seller)
        assert busy.status_code == 503, busy.text
        assert busy.headers["Retry-After"] == "5"
        assert busy.json() == {"detail": DATABASE_BUSY}
    assert (await bid).status_code == 201
    assert (await one_connection.get(f"/api/artworks/{artwork_id}", seller)).status_code == 200


async def test_a_request_whose_connection_dies_is_503_and_the_next_is_served(
    one_connection: Stack,
) -> None:
    seller, artwork_id = await open_auction(one_connection)
    async with bid_held_on_the_artworks_lock(one_connection, artwork_id) as (blocked, bid):
        async with one_connection.sessions() as admin:
            terminate = text("SELECT pg_terminate_backend(:pid)")
            await admin.exec(terminate, params={"pid": blocked})  # type: ignore[call-overload]
        died = await bid
    assert died.status_code == 503, died.text
    assert died.headers["Retry-After"] == "5"
    assert died.json() == {"detail": DATABASE_UNAVAILABLE}
    assert (await one_connection.get(f"/api/artworks/{artwork_id}", seller)).status_code == 200
