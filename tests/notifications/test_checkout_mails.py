"""The emails of whole checkouts: the API, the worker with its dispatcher, Temporal, localstripe
sending its own signed webhooks, and a real SMTP server that records what it receives.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import pytest
from temporalio.testing import WorkflowEnvironment

from devstack.processes import free_port
from devstack.stripe_events import deliver, sent_event
from domain.announcements import MailKind, MailStatus
from infra.tables import Notification
from tests.notifications.conftest import MailDatabase
from tests.notifications.helpers import rows_of
from tests.support.buyer import DECLINED, pay
from tests.support.polling import eventually
from tests.support.smtp_server import Inbox, Received, smtp_server
from tests.support.stack import (
    Stack,
    running_stack,
    serve_worker,
    settings_for,
    temporal_address,
    unique,
)
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.types import CancelCheckout, saga_workflow_id

pytestmark = pytest.mark.e2e

OpenStack = Callable[..., AbstractAsyncContextManager[Stack]]
PAID = MailKind.PAYMENT_REQUIRED, MailKind.PAYMENT_RECEIPT, MailKind.ARTWORK_SOLD


@dataclass(frozen=True)
class Checkout:
    seller: str
    buyer: str
    artwork_id: int
    bid_id: int
    payment_id: int
    intent_id: str

    def email(self, kind: MailKind) -> str:
        to_seller = kind in (MailKind.ARTWORK_SOLD, MailKind.BIDDING_REOPENED)
        return f"{self.seller if to_seller else self.buyer}@example.com"


@pytest.fixture
def open_stack(
    mail_database: MailDatabase, localstripe_url: str, temporal_dev: WorkflowEnvironment
) -> OpenStack:
    @asynccontextmanager
    async def start(
        smtp_port: int, *, with_worker: bool = True, **overrides: object
    ) -> AsyncIterator[Stack]:
        """The API on the mail tests' database, and its worker with the mail dispatcher
        unless the test starts (and restarts) them itself."""
        values: dict[str, object] = {
            "temporal_address": temporal_address(temporal_dev.client),
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "smtp_timeout_seconds": 5,
            "mail_retry_initial_seconds": 0.5,
            "payment_timeout_seconds": 60,
            **overrides,
        }
        settings = settings_for(mail_database.url, localstripe_url, **values)
        async with running_stack(
            settings,
            mail_database.sessions,
            temporal_dev.client,
            with_worker=with_worker,
            with_mail=True,
        ) as stack:
            yield stack

    return start


def worker(stack: Stack) -> AbstractAsyncContextManager[None]:
    """The worker process's part: the Temporal worker and the mail dispatcher beside it."""
    return serve_worker(
        stack.settings, stack.sessions, stack.temporal, stack.stripe, with_mail=True
    )


async def won_and_opened(stack: Stack, amount: str) -> Checkout:
    seller, buyer = unique("seller"), unique("buyer")
    artwork = await stack.post(
        "/api/artworks", seller, {"title": "Harbour <at> dusk", "starting_price": "100.00"}
    )
    artwork_id = artwork.json()["id"]
    bid = await stack.post(f"/api/artworks/{artwork_id}/bids", buyer, {"amount": amount})
    assert bid.status_code == 201, bid.text
    closed = await stack.post(f"/api/artworks/{artwork_id}/close", seller)
    assert closed.status_code == 200, closed.text
    intent = await stack.post("/api/payments/create-intent", buyer, {"bid_id": bid.json()["id"]})
    assert intent.status_code == 200, intent.text
    body = intent.json()
    return Checkout(
        seller, buyer, artwork_id, bid.json()["id"], body["payment_id"], body["payment_intent_id"]
    )


async def rows_until(
    stack: Stack, bid_id: int, kinds: int, status: MailStatus
) -> list[Notification]:
    return await eventually(
        lambda: rows_of(stack.sessions, bid_id),
        lambda rows: len(rows) == kinds and all(row.status == status for row in rows),
        timeout=45,
        what=f"{kinds} emails {status}",
    )


