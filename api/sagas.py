"""The API's side of Temporal: start, steer and signal checkout sagas."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from infra.settings import Settings
from infra.tables import Artwork, Bid
from infra.temporal import connect_temporal
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.starts import RESTART_FAILED_ONLY, saga_input, saga_summary
from workflows.types import (
    AwaitCheckout,
    AwaitedStage,
    CheckoutPhase,
    CheckoutStatus,
    PaymentSagaInput,
    StripeEventSignal,
    saga_workflow_id,
)

UPDATE_RPC_TIMEOUT = timedelta(seconds=20)


class TemporalUnavailable(Exception):
    """Temporal could not be reached: the caller should try again shortly."""


class CheckoutFinished(Exception):
    """The checkout already ended: an event for it changes nothing."""


class CheckoutFailed(Exception):
    """The saga failed on an error no retry fixes; it waits for an operator (see the README)."""


class CheckoutSagas:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._connecting = asyncio.Lock()

    async def client(self) -> Client:
        """Connects on first use, so the API starts (and answers 503) while Temporal is away."""
        async with self._connecting:
            if self._client is None:
                try:
                    self._client = await connect_temporal(self._settings)
                except RuntimeError as failure:  # how the SDK reports a failed connect
                    raise TemporalUnavailable(str(failure)) from failure
            return self._client

    def input_for(self, bid: Bid, artwork: Artwork) -> PaymentSagaInput:
        return saga_input(bid, artwork, self._settings)

    async def await_stage(
        self,
        saga: PaymentSagaInput,
        stage: AwaitedStage,
        reuse_policy: WorkflowIDReusePolicy = RESTART_FAILED_ONLY,
    ) -> CheckoutStatus:
        """Starts the saga unless it runs, then answers once it reached `stage`.

        Raises `WorkflowAlreadyStartedError` when the saga already finished.
        """
        start = WithStartWorkflowOperation(
            PaymentSagaWorkflow.run,
            saga,
            id=saga_workflow_id(saga.bid_id),
            task_queue=self._settings.temporal_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=reuse_policy,
            static_summary=saga_summary(saga),
        )
        client = await self.client()
        try:
            checkout = await client.execute_update_with_start_workflow(
                PaymentSagaWorkflow.await_checkout,
                AwaitCheckout(stage=stage),
                start_workflow_operation=start,
                rpc_timeout=UPDATE_RPC_TIMEOUT,
            )
        except WorkflowUpdateFailedError as failed:
            raise CheckoutFailed(str(failed.cause or failed)) from failed
        except WorkflowUpdateRPCTimeoutOrCancelledError as slow:
            raise TemporalUnavailable("the checkout did not answer in time") from slow
        if checkout.phase is CheckoutPhase.FAILED:
            raise CheckoutFailed(checkout.error or "unknown error")
        return checkout

    async def deliver(
        self, saga: PaymentSagaInput, event: StripeEventSignal, *, restartable: bool
    ) -> None:
        """Signals the saga. One stopped by an operator while its bid is still `won`
        (`restartable`) is restarted to take the event; a decided checkout never is.

        Raises `CheckoutFinished` when the saga already finished.
        """
        client = await self.client()
        workflow_id = saga_workflow_id(saga.bid_id)
        if not restartable:
            try:
                await client.get_workflow_handle(workflow_id).signal(
                    PaymentSagaWorkflow.stripe_event, event
                )
            except RPCError as refused:
                if refused.status is RPCStatusCode.NOT_FOUND:
                    raise CheckoutFinished(workflow_id) from None
                raise
            return
        try:
            await client.start_workflow(
                PaymentSagaWorkflow.run,
                saga,
                id=workflow_id,
                task_queue=self._settings.temporal_task_queue,
                id_reuse_policy=RESTART_FAILED_ONLY,
                start_signal="stripe_event",
                start_signal_args=[event],
                static_summary=saga_summary(saga),
            )
        except WorkflowAlreadyStartedError:
            raise CheckoutFinished(workflow_id) from None
