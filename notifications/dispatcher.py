"""Sends the queued notifications, each once, beside the Temporal worker.

A pass claims the due rows (see `infra/outbox.py`), then renders and sends them with no
transaction open, over a few SMTP connections each reused for several mails
(`notifications/sending.py`), and records the outcomes: the mails sent in one UPDATE once the
pass's sends are done, each failure on its own row, and the mails the pass had no time to
start released for the next one. Passes run when a transaction queues mail (`LISTEN
auction_mail` on a connection of its own, which is reopened whenever PostgreSQL drops it) and
every `poll_seconds` for the retries that fall due; a full batch is followed by another pass
at once.

Once each: rows are claimed with `SKIP LOCKED` under a lease longer than a whole pass, so two
dispatchers never hold one row. One window stays open, as with any SMTP client: the server
accepted the message and the process died (or PostgreSQL became unreachable for the whole
lease) before the row was marked sent. Since sent mails are marked together at the end of
their pass, that window now lasts from a message's acceptance to the end of its pass (at
worst twice SMTP_TIMEOUT_SECONDS, in practice the few milliseconds the pass's other sends
take). The row is sent again when its lease ends, under the same Message-ID, which lets mail
clients and the recipient's server recognise the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from types import TracebackType
from typing import Self

import asyncpg
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.mail_delivery import RetryPolicy
from infra.announcer import MAIL_CHANNEL
from infra.db import SessionFactory, asyncpg_dsn
from infra.outbox import ClaimedMail, claim_due, mark_sent, record_failure, release
from infra.settings import Settings
from notifications.render import MailRenderer, compose
from notifications.sending import Failure, PassClock, PassOutcome, Sender, send_claimed
from notifications.smtp import SmtpSender

log = logging.getLogger("notifications")

LISTENER_NAME = "auction-mail-dispatcher"
# What a pass may take beyond its sends: rendering, QUIT, and recording the outcomes through
# a database that is slow to answer.
LEASE_MARGIN = timedelta(seconds=30)
_DATABASE_ERRORS = (SQLAlchemyError, OSError, asyncpg.PostgresError, TimeoutError)


def send_window(settings: Settings) -> timedelta:
    """How long after its claim a pass may start a send: one SMTP_TIMEOUT_SECONDS.

    A connection sends its mails one after another, so a lease sized on one send no longer
    covers a pass; one sized on a whole batch (SMTP_TIMEOUT_SECONDS for each of its mails)
    would hold the mails of a dispatcher that died that long. Bounding when sends may start
    bounds the pass instead: each send keeps its whole SMTP_TIMEOUT_SECONDS, and the last one
    ends by twice that after the claim. Only a server slow enough to use up the window leaves
    mails unstarted, and those are released for the next pass without counting an attempt.
    """
    return timedelta(seconds=settings.smtp_timeout_seconds)


def lease_for(settings: Settings) -> timedelta:
    """A claim's lease: the send window, the last send's SMTP_TIMEOUT_SECONDS, LEASE_MARGIN."""
    return send_window(settings) + timedelta(seconds=settings.smtp_timeout_seconds) + LEASE_MARGIN


class MailDispatcher:
    """`async with MailDispatcher(...)`: runs until the block ends, then finishes the sends
    in flight (bounded by SMTP_TIMEOUT_SECONDS), releases the mails its pass had not started
    yet, and stops."""

    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        *,
        sender: Sender | None = None,
        poll_seconds: float = 5.0,
        batch_size: int = 20,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._sender = sender or SmtpSender(settings)
        self._renderer = MailRenderer(settings.public_base_url)
        self._policy = RetryPolicy(
            initial=timedelta(seconds=settings.mail_retry_initial_seconds),
            retry_for=timedelta(hours=settings.mail_retry_hours),
        )
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._send_window = send_window(settings)
        self._lease = lease_for(settings)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while LISTEN is in place (tests wait on it)

    # Running.

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self.run(), name="mail-dispatcher")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        if self._task is not None:
            await self._task

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen(), name="mail-listener")
        log.info(
            "Mail dispatcher sending through %s:%s",
            self._settings.smtp_host,
            self._settings.smtp_port,
        )
        try:
            while not self._stopping.is_set():
                # Cleared before the pass: a NOTIFY that arrives during it wakes the next one.
                self._wake.clear()
                try:
                    claimed = await self.dispatch_due()
                except _DATABASE_ERRORS as unavailable:
                    log.warning("Mail dispatcher cannot reach the database: %s", unavailable)
                    claimed = 0
                except Exception:  # a bug must cost a pass, never the dispatcher
                    log.exception("Mail dispatcher pass failed")
                    claimed = 0
                if claimed < self._batch_size:
                    await self._sleep(self._poll_seconds)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            log.info("Mail dispatcher stopped")

    async def dispatch_due(self) -> int:
        """One pass: claims the due mails, sends them, records the outcomes."""
        async with self._sessions() as session:
            claimed = await claim_due(session, limit=self._batch_size, lease=self._lease)
        if claimed:
            clock = PassClock(
                time.monotonic(),
                self._send_window.total_seconds(),
                stopping=self._stopping.is_set,
            )
            outcome = await send_claimed(
                claimed, sender=self._sender, build=self._message, clock=clock
            )
            await self._record_outcome(outcome, clock.claimed)
        return len(claimed)

    def _message(self, mail: ClaimedMail) -> EmailMessage:
        now = datetime.now(UTC)
        rendered = self._renderer.render(mail.kind, mail.context, now)
        name = mail.context.get("recipient_name")
        return compose(
            rendered,
            kind=mail.kind,
            message_id=mail.message_id,
            mail_from=self._settings.mail_from,
            to_email=mail.recipient_email,
            to_name=None if name is None else str(name),
            now=now,
        )

    # Recording what became of the mails.

    async def _record_outcome(self, outcome: PassOutcome, claimed: float) -> None:
        """The sent mails first, in one statement: that closes the documented window."""
        if outcome.sent:
            sent_ids = [mail.id for mail in outcome.sent]
            await self._record(
                lambda session: mark_sent(session, sent_ids),
                claimed,
                f"marking {len(sent_ids)} mail(s) sent; they are sent again when their lease ends",
            )
        writes = [self._failed(failure, claimed) for failure in outcome.failed]
        if outcome.unsent:
            writes.append(self._released(outcome.unsent, claimed))
        await asyncio.gather(*writes)

    async def _released(self, unsent: list[ClaimedMail], claimed: float) -> None:
        if not self._stopping.is_set():
            log.warning(
                "%d mail(s) not started within %g s of their claim (a slow SMTP server); "
                "released for the next pass",
                len(unsent),
                self._send_window.total_seconds(),
            )
        await self._record(
            lambda session: release(session, unsent),
            claimed,
            f"releasing {len(unsent)} mail(s); they are claimed again when their lease ends",
        )

    async def _failed(self, failure: Failure, claimed: float) -> None:
        mail, error = failure.mail, failure.error
        retry_at = None
        if not failure.permanent:
            retry_at = self._policy.next_attempt(
                attempts=mail.attempts, queued_at=mail.queued_at, failed_at=failure.at
            )
        if retry_at is None:
            why = "refused for good" if failure.permanent else "retried for MAIL_RETRY_HOURS"
            log.error(
                "Gave up on %s %s (notification %d) after %d attempt(s), %s: %s",
                mail.kind.value,
                mail.message_id,
                mail.id,
                mail.attempts,
                why,
                error,
            )
        else:
            log.warning(
                "Could not send %s %s (attempt %d), next at %s: %s",
                mail.kind.value,
                mail.message_id,
                mail.attempts,
                retry_at.isoformat(),
                error,
            )
        await self._record(
            lambda session: record_failure(session, mail, error, retry_at=retry_at),
            claimed,
            f"recording the failure of {mail.message_id}; it is tried again when its lease ends",
        )

    async def _record(
        self, write: Callable[[AsyncSession], Awaitable[object]], claimed: float, what: str
    ) -> None:
        """Writes an outcome, retrying a database that is away while the lease lasts (the
        longer it stays away, the likelier the documented resend)."""
        deadline = claimed + self._lease.total_seconds() - LEASE_MARGIN.total_seconds() / 2
        delay = 0.2
        while True:
            try:
                async with self._sessions() as session:
                    await write(session)
                return
            except _DATABASE_ERRORS as unavailable:
                if time.monotonic() + delay > deadline:
                    log.error("Gave up %s: %s", what, unavailable)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # Waking up.

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _listen(self) -> None:
        """Keeps a LISTEN connection open; reopens it after PostgreSQL dropped it."""
        dsn = asyncpg_dsn(self._settings.require_database_url())
        delay = 0.5
        while not self._stopping.is_set():
            try:
                connection = await asyncpg.connect(
                    dsn, timeout=10, server_settings={"application_name": LISTENER_NAME}
                )
            except Exception as unavailable:  # whatever it is, polling covers until we are back
                log.warning(
                    "Mail listener cannot connect (retry in %.1f s): %s", delay, unavailable
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            try:
                await self._hold(connection)
                log.warning("Mail listener lost its connection to PostgreSQL; reconnecting")
            except Exception as lost:
                log.warning("Mail listener lost its connection (%r); reconnecting", lost)
            finally:
                self.listening.clear()
                if not connection.is_closed():
                    connection.terminate()

    async def _hold(self, connection: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        await connection.add_listener(MAIL_CHANNEL, lambda *_: self._wake.set())
        self.listening.set()
        # Mail queued while nobody listened was announced to nobody: look now.
        self._wake.set()
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), timeout=30)
            if not lost.is_set():
                # A connection cut without a word (no RST) is only noticed by using it.
                await asyncio.wait_for(connection.fetchval("SELECT 1"), timeout=10)
