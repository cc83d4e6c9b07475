"""What the checkout's activities send PostgreSQL on the paid path: each step one transaction
(or none for a lookup), and no statement that reads again what the step already read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
import stripe

from activities.contracts import ReserveArtwork, SettleCheckout
from activities.inventory import Inventory
from activities.stripe_payments import StripePayments
from infra.db import SessionFactory, create_engine, session_factory
from infra.queries import checkout_facts
from tests.support.activities import TEST_ANNOUNCER, activity_env, open_request
from tests.support.factories import make_auction
from tests.support.statements import Statements


@pytest_asyncio.fixture
async def watched(database_url: str) -> AsyncIterator[tuple[SessionFactory, Statements]]:
    engine = create_engine(database_url)
    yield session_factory(engine), Statements(engine)
    await engine.dispose()


async def test_opening_the_intent_is_one_transaction_and_its_lookup_none(
    watched: tuple[SessionFactory, Statements], stripe_client: stripe.StripeClient
) -> None:
    sessions, statements = watched
    auction = await make_auction(sessions)
    trips = len(statements.transaction_control)
    await activity_env().run(
        StripePayments(stripe_client, sessions, TEST_ANNOUNCER).open_payment_intent,
        open_request(auction),
    )
    # The lookup of an intent an earlier attempt recorded is one statement on its own.
    assert await statements.transaction_control_since(trips) == ["BEGIN", "COMMIT"]


async def test_what_a_checkout_is_about_is_read_in_one_statement(
    watched: tuple[SessionFactory, Statements], stripe_client: stripe.StripeClient
) -> None:
    sessions, statements = watched
    auction = await make_auction(sessions)
    async with sessions() as session:
        mark = len(statements.sent)
        before_the_intent = await checkout_facts(session, auction.bid_id)
        assert statements.since(mark) == ["SELECT"]
    assert before_the_intent.amount is None and before_the_intent.buyer.email

    inventory = Inventory(sessions, TEST_ANNOUNCER)
    reserve = ReserveArtwork(auction.artwork_id, auction.bid_id)
    assert (await activity_env().run(inventory.reserve_artwork, reserve)).reserved
    opened = await activity_env().run(
        StripePayments(stripe_client, sessions, TEST_ANNOUNCER).open_payment_intent,
        open_request(auction),
    )
    async with sessions() as session:
        facts = await checkout_facts(session, auction.bid_id)
    assert (facts.amount, facts.fee_amount) == (opened.amount, opened.fee_amount)
    assert facts.expires_at == opened.expires_at

    sale = SettleCheckout(auction.bid_id, auction.artwork_id, opened.payment_intent_id)
    mark, trips = len(statements.sent), len(statements.transaction_control)
    await activity_env().run(inventory.complete_sale, sale)
    assert await statements.transaction_control_since(trips) == ["BEGIN", "COMMIT"]
    # Lock artwork, bid and payment; move the three (flushed before the next read); what
    # the sale is about, in one read; the event and its mails queued, each announced by a
    # NOTIFY (a SELECT).
    assert statements.since(mark) == [
        *["SELECT"] * 3,
        *["UPDATE"] * 3,
        "SELECT",
        *["SELECT", "INSERT", "SELECT"],
    ]
