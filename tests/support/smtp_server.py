"""A real SMTP server in the test process (aiosmtpd, on its own thread) that keeps what it
receives: the envelope and the parsed message, as a mail client would read it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Collection, Mapping
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
    """What the server received, and how it misbehaves: the faults count the messages (or
    their recipients) the server was handed since it started, from 1."""

    port: int
    received: list[Received] = field(default_factory=list)
    refused_recipients: set[str] = field(default_factory=set)
    delay_seconds: float = 0.0
    # The n-th message's DATA is answered by hanging up: the message is not kept.
    hang_up_on_messages: set[int] = field(default_factory=set)
    # The n-th RCPT is answered only after this many seconds.
    stalled_recipients: dict[int, float] = field(default_factory=dict)
    _conversations: int = 0
    _messages: int = 0
    _recipients: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def conversations(self) -> int:
        """How many SMTP conversations clients opened (each starts with EHLO or HELO)."""
        with self._lock:
            return self._conversations

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

    async def handle_HELO(  # noqa: N802 (aiosmtpd's hook names)
        self, server: Any, session: Any, envelope: Any, hostname: str
    ) -> str:
        self._greeted(session, hostname)
        return f"250 {server.hostname}"

    async def handle_EHLO(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self._greeted(session, hostname)
        return responses

    def _greeted(self, session: Any, hostname: str) -> None:
        session.host_name = hostname  # the hook's duty, in aiosmtpd
        with self._inbox._lock:
            self._inbox._conversations += 1

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self._inbox._lock:
            self._inbox._recipients += 1
            stall = self._inbox.stalled_recipients.get(self._inbox._recipients, 0.0)
        if stall:
            await asyncio.sleep(stall)
        if address in self._inbox.refused_recipients:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self._inbox._lock:
            self._inbox._messages += 1
            hang_up = self._inbox._messages in self._inbox.hang_up_on_messages
        if hang_up:
            server.transport.abort()  # no answer, and nothing kept
            return "421 4.4.2 hung up"  # written to nobody
        if self._inbox.delay_seconds:
            await asyncio.sleep(self._inbox.delay_seconds)
        message = message_from_bytes(envelope.content, policy=policy.default)
        received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), message)
        with self._inbox._lock:
            self._inbox.received.append(received)
        return "250 Message accepted"


@asynccontextmanager
async def smtp_server(
    port: int | None = None,
    *,
    refused: Collection[str] = (),
    delay_seconds: float = 0.0,
    hang_up_on_messages: Collection[int] = (),
    stalled_recipients: Mapping[int, float] | None = None,
) -> AsyncIterator[Inbox]:
    """Listens on 127.0.0.1:`port` (a free one by default) until the block ends."""
    inbox = Inbox(
        port or free_port(),
        refused_recipients=set(refused),
        delay_seconds=delay_seconds,
        hang_up_on_messages=set(hang_up_on_messages),
        stalled_recipients=dict(stalled_recipients or {}),
    )
    controller = Controller(_RecordingHandler(inbox), hostname="127.0.0.1", port=inbox.port)
    # Starting waits for the server's thread to answer: not on the event loop.
    await asyncio.to_thread(controller.start)
    try:
        yield inbox
    finally:
        await asyncio.to_thread(controller.stop)
