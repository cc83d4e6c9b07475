"""Operators find any checkout with one visibility query, whatever phase it is in.

On the dev server, whose visibility answers list queries (the time-skipping server does
not). Visibility follows the saga by a moment, so each lookup polls.
"""

from __future__ import annotations

import asyncio
import json
from asyncio.subprocess import PIPE
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import stripe
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from devstack.processes import tool
from infra.db import SessionFactory
from infra.tables import Bid
from tests.support.edge_proxy import EdgeProxy
from tests.support.factories import Auction, make_auction, make_user
from tests.support.polling import eventually
from tests.support.stack import stack_on, temporal_address
from tests.workflows.conftest import (
    buyer_pays,
    new_task_queue,
    opened,
    opened_intent,
    reported_processing,
    saga_worker,
    start_saga,
)
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.search_attributes import (
    AMOUNT_DUE,
    ARTWORK_ID,
    BUYER_ID,
    CHECKOUT_PHASE,
    CURRENCY,
    PAYMENT_DEADLINE,
    SELLER_ID,
    start_attributes,
)
from workflows.types import (
    CancelCheckout,
    CheckoutPhase,
    CheckoutStatus,
    ExtendDeadline,
    PaymentSagaInput,
    saga_workflow_id,
)


def clause(key: SearchAttributeKey[Any], value: object) -> str:
    """`Key = value` in Temporal's list-filter syntax."""
    if isinstance(value, datetime):
        # Visibility keeps the instant; compare within a second, as an operator would.
        low, high = value - timedelta(seconds=1), value + timedelta(seconds=1)
        return f"{key.name} BETWEEN '{low.isoformat()}' AND '{high.isoformat()}'"
    if isinstance(value, str):
        return f"{key.name} = '{value}'"
    return f"{key.name} = {value}"


async def found_by_each(client: Client, workflow_id: str, **expected: object) -> None:
    """Each attribute, on its own beside the workflow id, finds the checkout."""
    keys: dict[str, SearchAttributeKey[Any]] = {
        "phase": CHECKOUT_PHASE,
        "artwork_id": ARTWORK_ID,
        "buyer_id": BUYER_ID,
        "seller_id": SELLER_ID,
        "currency": CURRENCY,
        "amount_due": AMOUNT_DUE,
        "payment_deadline": PAYMENT_DEADLINE,
    }
    for name, value in expected.items():
        query = f"WorkflowId = '{workflow_id}' AND {clause(keys[name], value)}"
        await eventually(
            lambda query=query: client.count_workflows(query),  # type: ignore[misc]
            lambda counted: counted.count == 1,
            what=f"found by {query}",
        )


def identity(auction: Auction) -> dict[str, object]:
    return {
        "artwork_id": auction.artwork_id,
        "buyer_id": auction.buyer_id,
        "seller_id": auction.seller_id,
        "currency": auction.currency,
    }


def paying(status: CheckoutStatus) -> dict[str, object]:
    assert status.amount is not None and status.expires_at is not None
    return {"amount_due": float(status.amount), "payment_deadline": status.expires_at}


async def test_a_paid_checkout_is_found_in_each_phase_it_goes_through(
    temporal_dev: WorkflowEnvironment,
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
) -> None:
    client = temporal_dev.client
    auction = await make_auction(sessions, "150.00")
    saga = PaymentSagaInput(
        bid_id=auction.bid_id,
        artwork_id=auction.artwork_id,
        buyer_id=auction.buyer_id,
        hammer_price=auction.hammer_price,
        currency=auction.currency,
        seller_id=auction.seller_id,
    )
    workflow_id = saga_workflow_id(auction.bid_id)
    queue = new_task_queue()
    # Started as the API starts it, on a queue nobody polls yet: still reserving.
    handle = await client.start_workflow(
        PaymentSagaWorkflow.run,
        saga,
        id=workflow_id,
        task_queue=queue,
        search_attributes=start_attributes(saga),
    )
    await found_by_each(client, workflow_id, phase="reserving", **identity(auction))

    async with saga_worker(client, sessions, stripe_client, queue):
        status = await eventually(
            lambda: handle.query(PaymentSagaWorkflow.status),
            lambda status: status.phase is CheckoutPhase.AWAITING_PAYMENT,
            what="awaiting payment",
        )
        assert status.amount == Decimal("154.79")
        await found_by_each(
            client, workflow_id, phase="awaiting_payment", **identity(auction), **paying(status)
        )

        extended = await handle.execute_update(
            PaymentSagaWorkflow.extend_deadline,
            ExtendDeadline(minutes=20, reason="card limit raised tomorrow"),
        )
        assert extended.expires_at is not None and status.expires_at is not None
        assert extended.expires_at - status.expires_at == timedelta(minutes=20)
        await found_by_each(client, workflow_id, payment_deadline=extended.expires_at)
        assert status.payment_intent_id is not None
        await buyer_pays(stripe_client, handle, status.payment_intent_id)
        await handle.result()
    await found_by_each(client, workflow_id, phase="sold", **identity(auction), **paying(extended))


