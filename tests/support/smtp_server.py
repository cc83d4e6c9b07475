"""A real SMTP server in the test process (aiosmtpd, on its own thread) that keeps what it
receives: the envelope and the parsed message, as a mail client would read it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

from aiosmtpd.controller import Controller

from devstack.processes import free_port
from notifications.render import NOTIFICATION_HEADER
from tests.support.polling import eventually


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def kind(self) -> str:
        return str(self.message[NOTIFICATION_HEADER])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        assert body.get_content_type() == f"text/{subtype}"
        return str(cast(EmailMessage, body).get_content())

    @property
    def text(self) -> str:
        return self.part("plain")

    @property
    def html(self) -> str:
        return self.part("html")


@dataclass
class Inbox:
    port: int
    received: list[Received] = field(default_factory=list)
    refused_recipients: set[str] = field(default_factory=set)
    delay_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def about(self, bid_id: int) -> list[Received]:
        """What was received about one bid (Message-IDs name the bid, e.g. `.bid-12.`)."""
        markers = (f".bid-{bid_id}.", f".bid-{bid_id}-")
        return [m for m in self.snapshot() if any(mark in m.message_id for mark in markers)]

    async def wait_for(
        self,
        until: Callable[[list[Received]], bool],
        *,
        timeout: float = 20.0,  # noqa: ASYNC109 (a bound on polling)
        what: str = "emails",
    ) -> list[Received]:
        async def probe() -> list[Received]:
            return self.snapshot()

        return await eventually(probe, until, timeout=timeout, what=what)


class _RecordingHandler:
    def __init__(self, inbox: Inbox) -> None:
        self._inbox = inbox

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook names)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self._inbox.refused_recipients:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self._inbox.delay_seconds:
            await asyncio.sleep(self._inbox.delay_seconds)
        message = message_from_bytes(envelope.content, policy=policy.default)
        received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), message)
        with self._inbox._lock:
            self._inbox.received.append(received)
        return "250 Message accepted"


@asynccontextmanager
async def smtp_server(
    port: int | None = None, *, refused: Collection[str] = (), delay_seconds: float = 0.0
) -> AsyncIterator[Inbox]:
    """Listens on 127.0.0.1:`port` (a free one by default) until the block ends."""
    inbox = Inbox(port or free_port(), refused_recipients=set(refused), delay_seconds=delay_seconds)
    controller = Controller(_RecordingHandler(inbox), hostname="127.0.0.1", port=inbox.port)
    # Starting waits for the server's thread to answer: not on the event loop.
    await asyncio.to_thread(controller.start)
    try:
        yield inbox
    finally:
        await asyncio.to_thread(controller.stop)
