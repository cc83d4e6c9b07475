"""Writes a transition's announcement inside the transaction that makes the transition.

Live events go out with `NOTIFY`, which PostgreSQL delivers at commit and drops on rollback;
every API replica listens and emits them to its own sockets. Emails are queued as
`notifications` rows named by their Message-ID, so a repeated transition queues nothing new;
a second `NOTIFY` wakes the mail dispatchers.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.announcements import Announcement, mail_domain
from infra.tables import Notification

LIVE_EVENTS_CHANNEL = "auction_events"
MAIL_CHANNEL = "auction_mail"

_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


class Announcer:
    def __init__(self, mail_from: str) -> None:
        self._domain = mail_domain(mail_from)

    async def write(self, session: AsyncSession, announcement: Announcement) -> None:
        """Publishes and queues the announcement in `session`'s open transaction."""
        for event in announcement.events:
            await session.exec(  # type: ignore[call-overload]
                _NOTIFY, params={"channel": LIVE_EVENTS_CHANNEL, "payload": event.to_wire()}
            )
        if not announcement.mails:
            return
        rows = [
            {
                "kind": mail.kind.value,
                "message_id": mail.message_id(self._domain),
                "recipient_id": mail.recipient.user_id,
                "recipient_email": mail.recipient.email,
                "bid_id": mail.bid_id,
                "artwork_id": mail.artwork_id,
                "context": dict(mail.context),
            }
            for mail in announcement.mails
        ]
        table = Notification.__table__  # type: ignore[attr-defined]
        statement = (
            insert(table)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[table.c.message_id])
            .returning(table.c.id)
        )
        queued = (await session.exec(statement)).all()
        if queued:
            await session.exec(  # type: ignore[call-overload]
                _NOTIFY, params={"channel": MAIL_CHANNEL, "payload": ""}
            )
