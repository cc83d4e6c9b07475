"""Each transition announces itself once, in its own transaction: never on a retry, a refusal
or a rollback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import pytest_asyncio
import stripe
from sqlmodel import col, delete, select
from temporalio.exceptions import ApplicationError

from activities.contracts import ExtendPaymentDeadline, RecordDecline, SettleCheckout
from activities.inventory import Inventory
from domain.announcements import LiveEventName, MailKind, payment_required
from domain.checkout import PaymentStatus
from infra.db import SessionFactory
from infra.queries import checkout_facts
from infra.tables import Bid, Notification
from tests.activities.test_inventory import reserved_and_opened
from tests.support.activities import TEST_ANNOUNCER, activity_env
from tests.support.factories import Auction, checkout_rows, make_user
from tests.support.notify_listener import Heard, listening, settled


@pytest_asyncio.fixture
async def heard(database_url: str) -> AsyncIterator[Heard]:
    async with listening(database_url) as listener:
        yield listener


async def queued(sessions: SessionFactory, bid_id: int) -> list[tuple[str, int]]:
    async with sessions() as session:
        rows = await session.exec(
            select(Notification).where(Notification.bid_id == bid_id).order_by("id")
        )
        return [(row.kind, row.recipient_id) for row in rows]


def names(heard: Heard, auction: Auction) -> list[LiveEventName]:
    return [event.name for event in heard.for_artwork(auction.artwork_id)]


async def test_opening_the_intent_tells_the_winner_once(
    sessions: SessionFactory, stripe_client: stripe.StripeClient, heard: Heard
) -> None:
    auction, _ = await reserved_and_opened(sessions, stripe_client)
    await settled()
    (event,) = heard.for_artwork(auction.artwork_id)
    assert event.name is LiveEventName.PAYMENT_REQUIRED
    assert event.users == (auction.buyer_id,)
    assert event.fields["amount"] == "103.30"
    assert await queued(sessions, auction.bid_id) == [("payment_required", auction.buyer_id)]
    assert heard.mail_wakeups >= 1


async def test_a_decline_retried_is_announced_once(
    sessions: SessionFactory, stripe_client: stripe.StripeClient, heard: Heard
) -> None:
    auction, _ = await reserved_and_opened(sessions, stripe_client)
    decline = RecordDecline(auction.bid_id, "card_declined", declines=1, event_id="evt_a")
    for _ in range(3):
        await activity_env().run(Inventory(sessions, TEST_ANNOUNCER).record_decline, decline)
    await settled()
    failed = [e for e in heard.for_artwork(auction.artwork_id) if e.name == "payment_failed"]
    assert len(failed) == 1
    assert failed[0].fields["reason"] == "card_declined"
    assert failed[0].fields["attempts"] == 1
    kinds = [kind for kind, _ in await queued(sessions, auction.bid_id)]
    assert kinds == [MailKind.PAYMENT_REQUIRED, MailKind.PAYMENT_FAILED]


async def test_a_sale_retried_is_announced_once_to_both_parties(
    sessions: SessionFactory, stripe_client: stripe.StripeClient, heard: Heard
) -> None:
    auction, intent_id = await reserved_and_opened(sessions, stripe_client)
    sale = SettleCheckout(auction.bid_id, auction.artwork_id, intent_id, charge_id="ch_1")
    for _ in range(2):
        await activity_env().run(Inventory(sessions, TEST_ANNOUNCER).complete_sale, sale)
    await settled()
    assert names(heard, auction) == [LiveEventName.PAYMENT_REQUIRED, LiveEventName.ARTWORK_SOLD]
    sold = heard.for_artwork(auction.artwork_id)[-1]
    assert set(sold.users) == {auction.buyer_id, auction.seller_id}
    assert (await queued(sessions, auction.bid_id))[1:] == [
        (MailKind.PAYMENT_RECEIPT, auction.buyer_id),
        (MailKind.ARTWORK_SOLD, auction.seller_id),
    ]


async def test_reopening_names_the_next_highest_bid_and_a_refused_one_announces_nothing(
    sessions: SessionFactory, stripe_client: stripe.StripeClient, heard: Heard
) -> None:
    auction, intent_id = await reserved_and_opened(sessions, stripe_client)
    rival = await make_user(sessions, "rival")
    async with sessions() as session:
        assert rival.id is not None
        session.add(Bid(artwork_id=auction.artwork_id, bidder_id=rival.id, amount=Decimal(60)))
        await session.commit()
    expiry = SettleCheckout(
        auction.bid_id, auction.artwork_id, intent_id, unpaid_status=PaymentStatus.EXPIRED
    )
    inventory = Inventory(sessions, TEST_ANNOUNCER)
    for _ in range(2):
        await activity_env().run(inventory.reopen_bidding, expiry)
    sale = SettleCheckout(auction.bid_id, auction.artwork_id, intent_id, charge_id="ch_1")
    with pytest.raises(ApplicationError):
        await activity_env().run(inventory.complete_sale, sale)  # a late sale is refused
    await settled()
    assert names(heard, auction) == [
        LiveEventName.PAYMENT_REQUIRED,
        LiveEventName.BIDDING_REOPENED,
    ]
    reopened = heard.for_artwork(auction.artwork_id)[-1]
    assert reopened.fields == {
        "bid_id": auction.bid_id,
        "reason": "expired",
        "highest_bid": "60.00",
    }
    assert (await queued(sessions, auction.bid_id))[1:] == [
        (MailKind.PAYMENT_EXPIRED, auction.buyer_id),
        (MailKind.BIDDING_REOPENED, auction.seller_id),
    ]


async def test_an_announcement_rolled_back_is_never_heard_nor_queued(
    sessions: SessionFactory, stripe_client: stripe.StripeClient, heard: Heard
) -> None:
    auction, _ = await reserved_and_opened(sessions, stripe_client)
    async with sessions() as session:
        facts = await checkout_facts(session, auction.bid_id)
        await session.exec(delete(Notification).where(col(Notification.bid_id) == auction.bid_id))
        await session.commit()
    heard.events.clear()
    announcement = payment_required(facts, datetime.now(UTC))
    async with sessions() as session:
        await TEST_ANNOUNCER.write(session, announcement)
        await session.rollback()
    await settled()
    assert heard.for_artwork(auction.artwork_id) == []
    assert await queued(sessions, auction.bid_id) == []
    async with sessions() as session:
        await TEST_ANNOUNCER.write(session, announcement)
        await session.commit()
    await settled()
    assert names(heard, auction) == [LiveEventName.PAYMENT_REQUIRED]
    assert len(await queued(sessions, auction.bid_id)) == 1


async def test_an_extension_retried_tells_the_winner_the_new_deadline_once(
    sessions: SessionFactory, stripe_client: stripe.StripeClient, heard: Heard
) -> None:
    auction, intent_id = await reserved_and_opened(sessions, stripe_client)
    original = (await checkout_rows(sessions, auction)).payment.expires_at
    extension = ExtendPaymentDeadline(
        bid_id=auction.bid_id,
        payment_intent_id=intent_id,
        extension_id="update-1",
        expires_at=original + timedelta(minutes=30),
        original_expires_at=original,
        minutes=30,
        reason="bank holiday",
        requested_by="ops@example.com",
        requested_at=datetime.now(UTC),
    )
    for _ in range(2):
        await activity_env().run(
            Inventory(sessions, TEST_ANNOUNCER).extend_payment_deadline, extension
        )
    await settled()
    extended = heard.for_artwork(auction.artwork_id)[-1]
    assert extended.name is LiveEventName.DEADLINE_EXTENDED
    assert extended.users == (auction.buyer_id,)
    assert extended.fields["expires_at"] == (original + timedelta(minutes=30)).isoformat()
    assert names(heard, auction).count(LiveEventName.DEADLINE_EXTENDED) == 1
    assert (await queued(sessions, auction.bid_id))[1:] == [
        (MailKind.DEADLINE_EXTENDED, auction.buyer_id)
    ]
