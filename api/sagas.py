"""The API's side of Temporal: start, steer and signal checkout sagas."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from datetime import timedelta
from enum import StrEnum

from temporalio.client import (
    Client,
    Interceptor,
    WithStartWorkflowOperation,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from infra.settings import Settings
from infra.tables import Artwork, Bid
from infra.temporal import connect_temporal
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.search_attributes import CHECKOUT_PHASE, start_attributes
from workflows.starts import RESTART_FAILED_ONLY, saga_input, saga_summary
from workflows.types import (
    AwaitCheckout,
    AwaitedStage,
    CancelCheckout,
    CheckoutPhase,
    CheckoutStatus,
    ExtendDeadline,
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


class Delivery(StrEnum):
    SIGNALED = "signaled"  # the running saga took the event
    RESTARTED = "restarted"  # the event started the saga again


class CheckoutNotFound(Exception):
    """No saga was ever started for this bid (or Temporal no longer keeps it)."""


class CheckoutRefused(Exception):
    """The saga refused an operator's request; the message says why, in the saga's words."""


class PageTokenRefused(Exception):
    """Temporal did not accept a page token for this query."""


class CheckoutSagas:
    def __init__(
        self,
        settings: Settings,
        converter: DataConverter,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        self._settings = settings
        self._converter = converter
        self._interceptors = interceptors
        self._client: Client | None = None
        self._connecting = asyncio.Lock()

    async def client(self) -> Client:
        """Connects on first use, so the API starts (and answers 503) while Temporal is away."""
        async with self._connecting:
            if self._client is None:
                try:
                    self._client = await connect_temporal(
                        self._settings, self._converter, interceptors=self._interceptors
                    )
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
            search_attributes=start_attributes(saga),
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

    async def deliver(self, saga: PaymentSagaInput, event: StripeEventSignal) -> Delivery:
        """Signals the saga of a checkout still waiting for its payment (its bid `won`); one
        stopped by an operator (terminated, or failed) is started again to take the event.

        Says whether the running saga took the event or the event started it again; raises
        `CheckoutFinished` when its run completed, which Temporal never starts again.
        """
        client = await self.client()
        workflow_id = saga_workflow_id(saga.bid_id)
        # A plain signal first: a running saga is by far the common case, and a
        # signal-with-start costs Temporal more even when it starts nothing.
        try:
            await client.get_workflow_handle(workflow_id).signal(
                PaymentSagaWorkflow.stripe_event, event
            )
        except RPCError as refused:
            if refused.status is not RPCStatusCode.NOT_FOUND:
                raise
        else:
            return Delivery.SIGNALED
        try:
            handle = await client.start_workflow(
                PaymentSagaWorkflow.run,
                saga,
                id=workflow_id,
                task_queue=self._settings.temporal_task_queue,
                id_reuse_policy=RESTART_FAILED_ONLY,
                start_signal="stripe_event",
                start_signal_args=[event],
                static_summary=saga_summary(saga),
                search_attributes=start_attributes(saga),
            )
        except WorkflowAlreadyStartedError:
            raise CheckoutFinished(workflow_id) from None
        # The SDK keeps the server's answer, whose `started` alone tells a signal-with-start
        # that started a run from one that signalled a run started since our signal.
        response = getattr(handle, "_start_workflow_response", None)
        return Delivery.RESTARTED if getattr(response, "started", False) else Delivery.SIGNALED

    # Operators' side: find checkouts, and steer one.

    async def list_checkouts(
        self, query: str, page_size: int, page_token: bytes | None
    ) -> tuple[Sequence[WorkflowExecution], bytes | None]:
        """One page of the sagas `query` selects in Temporal's visibility, and the next's token.

        Visibility is eventually consistent: a saga's latest move may show a moment later.
        """
        client = await self.client()
        page = client.list_workflows(query, page_size=page_size, next_page_token=page_token)
        try:
            await page.fetch_next_page()
        except RPCError as refused:
            if page_token is not None and refused.status is RPCStatusCode.INVALID_ARGUMENT:
                raise PageTokenRefused(refused.message) from None
            raise
        return page.current_page or [], page.next_page_token

    async def extend_deadline(self, bid_id: int, request: ExtendDeadline) -> CheckoutStatus:
        handle = await self._handle(bid_id)
        return await self._steer(
            handle,
            handle.execute_update(
                PaymentSagaWorkflow.extend_deadline, request, rpc_timeout=UPDATE_RPC_TIMEOUT
            ),
        )

    async def cancel_checkout(self, bid_id: int, request: CancelCheckout) -> CheckoutStatus:
        handle = await self._handle(bid_id)
        return await self._steer(
            handle,
            handle.execute_update(
                PaymentSagaWorkflow.cancel_checkout, request, rpc_timeout=UPDATE_RPC_TIMEOUT
            ),
        )

    async def _handle(self, bid_id: int) -> WorkflowHandle[PaymentSagaWorkflow, CheckoutStatus]:
        client = await self.client()
        return client.get_workflow_handle_for(PaymentSagaWorkflow.run, saga_workflow_id(bid_id))

    async def _steer(
        self,
        handle: WorkflowHandle[PaymentSagaWorkflow, CheckoutStatus],
        update: Awaitable[CheckoutStatus],
    ) -> CheckoutStatus:
        """The update's answer; its validator's refusal as `CheckoutRefused`."""
        try:
            return await update
        except WorkflowUpdateFailedError as failed:
            cause = failed.cause
            # A validator's refusal arrives as the ValueError it raised; anything else
            # failed in the handler itself.
            if isinstance(cause, ApplicationError) and cause.type == "ValueError":
                raise CheckoutRefused(cause.message) from None
            raise CheckoutFailed(str(cause)) from failed
        except WorkflowUpdateRPCTimeoutOrCancelledError as slow:
            raise TemporalUnavailable("the checkout did not answer in time") from slow
        except RPCError as refused:
            if refused.status is not RPCStatusCode.NOT_FOUND:
                raise
        # Temporal answers an update to a closed run as to a run that never was.
        try:
            closed = await handle.describe()
        except RPCError as unknown:
            if unknown.status is RPCStatusCode.NOT_FOUND:
                raise CheckoutNotFound(handle.id) from None
            raise
        # A completed run's phase says how the checkout ended; a terminated one's may not.
        outcome = closed.status.name.lower() if closed.status else "closed"
        if closed.status is WorkflowExecutionStatus.COMPLETED:
            outcome = closed.typed_search_attributes.get(CHECKOUT_PHASE) or outcome
        raise CheckoutRefused(f"the checkout already ended: {outcome}")
