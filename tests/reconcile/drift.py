"""Drift made for real: sagas terminated, intents paid or opened behind the service's back,
rows written as an operator's hand (or a restored backup) would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import text
from temporalio.client import WorkflowHandle

from domain.reconciliation import Finding, FindingKind
from infra.tables import Artwork, Bid
from tests.reconcile.conftest import Deployment
from tests.support.factories import Auction, make_auction
from tests.support.polling import eventually
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.reconcile_checkouts import ReconcileCheckoutsWorkflow
from workflows.reconcile_types import ReconcileInput, ReconcileResult
from workflows.starts import saga_input
from workflows.types import CheckoutPhase, CheckoutStatus, saga_workflow_id

SagaHandle = WorkflowHandle[PaymentSagaWorkflow, CheckoutStatus]


@dataclass(frozen=True)
class Checkout:
    auction: Auction
    handle: SagaHandle
    payment_intent_id: str

    @property
    def bid_id(self) -> int:
        return self.auction.bid_id


async def open_checkout(deployment: Deployment, timeout_seconds: int = 600) -> Checkout:
    """An auction closed on its highest bid: the saga waits for the buyer's payment."""
    auction = await make_auction(deployment.sessions)
    saga = saga_input(*await _bid_and_artwork(deployment, auction), deployment.settings)
    handle = await deployment.temporal.start_workflow(
        PaymentSagaWorkflow.run,
        replace(saga, payment_timeout_seconds=timeout_seconds),
        id=saga_workflow_id(auction.bid_id),
        task_queue=deployment.settings.temporal_task_queue,
    )
    status = await eventually(
        lambda: handle.query(PaymentSagaWorkflow.status),
        lambda status: status.phase is CheckoutPhase.AWAITING_PAYMENT,
        what="the buyer's window open",
    )
    assert status.payment_intent_id is not None
    return Checkout(auction, handle, status.payment_intent_id)


async def awaiting_buyer(deployment: Deployment, bid_id: int) -> SagaHandle:
    """The bid's saga (the latest run), once it waits for the buyer again."""
    handle = deployment.temporal.get_workflow_handle_for(
        PaymentSagaWorkflow.run, saga_workflow_id(bid_id)
    )
    await eventually(
        lambda: handle.query(PaymentSagaWorkflow.status),
        lambda status: status.phase is CheckoutPhase.AWAITING_PAYMENT,
        what=f"the saga of bid {bid_id} waiting for the buyer",
    )
    return handle


async def stop_saga(checkout: Checkout) -> None:
    """An operator terminates the saga: nothing is compensated, the checkout waits on."""
    await checkout.handle.terminate(reason="drift made by a test")


async def latest_run(deployment: Deployment, bid_id: int) -> CheckoutStatus:
    """The result of the saga's latest run (a restarted one, if reconciliation restarted it)."""
    handle = deployment.temporal.get_workflow_handle_for(
        PaymentSagaWorkflow.run, saga_workflow_id(bid_id)
    )
    return await handle.result()


async def write_rows(
    deployment: Deployment,
    auction: Auction,
    *,
    artwork: str,
    bid: str,
    payment: str | None = None,
) -> None:
    """The checkout's rows as the test says, whatever the saga thinks."""
    async with deployment.sessions() as session, session.begin():
        statements: list[tuple[str, dict[str, Any]]] = [
            (
                "UPDATE artworks SET status = :s WHERE id = :id",
                {"s": artwork, "id": auction.artwork_id},
            ),
            ("UPDATE bids SET status = :s WHERE id = :id", {"s": bid, "id": auction.bid_id}),
        ]
        if payment is not None:
            statements.append(
                (
                    "UPDATE payments SET status = :s WHERE bid_id = :id",
                    {"s": payment, "id": auction.bid_id},
                )
            )
        for statement, values in statements:
            await session.exec(text(statement), params=values)  # type: ignore[call-overload]


async def reserve_without_saga(deployment: Deployment) -> Auction:
    """An artwork reserved for its winner by rows alone, as if Temporal had lost the saga."""
    auction = await make_auction(deployment.sessions)
    await write_rows(deployment, auction, artwork="pending_payment", bid="won")
    return auction


async def stray_intent(
    deployment: Deployment, bid_id: int, *, environment: str | None = None, amount: int = 1000
) -> str:
    """An intent at Stripe carrying the saga's metadata for `bid_id`, recorded nowhere."""
    prefix = deployment.settings.idempotency_prefix if environment is None else environment
    intent = await deployment.stripe.v1.payment_intents.create_async(
        params={
            "amount": amount,
            "currency": "usd",
            "payment_method_types": ["card"],  # type: ignore[typeddict-unknown-key]
            "metadata": {
                "workflow_id": saga_workflow_id(bid_id),
                "bid_id": str(bid_id),
                "environment": prefix,
                "idempotency_key": f"{prefix}-{saga_workflow_id(bid_id)}-payment-intent",
            },
        }
    )
    return intent.id


async def intent_status(deployment: Deployment, payment_intent_id: str) -> str:
    intent = await deployment.stripe.v1.payment_intents.retrieve_async(payment_intent_id)
    return intent.status


async def reconcile(deployment: Deployment, **options: Any) -> ReconcileResult:
    """One reconciliation run, started directly (not by the schedule)."""
    return await deployment.temporal.execute_workflow(
        ReconcileCheckoutsWorkflow.run,
        ReconcileInput(**options),
        id=f"reconcile-test-{uuid.uuid4().hex[:8]}",
        task_queue=deployment.settings.temporal_task_queue,
    )


def about(result: ReconcileResult, bid_id: int) -> list[Finding]:
    return [finding for finding in result.findings if finding.bid_id == bid_id]


def kinds(result: ReconcileResult, bid_id: int) -> list[FindingKind]:
    return [finding.kind for finding in about(result, bid_id)]


def assert_nothing_to_repair(result: ReconcileResult) -> None:
    """What a second run finds: only what an operator must act on, and it does nothing."""
    assert result.actions == [], result.actions
    assert [f for f in result.findings if f.repair is not None] == [], result.findings


async def _bid_and_artwork(deployment: Deployment, auction: Auction) -> tuple[Bid, Artwork]:
    async with deployment.sessions() as session:
        bid = await session.get(Bid, auction.bid_id)
        artwork = await session.get(Artwork, auction.artwork_id)
    assert bid is not None and artwork is not None
    return bid, artwork
