"""One dispatch pass against a real PostgreSQL and a real SMTP server: its mails share a few
connections and are marked sent in one statement, and a connection that drops, a recipient
refused or a server that stops answering costs only the mail it concerns."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from domain.announcements import MailStatus
from infra.tables import Notification
from notifications.dispatcher import MailDispatcher
from notifications.sending import connections_for
from tests.notifications.conftest import MailDatabase
from tests.notifications.helpers import mail_settings, queue_mails, rows_of
from tests.support.polling import eventually
from tests.support.smtp_server import smtp_server
from tests.support.statements import Statements


def by_message_id(rows: list[Notification]) -> dict[str, Notification]:
    return {row.message_id: row for row in rows}


@pytest.mark.parametrize(("mails", "connections"), [(3, 1), (12, 3)])
async def test_a_pass_shares_its_connections_and_marks_its_mails_sent_at_once(
    mail_database: MailDatabase, mails: int, connections: int
) -> None:
    statements = Statements(mail_database.engine)
    async with smtp_server() as inbox:
        settings = mail_settings(mail_database.url, inbox.port)
        auction, message_ids = await queue_mails(mail_database.sessions, mails)
        dispatcher = MailDispatcher(settings, mail_database.sessions)
        mark, control_mark = len(statements.sent), len(statements.transaction_control)
        assert await dispatcher.dispatch_due() == mails
        sent_statements = statements.since(mark)
        # Less asyncpg's queries of its own: a connection's first array parameter makes it
        # look the type up (once per connection).
        transactions = [
            word
            for word in await statements.transaction_control_since(control_mark)
            if word in ("BEGIN", "COMMIT", "ROLLBACK")
        ]
        received = inbox.about(auction.bid_id)
        conversations = inbox.conversations
    assert Counter(mail.message_id for mail in received) == Counter(message_ids)
    assert conversations == connections == connections_for(mails)
    # The claim, then every mail of the pass marked sent by one UPDATE.
    assert sent_statements == ["WITH", "UPDATE"]
    assert transactions == ["BEGIN", "COMMIT"] * 2
    rows = await rows_of(mail_database.sessions, auction.bid_id)
    assert [row.status for row in rows] == [MailStatus.SENT] * mails
    assert all(row.sent_at is not None and row.attempts == 1 for row in rows)


async def test_a_connection_dropped_mid_pass_fails_only_the_mail_in_flight(
    mail_database: MailDatabase,
) -> None:
    async with smtp_server(hang_up_on_messages={2}) as inbox:
        settings = mail_settings(mail_database.url, inbox.port)
        auction, message_ids = await queue_mails(mail_database.sessions, 3)
        dispatcher = MailDispatcher(settings, mail_database.sessions)
        assert await dispatcher.dispatch_due() == 3
        after_the_pass = by_message_id(await rows_of(mail_database.sessions, auction.bid_id))
        received_in_the_pass = [mail.message_id for mail in inbox.about(auction.bid_id)]
        conversations_in_the_pass = inbox.conversations
        # The mail the server hung up on is due again after MAIL_RETRY_INITIAL_SECONDS.
        await eventually(
            dispatcher.dispatch_due, lambda claimed: claimed == 1, what="the dropped mail's retry"
        )
        received = inbox.about(auction.bid_id)
    first, dropped, last = message_ids
    # The mail after the drop went out in the same pass, over a fresh connection.
    assert received_in_the_pass == [first, last]
    assert conversations_in_the_pass == 2
    assert [after_the_pass[i].status for i in message_ids] == [
        MailStatus.SENT,
        MailStatus.PENDING,
        MailStatus.SENT,
    ]
    error = after_the_pass[dropped].last_error
    assert error is not None and "SMTPServerDisconnected" in error, error
    assert after_the_pass[dropped].sent_at is None
    assert Counter(mail.message_id for mail in received) == Counter(message_ids)
    rows = by_message_id(await rows_of(mail_database.sessions, auction.bid_id))
    assert all(row.status == MailStatus.SENT for row in rows.values())
    assert [rows[i].attempts for i in message_ids] == [1, 2, 1]


async def test_a_refused_recipient_fails_only_its_mail_and_keeps_the_connection(
    mail_database: MailDatabase,
) -> None:
    sessions = mail_database.sessions
    async with smtp_server(refused={"gone@example.com"}) as inbox:
        settings = mail_settings(mail_database.url, inbox.port)
        # Queued one after another: claimed in this order, the refused one in the middle.
        before, (first,) = await queue_mails(sessions, 1)
        refused, _ = await queue_mails(sessions, 1, email="gone@example.com")
        after, (last,) = await queue_mails(sessions, 1)
        assert await MailDispatcher(settings, sessions).dispatch_due() == 3
        delivered = [mail.message_id for mail in inbox.snapshot()]
        conversations = inbox.conversations
    assert delivered == [first, last]
    assert conversations == 1  # the refusal was answered with RSET, not a new connection
    (gone,) = await rows_of(sessions, refused.bid_id)
    assert gone.status == MailStatus.FAILED and gone.attempts == 1
    assert gone.last_error is not None and "550" in gone.last_error
    for auction in (before, after):
        (row,) = await rows_of(sessions, auction.bid_id)
        assert row.status == MailStatus.SENT


async def test_a_server_that_stops_answering_costs_one_attempt_and_the_rest_wait_untried(
    mail_database: MailDatabase,
) -> None:
    """The first mail's RCPT gets no answer within SMTP_TIMEOUT_SECONDS: it fails, and the
    pass, whose sends may start only during that first SMTP_TIMEOUT_SECONDS, gives the other
    two back without counting an attempt. The next pass sends all three."""
    async with smtp_server(stalled_recipients={1: 3.0}) as inbox:
        settings = mail_settings(mail_database.url, inbox.port, smtp_timeout_seconds=1)
        auction, message_ids = await queue_mails(mail_database.sessions, 3)
        dispatcher = MailDispatcher(settings, mail_database.sessions)
        started = time.monotonic()
        assert await dispatcher.dispatch_due() == 3
        took = time.monotonic() - started
        after_the_pass = by_message_id(await rows_of(mail_database.sessions, auction.bid_id))
        received_in_the_pass = inbox.about(auction.bid_id)

        async def next_pass() -> list[Notification]:
            await dispatcher.dispatch_due()
            return await rows_of(mail_database.sessions, auction.bid_id)

        rows = await eventually(
            next_pass,
            lambda rows: all(row.status == MailStatus.SENT for row in rows),
            what="every mail sent",
        )
        received = inbox.about(auction.bid_id)
    assert took < 2.5, f"the pass took {took:.1f} s"  # not the server's 3 s
    assert received_in_the_pass == []
    stalled, *untried = message_ids
    assert after_the_pass[stalled].status == MailStatus.PENDING
    assert after_the_pass[stalled].attempts == 1
    assert after_the_pass[stalled].last_error == (
        f"no answer within 1 s from 127.0.0.1:{inbox.port}"
    )
    for message_id in untried:
        row = after_the_pass[message_id]
        assert (row.status, row.attempts, row.last_error) == (MailStatus.PENDING, 0, None)
    assert Counter(mail.message_id for mail in received) == Counter(message_ids)
    assert [by_message_id(rows)[i].attempts for i in message_ids] == [2, 1, 1]