async def test_a_canceled_checkout_is_found_while_it_settles_and_once_it_ended(
    temporal_dev: WorkflowEnvironment,
    sessions: SessionFactory,
    proxy: EdgeProxy,
    stripe_via_proxy: stripe.StripeClient,
) -> None:
    """Started without attributes (as before they existed): the saga indexes itself."""
    client = temporal_dev.client
    held = await make_auction(sessions, "2500.00", currency="eur")
    canceled = await make_auction(sessions, "2600.00", currency="eur")
    cancel = CancelCheckout(reason="seller withdrew")
    async with saga_worker(client, sessions, stripe_via_proxy) as worker:
        # Stripe reports the first intent processing: its checkout settles until Stripe
        # decides (the saga looks again after 30 s; the test stops it before).
        settling = await start_saga(client, worker, held)
        reported_processing(proxy, await opened_intent(settling))
        await settling.execute_update(PaymentSagaWorkflow.cancel_checkout, cancel)
        await found_by_each(
            client, saga_workflow_id(held.bid_id), phase="settling", **identity(held)
        )
        await settling.terminate(reason="test over")

        handle = await start_saga(client, worker, canceled)
        status = await opened(handle)
        await handle.execute_update(PaymentSagaWorkflow.cancel_checkout, cancel)
        assert (await handle.result()).phase is CheckoutPhase.CANCELED
    await found_by_each(
        client,
        saga_workflow_id(canceled.bid_id),
        phase="canceled",
        **identity(canceled),
        **paying(status),
    )


async def test_a_reopened_and_a_rejected_checkout_are_found(
    temporal_dev: WorkflowEnvironment,
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
) -> None:
    client = temporal_dev.client
    unpaid = await make_auction(sessions, "90000", currency="jpy")
    outbid = await make_auction(sessions, "300.00")
    rival = await make_user(sessions, "rival")
    assert rival.id is not None
    async with sessions() as session:  # the higher bid lands before the reservation
        session.add(Bid(artwork_id=outbid.artwork_id, bidder_id=rival.id, amount=Decimal(301)))
        await session.commit()
    async with saga_worker(client, sessions, stripe_client) as worker:
        expiring = await start_saga(client, worker, unpaid, timeout_seconds=1)
        status = await opened(expiring)
        rejected = await start_saga(client, worker, outbid)
        assert (await expiring.result()).phase is CheckoutPhase.REOPENED
        assert (await rejected.result()).phase is CheckoutPhase.REJECTED
    await found_by_each(
        client,
        saga_workflow_id(unpaid.bid_id),
        phase="reopened",
        **identity(unpaid),
        **paying(status),
    )
    await found_by_each(
        client, saga_workflow_id(outbid.bid_id), phase="rejected", **identity(outbid)
    )


async def test_the_cli_finds_a_checkout_and_extends_its_deadline(
    temporal_dev: WorkflowEnvironment,
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
    database_url: str,
    localstripe_url: str,
) -> None:
    """The commands the README gives operators, as they type them: payloads are encrypted,
    so the CLI reads them through the API's codec endpoint with an operator's token."""
    client = temporal_dev.client
    auction = await make_auction(sessions, "440.00")
    workflow_id = saga_workflow_id(auction.bid_id)
    async with (
        stack_on(temporal_dev, sessions, database_url, localstripe_url) as api,
        saga_worker(client, sessions, stripe_client) as worker,
    ):
        address = [
            "--address", temporal_address(client), "--output", "json",
            "--codec-endpoint", str(api.http.base_url).rstrip("/") + "/codec",
            "--codec-auth", api.headers("ops", roles=["operator"])["Authorization"],
        ]  # fmt: skip
        handle = await start_saga(client, worker, auction)
        status = await opened(handle)
        assert status.expires_at is not None
        await found_by_each(client, workflow_id, phase="awaiting_payment")
        before = (status.expires_at + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        query = (
            f'CheckoutPhase = "awaiting_payment" AND PaymentDeadline < "{before}" '
            f"AND ArtworkId = {auction.artwork_id}"
        )
        listed = await temporal_cli("workflow", "list", "--query", query, *address)
        assert [run["execution"]["workflowId"] for run in json.loads(listed)] == [workflow_id]

        request = {"minutes": 30, "reason": "bank holiday", "requested_by": "ops@example.com"}
        await temporal_cli(
            "workflow", "update", "execute", "--workflow-id", workflow_id,
            "--name", "extend_deadline", "--input", json.dumps(request), *address,
        )  # fmt: skip
        extended = await handle.query(PaymentSagaWorkflow.status)
        await handle.terminate(reason="test over")
    assert extended.expires_at == status.expires_at + timedelta(minutes=30)
    assert extended.extensions[0].requested_by == "ops@example.com"


async def temporal_cli(*arguments: str) -> str:
    process = await asyncio.create_subprocess_exec(
        tool("temporal"), *arguments, stdout=PIPE, stderr=PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()
