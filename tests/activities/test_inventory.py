"""The database activities, run directly: every one may be retried without a second effect."""

from __future__ import annotations

import pytest
import stripe
from temporalio.exceptions import ApplicationError

from activities.contracts import (
    CHECKOUT_CONFLICT,
    STRIPE_REQUEST_REFUSED,
    PaymentIntentRef,
    RecordDecline,
    ReserveArtwork,
    SettleCheckout,
)
from activities.inventory import Inventory
from activities.stripe_payments import StripePayments
from domain.checkout import ArtworkStatus, BidStatus, PaymentStatus
from infra.db import SessionFactory
from tests.support.activities import TEST_ANNOUNCER, activity_env, open_request
from tests.support.factories import Auction, checkout_rows, make_auction


async def reserved_and_opened(
    sessions: SessionFactory, stripe_client: stripe.StripeClient, price: str = "100.00"
) -> tuple[Auction, str]:
    auction = await make_auction(sessions, price)
    env = activity_env()
    reservation = await env.run(
        Inventory(sessions, TEST_ANNOUNCER).reserve_artwork,
        ReserveArtwork(auction.artwork_id, auction.bid_id),
    )
    assert reservation.reserved
    opened = await env.run(
        StripePayments(stripe_client, sessions, TEST_ANNOUNCER).open_payment_intent,
        open_request(auction),
    )
    return auction, opened.payment_intent_id


async def test_reserving_twice_is_one_reservation(sessions: SessionFactory) -> None:
    auction = await make_auction(sessions)
    reserve = Inventory(sessions, TEST_ANNOUNCER).reserve_artwork
    request = ReserveArtwork(auction.artwork_id, auction.bid_id)
    first = await activity_env().run(reserve, request)
    second = await activity_env().run(reserve, request)
    assert first.reserved and second.reserved
    rows = await checkout_rows(sessions, auction)
    assert (rows.artwork_status, rows.bid_status) == (ArtworkStatus.PENDING_PAYMENT, BidStatus.WON)


async def test_opening_twice_reuses_the_recorded_intent(
    sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    auction, intent_id = await reserved_and_opened(sessions, stripe_client)
    rows = await checkout_rows(sessions, auction)
    again = await activity_env().run(
        StripePayments(stripe_client, sessions, TEST_ANNOUNCER).open_payment_intent,
        open_request(auction, window_seconds=5 * 3600),
    )
    assert again.payment_intent_id == intent_id
    assert again.expires_at == rows.payment.expires_at  # the buyer's window is not extended
    assert len((await checkout_rows(sessions, auction)).payments) == 1


async def test_a_sale_recorded_twice_is_one_sale(
    sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    auction, intent_id = await reserved_and_opened(sessions, stripe_client)
    sale = SettleCheckout(auction.bid_id, auction.artwork_id, intent_id, charge_id="ch_test")
    complete = Inventory(sessions, TEST_ANNOUNCER).complete_sale
    await activity_env().run(complete, sale)
    first = await checkout_rows(sessions, auction)
    await activity_env().run(complete, sale)
    second = await checkout_rows(sessions, auction)
    assert second.payment.status == PaymentStatus.SUCCEEDED
    assert second.payment.updated_at == first.payment.updated_at  # the retry wrote nothing
    assert (second.artwork_status, second.bid_status) == (ArtworkStatus.SOLD, BidStatus.PAID)


async def test_a_late_expiry_never_undoes_a_sale(
    sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    auction, intent_id = await reserved_and_opened(sessions, stripe_client)
    inventory = Inventory(sessions, TEST_ANNOUNCER)
    settle = SettleCheckout(auction.bid_id, auction.artwork_id, intent_id, charge_id="ch_1")
    await activity_env().run(inventory.complete_sale, settle)
    with pytest.raises(ApplicationError) as refused:
        await activity_env().run(inventory.reopen_bidding, settle)
    assert refused.value.type == CHECKOUT_CONFLICT
    assert refused.value.non_retryable
    rows = await checkout_rows(sessions, auction)
    assert rows.artwork_status == ArtworkStatus.SOLD


async def test_a_decline_recorded_twice_counts_once(
    sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    auction, _ = await reserved_and_opened(sessions, stripe_client)
    decline = RecordDecline(auction.bid_id, "card_declined", declines=1, event_id="evt_1")
    for _ in range(2):
        await activity_env().run(Inventory(sessions, TEST_ANNOUNCER).record_decline, decline)
    rows = await checkout_rows(sessions, auction)
    assert rows.payment.status == PaymentStatus.FAILED
    assert rows.payment.payment_metadata == {"declines": 1, "last_decline_event_id": "evt_1"}


async def test_stripe_refusing_a_request_is_not_retried(
    sessions: SessionFactory, stripe_client: stripe.StripeClient
) -> None:
    retrieve = StripePayments(stripe_client, sessions, TEST_ANNOUNCER).retrieve_payment_intent
    with pytest.raises(ApplicationError) as refused:
        await activity_env().run(retrieve, PaymentIntentRef("pi_does_not_exist"))
    assert refused.value.type == STRIPE_REQUEST_REFUSED
    assert refused.value.non_retryable
