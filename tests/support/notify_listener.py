"""A PostgreSQL LISTEN connection of its own: what the database announced, as it delivered it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from domain.announcements import LiveEvent
from infra.db import asyncpg_dsn


class Heard:
    def __init__(self) -> None:
        self.events: list[LiveEvent] = []
        self.mail_wakeups = 0

    def for_artwork(self, artwork_id: int) -> list[LiveEvent]:
        return [event for event in self.events if event.artwork_id == artwork_id]


@asynccontextmanager
async def listening(database_url: str) -> AsyncIterator[Heard]:
    from infra.announcer import LIVE_EVENTS_CHANNEL, MAIL_CHANNEL

    heard = Heard()

    def on_event(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
        heard.events.append(LiveEvent.from_wire(payload))

    def on_mail(_connection: Any, _pid: int, _channel: str, _payload: str) -> None:
        heard.mail_wakeups += 1

    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    await connection.add_listener(LIVE_EVENTS_CHANNEL, on_event)
    await connection.add_listener(MAIL_CHANNEL, on_mail)
    try:
        yield heard
    finally:
        await connection.close()


async def settled() -> None:
    """Lets notifications committed so far reach the listener (a round trip is plenty)."""
    await asyncio.sleep(0.2)
