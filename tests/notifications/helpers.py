"""Queued emails and the rows that record them, for the dispatcher's tests."""

from __future__ import annotations

from dataclasses import replace

from sqlmodel import col, select

from domain.announcements import Announcement, Mail, MailKind
from infra.db import SessionFactory
from infra.queries import checkout_facts
from infra.settings import Settings
from infra.tables import Notification
from tests.support.activities import TEST_ANNOUNCER
from tests.support.factories import Auction, make_auction
from tests.support.stack import settings_for

TEST_MAIL_DOMAIN = "tests.example"


def mail_settings(database_url: str, smtp_port: int, **overrides: object) -> Settings:
    """A worker's settings with SMTP on 127.0.0.1:`smtp_port` and quick retries."""
    values: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_timeout_seconds": 5,
        "mail_retry_initial_seconds": 0.2,
    }
    values.update(overrides)
    # Stripe is not reached by a dispatcher: the port is the discard service's.
    return settings_for(database_url, "http://127.0.0.1:9", **values)


async def queue_mails(
    sessions: SessionFactory,
    count: int,
    *,
    email: str | None = None,
    auction: Auction | None = None,
) -> tuple[Auction, list[str]]:
    """`count` receipts for one bid, queued as a transition's transaction queues them;
    returns the auction and their Message-IDs."""
    auction = auction or await make_auction(sessions, "250.00")
    async with sessions() as session, session.begin():
        facts = await checkout_facts(session, auction.bid_id)
        buyer = facts.buyer if email is None else replace(facts.buyer, email=email)
        context = {**facts.mail_context(), "recipient_name": buyer.name, "charge_id": "ch_test"}
        mails = tuple(
            Mail(
                MailKind.PAYMENT_RECEIPT,
                f"bid-{auction.bid_id}-copy{number}",
                buyer,
                auction.bid_id,
                auction.artwork_id,
                context,
            )
            for number in range(count)
        )
        await TEST_ANNOUNCER.write(session, Announcement(mails=mails))
    return auction, [mail.message_id(TEST_MAIL_DOMAIN) for mail in mails]


async def rows_of(sessions: SessionFactory, bid_id: int) -> list[Notification]:
    async with sessions() as session:
        query = (
            select(Notification).where(Notification.bid_id == bid_id).order_by(col(Notification.id))
        )
        return list((await session.exec(query)).all())