async def delivered_once(
    inbox: Inbox, checkout: Checkout, rows: list[Notification]
) -> dict[MailKind, Received]:
    """Every row's email arrived once, to its recipient, as the row names it."""
    await asyncio.sleep(0.5)  # anything sent twice would be here by now
    received = inbox.about(checkout.bid_id)
    assert Counter(mail.message_id for mail in received) == Counter(row.message_id for row in rows)
    by_kind = {MailKind(mail.kind): mail for mail in received}
    for row in rows:
        mail = by_kind[MailKind(row.kind)]
        assert mail.message_id == row.message_id
        assert mail.rcpt_tos == (checkout.email(MailKind(row.kind)),)
        assert mail.message["To"].addresses[0].addr_spec == checkout.email(MailKind(row.kind))
        assert mail.message.get_content_type() == "multipart/alternative"
        assert row.attempts >= 1 and row.sent_at is not None
    return by_kind


def says(mail: Received, *phrases: str) -> None:
    for phrase in phrases:
        assert phrase in mail.text, (mail.kind, phrase, mail.text)
        assert phrase in mail.html, (mail.kind, phrase, mail.html)


async def test_a_paid_checkout_mails_each_party_once_through_duplicates_and_a_restart(
    open_stack: OpenStack,
) -> None:
    async with smtp_server() as inbox, open_stack(inbox.port, with_worker=False) as stack:
        async with worker(stack):
            checkout = await won_and_opened(stack, "1250.00")
            # Queued by the transaction that recorded the intent; sent or not yet.
            await rows_until(stack, checkout.bid_id, 1, MailStatus.SENT)
        # The worker and its dispatcher stop; new ones take over, as after a crash or deploy.
        async with worker(stack):
            assert await pay(stack.stripe, checkout.intent_id) == "succeeded"
            own = await eventually(
                lambda: sent_event(stack.stripe, checkout.intent_id, "payment_intent.succeeded"),
                lambda event: event is not None,
                what="localstripe's own success event",
            )
            assert own is not None
            copies = await asyncio.gather(
                *(deliver(stack.http, own, stack.settings.stripe_webhook_secret) for _ in range(5))
            )
            assert [copy.status_code for copy in copies] == [200] * 5
            rows = await rows_until(stack, checkout.bid_id, 3, MailStatus.SENT)
            mails = await delivered_once(inbox, checkout, rows)
        artwork = await stack.get(f"/api/artworks/{checkout.artwork_id}", checkout.seller)
        payment = await stack.get(f"/api/payments/{checkout.payment_id}", checkout.buyer)
    assert artwork.json()["status"] == "sold"
    assert sorted(mails) == sorted(PAID)
    for kind, mail in mails.items():
        assert mail.kind == kind.value
        assert "Harbour <at> dusk" in mail.text and "Harbour &lt;at&gt; dusk" in mail.html
    says(mails[MailKind.PAYMENT_REQUIRED], "1,250.00 USD", "37.64 USD", "1,287.64 USD")
    # The checkout page's address, and how to sign in there: the link carries no token.
    page = f"{stack.settings.public_base_url}/checkout/{checkout.bid_id}"
    says(mails[MailKind.PAYMENT_REQUIRED], page, "sign in there with your", "create-intent")
    required = mails[MailKind.PAYMENT_REQUIRED]
    for part in (required.text, required.html):
        assert "token=" not in part and "eyJ" not in part  # no JWT, whatever its encoding
    says(mails[MailKind.PAYMENT_RECEIPT], "1,287.64 USD", payment.json()["charge_id"], "refunded")
    says(mails[MailKind.ARTWORK_SOLD], "1,250.00 USD", "37.64 USD (paid by the buyer)")


async def test_a_decline_then_the_deadline_mail_the_reason_the_expiry_and_the_reopening(
    open_stack: OpenStack,
) -> None:
    async with (
        smtp_server() as inbox,
        open_stack(inbox.port, payment_timeout_seconds=8) as stack,
    ):
        checkout = await won_and_opened(stack, "480.00")
        assert await pay(stack.stripe, checkout.intent_id, DECLINED) == "requires_payment_method"
        own = await eventually(
            lambda: sent_event(stack.stripe, checkout.intent_id, "payment_intent.payment_failed"),
            lambda event: event is not None,
        )
        assert own is not None
        for _ in range(2):  # Stripe delivering the decline again
            again = await deliver(stack.http, own, stack.settings.stripe_webhook_secret)
            assert again.status_code == 200
        rows = await rows_until(stack, checkout.bid_id, 4, MailStatus.SENT)
        mails = await delivered_once(inbox, checkout, rows)
    assert sorted(mails) == sorted(
        [
            MailKind.PAYMENT_REQUIRED,
            MailKind.PAYMENT_FAILED,
            MailKind.PAYMENT_EXPIRED,
            MailKind.BIDDING_REOPENED,
        ]
    )
    says(mails[MailKind.PAYMENT_FAILED], "card_declined", "Reason given", "494.64 USD")
    says(mails[MailKind.PAYMENT_EXPIRED], "passed", "480.00 USD", "no longer counts")
    says(mails[MailKind.BIDDING_REOPENED], "back on sale", "did not pay by the deadline")


