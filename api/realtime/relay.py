"""Hears what committed on PostgreSQL's live-events channel and hands it to the sockets.

A connection of its own, outside the SQLAlchemy pool: a pooled connection would be handed
to requests and lose its LISTEN. Notifications arrive in commit order; one consumer emits
them in that order. While the connection is down this replica hears nothing (NOTIFY keeps
nothing for a listener that is away); it logs the loss, reconnects with a growing wait, and
its clients catch up through the REST endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable

import asyncpg

from domain.announcements import LiveEvent
from infra.announcer import LIVE_EVENTS_CHANNEL

log = logging.getLogger(__name__)

Deliver = Callable[[LiveEvent], Awaitable[None]]


def application_name() -> str:
    """How the listening connection shows in pg_stat_activity: `client_addr` names the host,
    the pid the process on it."""
    return f"auction-api live events (pid {os.getpid()})"


class Relay:
    """Listens from `start` to `stop`, passing each event to `deliver`, one at a time."""

    def __init__(
        self,
        dsn: str,
        deliver: Deliver,
        *,
        first_retry_seconds: float = 0.5,
        longest_retry_seconds: float = 30.0,
        check_every_seconds: float = 15.0,
        connect_timeout_seconds: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._deliver = deliver
        self._first_retry = first_retry_seconds
        self._longest_retry = longest_retry_seconds
        self._check_every = check_every_seconds
        self._connect_timeout = connect_timeout_seconds
        self._inbox: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._tried = asyncio.Event()
        self._listened_before = False

    async def start(self) -> None:
        """Returns once the first attempt to listen succeeded or failed: with PostgreSQL up,
        every event committed after the app started reaches its sockets; with it down, the
        API still starts and the relay keeps trying."""
        self._tasks = [
            asyncio.create_task(self._listen(), name="live-events-listen"),
            asyncio.create_task(self._emit(), name="live-events-emit"),
        ]
        await self._tried.wait()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                connection = await asyncpg.connect(
                    self._dsn,
                    timeout=self._connect_timeout,
                    server_settings={"application_name": application_name()},
                )
            except Exception as error:  # whatever it was, the next attempt may succeed
                self._tried.set()
                wait = self._backoff(failures)
                failures += 1
                log.warning(
                    "Live events: cannot listen on PostgreSQL (%s); retrying in %.1f s",
                    _describe(error),
                    wait,
                )
                await asyncio.sleep(wait)
                continue
            failures = 0
            try:
                await self._hold(connection)
            finally:
                connection.terminate()
            # PostgreSQL may well be back at once (a killed backend, a failover); the short
            # pause only keeps a connection that drops as soon as it opens from spinning.
            await asyncio.sleep(self._first_retry)

    async def _hold(self, connection: asyncpg.Connection) -> None:
        """Listens until the connection is lost, checking on it now and then: a peer that
        vanished without closing (a network cut) is only noticed by asking."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        try:
            await connection.add_listener(LIVE_EVENTS_CHANNEL, self._received)
            if self._listened_before:
                log.info("Live events: listening on PostgreSQL again")
            self._listened_before = True
            self._tried.set()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._check_every):
                        await lost.wait()
                if not lost.is_set():
                    await connection.fetchval("SELECT 1", timeout=self._connect_timeout)
            cause = "closed"
        except Exception as error:  # the connection failed; listening again is the remedy
            self._tried.set()
            cause = _describe(error)
        log.warning(
            "Live events: the connection to PostgreSQL was lost (%s); events committed "
            "until it is back are not emitted by this replica",
            cause,
        )

    def _received(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        """Called by asyncpg as each notification is read: it only hands it over."""
        self._inbox.put_nowait(payload)

    async def _emit(self) -> None:
        while True:
            payload = await self._inbox.get()
            try:
                event = LiveEvent.from_wire(payload)
            except (ValueError, KeyError, TypeError) as error:
                log.error("Live events: an unreadable notification is skipped (%s)", error)
                continue
            try:
                await self._deliver(event)
            except Exception:
                # One socket's trouble must not stop the events of every other.
                log.exception("Live events: emitting %s failed", event.event_id)

    def _backoff(self, failures: int) -> float:
        return float(min(self._longest_retry, self._first_retry * 2**failures))


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
