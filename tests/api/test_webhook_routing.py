"""Which checkout an event reaches: ours only, and never a checkout that is already decided."""

from __future__ import annotations

import uuid

from temporalio.client import WorkflowExecutionStatus

from domain.checkout import BidStatus
from infra.tables import Bid
from tests.api.test_webhook import checkout_with_intent, signals_received
from tests.support.stack import Stack
from tests.support.stripe_events import event_body, signed
from workflows.types import saga_workflow_id


async def an_intent_made_elsewhere(stack: Stack, bid_id: int, environment: str) -> str:
    """An intent another deployment sharing the Stripe account made for *its* bid `bid_id`."""
    intent = await stack.stripe.v1.payment_intents.create_async(
        params={
            "amount": 5000,
            "currency": "usd",
            "payment_method_types": ["card"],  # type: ignore[typeddict-unknown-key]
            "metadata": {"bid_id": str(bid_id), "environment": environment},
        }
    )
    return intent.id


async def test_an_event_for_another_deployments_intent_reaches_no_checkout(stack: Stack) -> None:
    closed, _ = await checkout_with_intent(stack)
    theirs = await an_intent_made_elsewhere(stack, closed.bid_id, "staging")
    body = await event_body(stack.stripe, theirs, "payment_intent.payment_failed")
    payload = await deliver_for_receipt(stack, body)
    assert payload == {
        "received": True,
        "handled": False,
        "detail": "no checkout for this PaymentIntent",
    }
    assert await signals_received(stack, closed.bid_id) == 0


async def test_an_event_that_beats_our_own_record_reaches_its_checkout(stack: Stack) -> None:
    closed, _ = await checkout_with_intent(stack)
    ours = await an_intent_made_elsewhere(stack, closed.bid_id, stack.settings.idempotency_prefix)
    body = await event_body(stack.stripe, ours, "payment_intent.payment_failed")
    assert (await deliver_for_receipt(stack, body))["handled"] is True
    assert await signals_received(stack, closed.bid_id) == 1


async def test_a_late_event_never_restarts_a_decided_checkout(stack: Stack) -> None:
    """A checkout whose run was stopped after its bid was decided (as a failed, compensated
    run is) takes no event: no new run starts for it."""
    closed, intent_id = await checkout_with_intent(stack)
    handle = stack.temporal.get_workflow_handle(saga_workflow_id(closed.bid_id))
    stopped = (await handle.describe()).run_id
    await handle.terminate(reason=f"test {uuid.uuid4().hex[:6]}")
    async with stack.sessions() as session:
        bid = await session.get(Bid, closed.bid_id)
        assert bid is not None
        bid.status = BidStatus.UNPAID.value
        await session.commit()

    body = await event_body(stack.stripe, intent_id, "payment_intent.payment_failed")
    receipt = await deliver_for_receipt(stack, body)
    assert receipt["detail"] == "checkout already finished"
    latest = await handle.describe()
    assert (latest.run_id, latest.status) == (stopped, WorkflowExecutionStatus.TERMINATED)


async def deliver_for_receipt(stack: Stack, body: dict[str, object]) -> dict[str, object]:
    payload, header = signed(body, stack.settings.stripe_webhook_secret)
    response = await stack.http.post(
        "/api/payments/webhook", content=payload, headers={"Stripe-Signature": header}
    )
    assert response.status_code == 200, response.text
    receipt: dict[str, object] = response.json()
    return receipt