async def test_an_operator_cancel_mails_the_reason_to_both_parties(open_stack: OpenStack) -> None:
    async with (
        smtp_server() as inbox,
        open_stack(inbox.port) as stack,
    ):
        checkout = await won_and_opened(stack, "300.00")
        handle = stack.temporal.get_workflow_handle(saga_workflow_id(checkout.bid_id))
        await handle.execute_update(
            PaymentSagaWorkflow.cancel_checkout,
            CancelCheckout(reason="the piece was withdrawn", requested_by="ops@example.com"),
        )
        rows = await rows_until(stack, checkout.bid_id, 3, MailStatus.SENT)
        mails = await delivered_once(inbox, checkout, rows)
    assert sorted(mails) == sorted(
        [MailKind.PAYMENT_REQUIRED, MailKind.CHECKOUT_CANCELED, MailKind.BIDDING_REOPENED]
    )
    says(mails[MailKind.CHECKOUT_CANCELED], "called off", "the piece was withdrawn")
    says(mails[MailKind.BIDDING_REOPENED], "called off", "the piece was withdrawn")
    for mail in mails.values():
        assert "ops@example.com" not in mail.text + mail.html


async def test_a_sale_never_waits_for_a_mail_server_that_is_down(open_stack: OpenStack) -> None:
    port = free_port()  # nothing listens there until the server starts below
    async with open_stack(port) as stack:
        checkout = await won_and_opened(stack, "1250.00")
        started = time.monotonic()
        assert await pay(stack.stripe, checkout.intent_id) == "succeeded"
        await eventually(
            lambda: stack.get(f"/api/artworks/{checkout.artwork_id}", checkout.seller),
            lambda response: response.json()["status"] == "sold",
            timeout=10,
            what="the sale, SMTP down",
        )
        sold_after = time.monotonic() - started
        rows = await eventually(
            lambda: rows_of(stack.sessions, checkout.bid_id),
            # A claim counts the attempt before the send; its failure is written after.
            lambda rows: len(rows) == 3 and all(row.last_error for row in rows),
            what="every email tried and failed",
        )
        for row in rows:
            assert row.status == MailStatus.PENDING
            assert row.last_error is not None and f"127.0.0.1:{port}" in row.last_error
        async with smtp_server(port) as inbox:
            rows = await rows_until(stack, checkout.bid_id, 3, MailStatus.SENT)
            mails = await delivered_once(inbox, checkout, rows)
    assert sold_after < 5, f"the sale took {sold_after:.1f} s"
    assert sorted(mails) == sorted(PAID)
    says(mails[MailKind.PAYMENT_RECEIPT], "1,287.64 USD")
    assert max(row.attempts for row in rows) >= 2


async def test_an_email_given_up_is_failed_and_operators_see_it(open_stack: OpenStack) -> None:
    port = free_port()  # nothing ever listens there
    # Retried for 3.6 s after it was queued, then given up.
    async with open_stack(port, mail_retry_hours=0.001) as stack:
        checkout = await won_and_opened(stack, "200.00")
        (row,) = await rows_until(stack, checkout.bid_id, 1, MailStatus.FAILED)
        operator = stack.headers(unique("operator"), roles=["operator"])
        listed = await stack.http.get(
            "/api/operator/notifications",
            params={"status": "failed", "bid_id": checkout.bid_id},
            headers=operator,
        )
        await stack.temporal.get_workflow_handle(saga_workflow_id(checkout.bid_id)).cancel()
    assert row.attempts >= 2 and row.sent_at is None
    assert listed.status_code == 200
    (item,) = listed.json()["items"]
    assert (item["id"], item["kind"], item["status"]) == (row.id, "payment_required", "failed")
    assert item["attempts"] == row.attempts
    assert item["last_error"] == row.last_error and f"127.0.0.1:{port}" in item["last_error"]
    assert item["next_attempt_at"] is None
