"""Traces from the API's request through Temporal to the saga's workflow and activities,
collected in memory through the same entry point the processes use (`start_telemetry`).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest_asyncio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.testing import WorkflowEnvironment

from infra.db import SessionFactory
from infra.telemetry import API_SERVICE, WORKER_SERVICE, start_telemetry
from infra.temporal import connect_temporal
from tests.api.conftest import Closed, closed_auction
from tests.support.buyer import pay
from tests.support.polling import eventually
from tests.support.stack import Stack, running_stack, settings_for, temporal_address
from workflows.types import saga_workflow_id

SAGA = "PaymentSagaWorkflow"
WEBHOOK_SPAN = "POST /api/payments/webhook"
CLOSE_SPAN = "POST /api/artworks/{artwork_id}/close"


@dataclass(frozen=True)
class Traced:
    stack: Stack
    spans: InMemorySpanExporter


@pytest_asyncio.fixture(scope="module")
async def traced(
    database_url: str,
    localstripe_url: str,
    sessions: SessionFactory,
    temporal_dev: WorkflowEnvironment,
) -> AsyncIterator[Traced]:
    settings = settings_for(
        database_url,
        localstripe_url,
        temporal_address=temporal_address(temporal_dev.client),
        metrics_token=secrets.token_hex(20),
    )
    spans = InMemorySpanExporter()
    api = start_telemetry(settings, API_SERVICE, exporter=spans)
    worker = start_telemetry(settings, WORKER_SERVICE, exporter=spans)
    client = await connect_temporal(settings, interceptors=worker.temporal_interceptors())
    async with running_stack(settings, sessions, client, api_telemetry=api) as stack:
        yield Traced(stack, spans)


def service_of(span: ReadableSpan) -> object:
    return span.resource.attributes.get("service.name")


def named(spans: Sequence[ReadableSpan], name: str, workflow_id: str | None = None) -> ReadableSpan:
    found = [
        span
        for span in spans
        if span.name == name and (workflow_id is None or workflow_of(span) == workflow_id)
    ]
    assert len(found) == 1, f"{len(found)} spans named {name} for {workflow_id}"
    return found[0]


def trace_of(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def span_id_of(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def parent_is(child: ReadableSpan, parent: ReadableSpan) -> bool:
    return child.parent is not None and child.parent.span_id == span_id_of(parent)


async def sold(traced: Traced, closed: Closed) -> Sequence[ReadableSpan]:
    """The spans, once the run that sold the artwork has ended and its spans are in."""
    stack = traced.stack
    await eventually(
        lambda: stack.get(f"/api/artworks/{closed.artwork_id}", closed.seller),
        lambda r: r.json()["status"] == "sold",
        what="artwork sold",
    )
    workflow_id = saga_workflow_id(closed.bid_id)

    async def spans() -> Sequence[ReadableSpan]:
        return traced.spans.get_finished_spans()

    # Workflow spans are recorded when the worker completes the task that made them.
    return await eventually(
        spans,
        lambda found: any(
            s.name == f"CompleteWorkflow:{SAGA}" and workflow_of(s) == workflow_id for s in found
        ),
        what="the saga's spans",
    )


def workflow_of(span: ReadableSpan) -> object:
    return (span.attributes or {}).get("temporalWorkflowID")


async def opened(stack: Stack) -> tuple[Closed, str]:
    closed = await closed_auction(stack)
    intent = await stack.post(
        "/api/payments/create-intent", closed.buyer, {"bid_id": closed.bid_id}
    )
    assert intent.status_code == 200, intent.text
    return closed, str(intent.json()["payment_intent_id"])


async def test_the_webhook_trace_links_to_the_run_whose_activities_record_the_sale(
    traced: Traced,
) -> None:
    closed, intent_id = await opened(traced.stack)
    workflow_id = saga_workflow_id(closed.bid_id)
    assert await pay(traced.stack.stripe, intent_id) == "succeeded"
    spans = await sold(traced, closed)

    # The webhook's request, and the plain signal it sent to the running saga, in one trace.
    signal = named(spans, "SignalWorkflow:stripe_event", workflow_id)
    assert not [s for s in spans if s.name == f"SignalWithStartWorkflow:{SAGA}"]
    webhook = next(s for s in spans if s.name == WEBHOOK_SPAN and parent_is(signal, s))
    assert webhook.kind is SpanKind.SERVER and service_of(webhook) == API_SERVICE
    assert service_of(signal) == API_SERVICE and trace_of(signal) == trace_of(webhook)
    # The saga took it in its own run's trace, linked back to the webhook's signal.
    handled = [
        s
        for s in spans
        if s.name == "HandleSignal:stripe_event"
        and any(link.context.span_id == span_id_of(signal) for link in s.links)
    ]
    assert len(handled) == 1 and service_of(handled[0]) == WORKER_SERVICE
    # That run's trace began with the seller's close: request, start, run, activities.
    run = named(spans, f"RunWorkflow:{SAGA}", workflow_id)
    assert trace_of(handled[0]) == trace_of(run)
    close = named(spans, CLOSE_SPAN)
    start = next(
        s
        for s in spans
        if s.name == f"StartUpdateWithStartWorkflow:{SAGA}"
        and workflow_of(s) == workflow_id
        and parent_is(s, close)
    )
    assert trace_of(close) == trace_of(start) == trace_of(run)
    for activity in ("reserve_artwork", "open_payment_intent", "complete_sale"):
        ran = named(spans, f"RunActivity:{activity}", workflow_id)
        assert trace_of(ran) == trace_of(run) and service_of(ran) == WORKER_SERVICE


async def test_a_webhook_that_starts_the_saga_again_carries_one_trace_to_the_sale(
    traced: Traced,
) -> None:
    closed, intent_id = await opened(traced.stack)
    workflow_id = saga_workflow_id(closed.bid_id)
    # Stopped by an operator while its bid is still `won`: the webhook starts it again.
    await traced.stack.temporal.get_workflow_handle(workflow_id).terminate("test")
    traced.spans.clear()
    assert await pay(traced.stack.stripe, intent_id) == "succeeded"
    spans = await sold(traced, closed)

    signal = named(spans, f"SignalWithStartWorkflow:{SAGA}", workflow_id)
    webhook = next(s for s in spans if s.name == WEBHOOK_SPAN and parent_is(signal, s))
    run = named(spans, f"RunWorkflow:{SAGA}", workflow_id)
    sale = named(spans, "RunActivity:complete_sale", workflow_id)
    assert trace_of(webhook) == trace_of(signal) == trace_of(run) == trace_of(sale)
    assert service_of(run) == service_of(sale) == WORKER_SERVICE


async def test_probes_and_scrapes_are_not_traced(traced: Traced) -> None:
    stack = traced.stack
    traced.spans.clear()
    assert (await stack.http.get("/healthz")).status_code == 200
    token = {"Authorization": f"Bearer {stack.settings.metrics_token}"}
    assert (await stack.http.get("/metrics", headers=token)).status_code == 200
    assert (await stack.http.get("/openapi.json")).status_code == 200
    names = {span.name for span in traced.spans.get_finished_spans()}
    assert "GET /openapi.json" in names  # the same app traces its other requests
    assert not {name for name in names if "healthz" in name or "metrics" in name}, names
