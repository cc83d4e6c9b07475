"""Real Socket.IO clients (python-socketio's), connected as a named user, recording every
event they receive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import socketio

from tests.support.polling import eventually


@dataclass
class Listener:
    client: socketio.AsyncClient
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refusals: list[Any] = field(default_factory=list)
    disconnects: list[Any] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def of(self, name: str, artwork_id: int | None = None) -> list[dict[str, Any]]:
        return [
            payload
            for event, payload in self.events
            if event == name and artwork_id in (None, payload.get("artwork_id"))
        ]

    async def received(
        self,
        name: str,
        *,
        artwork_id: int | None = None,
        count: int = 1,
        timeout: float = 15,  # noqa: ASYNC109 (bounds the polling)
    ) -> list[dict[str, Any]]:
        """Waits for `count` events `name` (about `artwork_id`), then returns them all."""
        return await eventually(
            lambda: asyncio.sleep(0, self.of(name, artwork_id)),
            lambda found: len(found) >= count,
            timeout=timeout,
            what=f"{count} x {name}",
        )

    async def watch(self, artwork_id: object) -> Any:
        return await self.client.call("watch_artwork", {"artwork_id": artwork_id}, timeout=10)

    async def unwatch(self, artwork_id: object) -> Any:
        return await self.client.call("unwatch_artwork", {"artwork_id": artwork_id}, timeout=10)


def new_listener() -> Listener:
    client = socketio.AsyncClient(reconnection=False, handle_sigint=False)
    listener = Listener(client)

    async def any_event(event: str, data: dict[str, Any]) -> None:
        listener.events.append((event, data))

    async def refused(data: Any = None) -> None:
        listener.refusals.append(data)

    async def disconnected(reason: Any = None) -> None:
        listener.disconnects.append(reason)

    client.on("*", any_event)
    client.on("connect_error", refused)
    client.on("disconnect", disconnected)
    return listener


async def connect(listener: Listener, url: str, auth: Any) -> None:
    await listener.client.connect(url, auth=auth, transports=["websocket"], wait_timeout=10)


@asynccontextmanager
async def listening(url: str, token: str) -> AsyncIterator[Listener]:
    listener = new_listener()
    await connect(listener, url, {"token": token})
    try:
        yield listener
    finally:
        await listener.client.disconnect()
