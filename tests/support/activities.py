"""Running activities directly, as Temporal would: with an attempt that started just now."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from temporalio.testing import ActivityEnvironment

from activities.contracts import OpenPaymentIntent
from infra.announcer import Announcer
from tests.support.factories import Auction
from workflows.types import saga_workflow_id

# What the worker builds from MAIL_FROM; tests name their own domain.
TEST_ANNOUNCER = Announcer("Auction tests <payments@tests.example>")


def activity_env(attempt: int = 1) -> ActivityEnvironment:
    """The activities read Temporal's clock from their attempt's start time."""
    env = ActivityEnvironment()
    env.info = replace(env.info, started_time=datetime.now(UTC), attempt=attempt)
    return env


def open_request(auction: Auction, window_seconds: int = 600) -> OpenPaymentIntent:
    return OpenPaymentIntent(
        workflow_id=saga_workflow_id(auction.bid_id),
        bid_id=auction.bid_id,
        artwork_id=auction.artwork_id,
        buyer_id=auction.buyer_id,
        amount=Decimal("103.30"),
        amount_minor=10330,
        fee_amount=Decimal("3.30"),
        currency="usd",
        payment_window_seconds=window_seconds,
    )
