"""The dispatcher against a real PostgreSQL and a real SMTP server: once each, even with two
dispatchers, a crash mid-send, a dropped LISTEN connection or a refusing server."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import text

from domain.announcements import MailStatus
from infra.outbox import claim_due
from infra.settings import Settings
from notifications.dispatcher import LISTENER_NAME, MailDispatcher
from notifications.sending import SendSession
from notifications.smtp import SmtpSender
from tests.notifications.conftest import MailDatabase
from tests.notifications.helpers import mail_settings, queue_mails, rows_of
from tests.support.polling import eventually
from tests.support.smtp_server import smtp_server


class CountingSender:
    """The real sender, counting what the server accepted from it."""

    def __init__(self, settings: Settings) -> None:
        self._smtp = SmtpSender(settings)
        self.sent: list[str] = []

    @asynccontextmanager
    async def session(self) -> AsyncIterator[SendSession]:
        async with self._smtp.session() as smtp:
            yield _CountingSession(smtp, self.sent)


class _CountingSession:
    def __init__(self, smtp: SendSession, sent: list[str]) -> None:
        self._smtp = smtp
        self._sent = sent

    async def send(self, message: EmailMessage, recipient: str) -> None:
        await self._smtp.send(message, recipient)
        self._sent.append(str(message["Message-ID"]))


async def all_rows(db: MailDatabase, bid_id: int, status: MailStatus, count: int) -> None:
    await eventually(
        lambda: rows_of(db.sessions, bid_id),
        lambda rows: len(rows) == count and all(row.status == status for row in rows),
        what=f"{count} rows {status}",
    )


async def test_two_dispatchers_send_each_mail_once(mail_database: MailDatabase) -> None:
    async with smtp_server(delay_seconds=0.02) as inbox:
        settings = mail_settings(mail_database.url, inbox.port)
        senders = [CountingSender(settings), CountingSender(settings)]
        first = MailDispatcher(settings, mail_database.sessions, sender=senders[0], batch_size=4)
        second = MailDispatcher(settings, mail_database.sessions, sender=senders[1], batch_size=4)
        async with first, second:
            await asyncio.wait_for(first.listening.wait(), 10)
            await asyncio.wait_for(second.listening.wait(), 10)
            auction, message_ids = await queue_mails(mail_database.sessions, 40)
            await all_rows(mail_database, auction.bid_id, MailStatus.SENT, 40)
        received = Counter(mail.message_id for mail in inbox.about(auction.bid_id))
    assert received == Counter(message_ids)  # every one, none twice
    assert senders[0].sent and senders[1].sent  # both took their share
    assert not set(senders[0].sent) & set(senders[1].sent)
    rows = await rows_of(mail_database.sessions, auction.bid_id)
    assert {row.attempts for row in rows} == {1}
    assert all(row.sent_at is not None for row in rows)


async def test_a_mail_claimed_by_a_dispatcher_that_died_is_sent_again_after_its_lease(
    mail_database: MailDatabase,
) -> None:
    """The one window left open: the server accepted the message, the process died before
    marking the row. The copy goes out under the same Message-ID once the lease ends."""
    async with smtp_server() as inbox:
        settings = mail_settings(mail_database.url, inbox.port)
        auction, (message_id,) = await queue_mails(mail_database.sessions, 1)
        async with mail_database.sessions() as session:
            (claimed,) = await claim_due(session, limit=10, lease=timedelta(seconds=2))
        assert claimed.message_id == message_id and claimed.attempts == 1
        message = EmailMessage()
        message["Message-ID"] = claimed.message_id
        message["Subject"] = "sent by the dispatcher that then died"
        message.set_content("accepted, never marked")
        await SmtpSender(settings).send(message, claimed.recipient_email)

        survivor = MailDispatcher(settings, mail_database.sessions, poll_seconds=0.5)
        assert await survivor.dispatch_due() == 0  # the lease still runs: not taken
        async with survivor:
            await all_rows(mail_database, auction.bid_id, MailStatus.SENT, 1)
        copies = inbox.about(auction.bid_id)
    assert [mail.message_id for mail in copies] == [message_id, message_id]
    (row,) = await rows_of(mail_database.sessions, auction.bid_id)
    assert row.attempts == 2


async def test_a_recipient_refused_for_good_fails_at_once(mail_database: MailDatabase) -> None:
    async with smtp_server(refused={"gone@example.com"}) as inbox:
        settings = mail_settings(mail_database.url, inbox.port)
        auction, _ = await queue_mails(mail_database.sessions, 1, email="gone@example.com")
        async with MailDispatcher(settings, mail_database.sessions):
            await all_rows(mail_database, auction.bid_id, MailStatus.FAILED, 1)
        assert inbox.about(auction.bid_id) == []
    (row,) = await rows_of(mail_database.sessions, auction.bid_id)
    assert row.attempts == 1
    assert row.last_error is not None and "550" in row.last_error


async def test_stopping_finishes_the_send_in_flight_and_gives_back_the_others(
    mail_database: MailDatabase,
) -> None:
    async with smtp_server(delay_seconds=1.0) as inbox:
        settings = mail_settings(mail_database.url, inbox.port)
        dispatcher = MailDispatcher(settings, mail_database.sessions)
        async with dispatcher:
            await asyncio.wait_for(dispatcher.listening.wait(), 10)
            auction, message_ids = await queue_mails(mail_database.sessions, 3)
            await eventually(
                lambda: rows_of(mail_database.sessions, auction.bid_id),
                lambda rows: all(row.attempts == 1 for row in rows),
                what="the mails claimed",
            )
        # The block waited for the server's answer to the send it had started (one connection,
        # one message at a time, each taking the server 1 s) and recorded it; the mails not
        # started yet were given back, their attempt not counted.
        delivered = {mail.message_id for mail in inbox.about(auction.bid_id)}
        rows = await rows_of(mail_database.sessions, auction.bid_id)
        assert 1 <= len(delivered) < 3
        assert {row.message_id for row in rows if row.status == MailStatus.SENT} == delivered
        for row in rows:
            if row.message_id not in delivered:
                assert (row.status, row.attempts, row.last_error) == (MailStatus.PENDING, 0, None)
        # The dispatcher that takes over sends them, at once.
        async with MailDispatcher(settings, mail_database.sessions):
            await all_rows(mail_database, auction.bid_id, MailStatus.SENT, 3)
        received = Counter(mail.message_id for mail in inbox.about(auction.bid_id))
    assert received == Counter(message_ids)


async def test_the_listener_comes_back_after_postgres_drops_its_connection(
    mail_database: MailDatabase,
) -> None:
    async with smtp_server() as inbox:
        settings = mail_settings(mail_database.url, inbox.port)
        # Polling is off in practice: only a NOTIFY can wake this dispatcher.
        dispatcher = MailDispatcher(settings, mail_database.sessions, poll_seconds=600)
        async with dispatcher:
            await asyncio.wait_for(dispatcher.listening.wait(), 10)
            async with mail_database.sessions() as session:
                killed = await session.exec(  # type: ignore[call-overload]
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name AND datname = current_database()"
                    ),
                    params={"name": LISTENER_NAME},
                )
                assert killed.scalars().all() == [True]
            auction, message_ids = await queue_mails(mail_database.sessions, 2)
            await inbox.wait_for(
                lambda _: len(inbox.about(auction.bid_id)) == 2,
                timeout=15,
                what="mails queued around the dropped connection",
            )
            assert dispatcher.listening.is_set()
            # And the new connection is listening: the next transaction wakes it too.
            later, more = await queue_mails(mail_database.sessions, 1)
            await inbox.wait_for(lambda _: len(inbox.about(later.bid_id)) == 1, timeout=10)
    assert sorted(m.message_id for m in inbox.about(auction.bid_id)) == sorted(message_ids)
    assert [m.message_id for m in inbox.about(later.bid_id)] == more


async def test_a_row_that_cannot_become_a_mail_fails_at_once(mail_database: MailDatabase) -> None:
    async with smtp_server() as inbox:
        settings = mail_settings(mail_database.url, inbox.port)
        auction, _ = await queue_mails(mail_database.sessions, 1)
        async with mail_database.sessions() as session, session.begin():
            await session.exec(  # type: ignore[call-overload]
                text("UPDATE notifications SET context = context - 'currency' WHERE bid_id = :b"),
                params={"b": auction.bid_id},
            )
        async with MailDispatcher(settings, mail_database.sessions):
            await all_rows(mail_database, auction.bid_id, MailStatus.FAILED, 1)
        assert inbox.about(auction.bid_id) == []
    (row,) = await rows_of(mail_database.sessions, auction.bid_id)
    assert row.attempts == 1
    assert row.last_error is not None and "cannot render payment_receipt" in row.last_error
