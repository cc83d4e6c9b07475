"""One dispatch pass's sends: the claimed mails go out over a few SMTP sessions, one message at
a time on each, and the pass says what became of every mail. Nothing is written here: the
dispatcher records the outcome.

A connection costs a TCP handshake, EHLO (and TLS and a login for a relay) and QUIT: reused
for the pass's mails, a checkout's three emails take one connection instead of three. A pass
opens one session for each `MAILS_PER_CONNECTION` mails (rounded up), side by side, so a full
batch goes out over a few connections at once rather than one after another on a single one.

Sends start only while the pass's send window is open (see the dispatcher's lease) and the
dispatcher is not stopping; the mails still waiting then are handed back unsent, to be
released for the next pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Protocol

from infra.outbox import ClaimedMail
from notifications.render import RenderFailed
from notifications.smtp import SendFailed

log = logging.getLogger("notifications")

MAILS_PER_CONNECTION = 5


class SendSession(Protocol):
    async def send(self, message: EmailMessage, recipient: str) -> None: ...


class Sender(Protocol):
    def session(self) -> AbstractAsyncContextManager[SendSession]: ...


@dataclass(frozen=True)
class Failure:
    mail: ClaimedMail
    error: str
    permanent: bool
    at: datetime  # on the database's clock, like the row's other times


@dataclass
class PassOutcome:
    sent: list[ClaimedMail] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    unsent: list[ClaimedMail] = field(default_factory=list)  # the send window closed first


def _never() -> bool:
    return False


@dataclass(frozen=True)
class PassClock:
    """The pass's times: `claimed` is `time.monotonic()` once the claim committed. The send
    window also closes when `stopping()` says so: a dispatcher told to stop finishes the
    sends it started and starts no more."""

    claimed: float
    send_window_seconds: float
    stopping: Callable[[], bool] = _never

    def window_open(self) -> bool:
        if self.stopping():
            return False
        return time.monotonic() < self.claimed + self.send_window_seconds

    def on_database_clock(self, mail: ClaimedMail) -> datetime:
        return mail.claimed_at + timedelta(seconds=time.monotonic() - self.claimed)


def connections_for(mail_count: int) -> int:
    """How many sessions a pass of `mail_count` mails opens: one for up to
    `MAILS_PER_CONNECTION`, one more for each further share."""
    return -(-mail_count // MAILS_PER_CONNECTION)


async def send_claimed(
    mails: Sequence[ClaimedMail],
    *,
    sender: Sender,
    build: Callable[[ClaimedMail], EmailMessage],
    clock: PassClock,
) -> PassOutcome:
    """Sends `mails` (each built by `build` just before it goes) and says what became of each.

    The sessions take the next waiting mail as they become free, so a slow or failing
    connection holds up its own message only.
    """
    waiting = deque(mails)
    outcome = PassOutcome()
    sessions = connections_for(len(mails))
    await asyncio.gather(
        *(_send_on_one_session(waiting, outcome, sender, build, clock) for _ in range(sessions))
    )
    outcome.unsent = list(waiting)
    return outcome


async def _send_on_one_session(
    waiting: deque[ClaimedMail],
    outcome: PassOutcome,
    sender: Sender,
    build: Callable[[ClaimedMail], EmailMessage],
    clock: PassClock,
) -> None:
    try:
        async with sender.session() as smtp:
            while waiting and clock.window_open():
                mail = waiting.popleft()
                failure = await _send_one(smtp, mail, build, clock)
                if failure is None:
                    outcome.sent.append(mail)
                else:
                    outcome.failed.append(failure)
    except Exception:  # closing a session is no send: the outcomes gathered so far stand
        log.exception("An SMTP session failed outside a send")


async def _send_one(
    smtp: SendSession,
    mail: ClaimedMail,
    build: Callable[[ClaimedMail], EmailMessage],
    clock: PassClock,
) -> Failure | None:
    """Sends one mail; returns why it failed, or None once the server accepted it."""

    def failure(error: str, *, permanent: bool) -> Failure:
        return Failure(mail, error, permanent, clock.on_database_clock(mail))

    try:
        message = build(mail)
    except (RenderFailed, ValueError) as broken:  # the row itself: no retry mends it
        return failure(str(broken), permanent=True)
    try:
        await smtp.send(message, mail.recipient_email)
    except SendFailed as failed:
        return failure(failed.detail, permanent=failed.permanent)
    except Exception as unexpected:  # a bug must cost a retry, never the pass
        log.exception("Sending %s failed unexpectedly", mail.message_id)
        return failure(repr(unexpected), permanent=False)
    log.info("Sent %s %s (attempt %d)", mail.kind.value, mail.message_id, mail.attempts)
    return None
