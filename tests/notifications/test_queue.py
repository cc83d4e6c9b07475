"""Transitions queue their emails in their own transaction: a retried activity queues none
again, because each row is named by its transition."""

from __future__ import annotations

import stripe

from activities.contracts import RecordDecline, ReserveArtwork, SettleCheckout
from activities.inventory import Inventory
from activities.stripe_payments import StripePayments
from tests.notifications.conftest import MailDatabase
from tests.notifications.helpers import rows_of
from tests.support.activities import TEST_ANNOUNCER, activity_env, open_request
from tests.support.factories import make_auction


async def test_retried_activities_queue_each_mail_once(
    mail_database: MailDatabase, stripe_client: stripe.StripeClient
) -> None:
    sessions = mail_database.sessions
    auction = await make_auction(sessions, "100.00")
    inventory = Inventory(sessions, TEST_ANNOUNCER)
    payments = StripePayments(stripe_client, sessions, TEST_ANNOUNCER)
    await activity_env().run(
        inventory.reserve_artwork, ReserveArtwork(auction.artwork_id, auction.bid_id)
    )
    for attempt in (1, 2):
        opened = await activity_env(attempt).run(
            payments.open_payment_intent, open_request(auction)
        )
    sale = SettleCheckout(
        auction.bid_id, auction.artwork_id, opened.payment_intent_id, charge_id="ch_once"
    )
    for attempt in (1, 2, 3):
        await activity_env(attempt).run(inventory.complete_sale, sale)
    kinds = [row.kind for row in await rows_of(sessions, auction.bid_id)]
    assert sorted(kinds) == ["artwork_sold", "payment_receipt", "payment_required"]


async def test_a_decline_and_a_reopening_retried_queue_once_and_a_new_decline_again(
    mail_database: MailDatabase, stripe_client: stripe.StripeClient
) -> None:
    sessions = mail_database.sessions
    auction = await make_auction(sessions, "100.00")
    inventory = Inventory(sessions, TEST_ANNOUNCER)
    await activity_env().run(
        inventory.reserve_artwork, ReserveArtwork(auction.artwork_id, auction.bid_id)
    )
    opened = await activity_env().run(
        StripePayments(stripe_client, sessions, TEST_ANNOUNCER).open_payment_intent,
        open_request(auction),
    )
    first = RecordDecline(auction.bid_id, "card_declined", declines=1, event_id="evt_a")
    second = RecordDecline(auction.bid_id, "insufficient_funds", declines=2, event_id="evt_b")
    for decline in (first, first, second, second):
        await activity_env().run(inventory.record_decline, decline)
    expiry = SettleCheckout(auction.bid_id, auction.artwork_id, opened.payment_intent_id)
    for attempt in (1, 2):
        await activity_env(attempt).run(inventory.reopen_bidding, expiry)
    rows = await rows_of(sessions, auction.bid_id)
    assert sorted(row.kind for row in rows) == [
        "bidding_reopened",
        "payment_expired",
        "payment_failed",
        "payment_failed",
        "payment_required",
    ]
    reasons = sorted(row.context["reason"] for row in rows if row.kind == "payment_failed")
    assert reasons == ["card_declined", "insufficient_funds"]
