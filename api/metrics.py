"""The API's Prometheus series and `GET /metrics` (see docs/metrics.md).

Each app has a registry of its own rather than prometheus-client's global one: the tests run
several apps in one process, and each must count only its own requests.
"""

from __future__ import annotations

import hmac
import logging
import time
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.settings import Environment, Settings

log = logging.getLogger(__name__)

# Requests answer in milliseconds, or wait up to 20 s on an update to the saga.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30)
SIGNAL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
UNMATCHED = "unmatched"  # the route label of a path no route serves: one series, not one each


class WebhookOutcome(StrEnum):
    """What became of a delivery to the webhook: the `outcome` label."""

    SIGNALED = "signaled"  # handed to the running saga (duplicates too: the saga drops them)
    RESTARTED = "restarted"  # started the saga again, a stopped one whose bid is still won
    FINISHED = "finished"  # the checkout had ended: nothing to do
    IGNORED = "ignored"  # a type of event the saga does not use
    UNKNOWN_INTENT = "unknown_intent"  # no checkout of ours for this PaymentIntent
    MALFORMED = "malformed"  # signed, but not an event we can read or store
    BAD_SIGNATURE = "bad_signature"  # no signature, or not Stripe's: 400
    BAD_BODY = "bad_body"  # not UTF-8 JSON, or not an object: 400
    ERROR = "error"  # Temporal or the database did not answer: 503, Stripe delivers again


class ApiMetrics:
    def __init__(self) -> None:
        # Without it each series has a `_created` twin holding its start time: twice the
        # series for what `process_start_time_seconds` already says.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
        self.registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.requests = Histogram(
            "auction_api_request_duration_seconds",
            "HTTP requests by route template, method and status, and how long they took.",
            ["method", "route", "status"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.webhook_events = Counter(
            "auction_webhook_events",
            "Stripe webhook deliveries, by what became of them.",
            ["outcome"],
            registry=self.registry,
        )
        self.signal_seconds = Histogram(
            "auction_webhook_signal_duration_seconds",
            "Seconds to hand a webhook's event to its saga (signal, or signal-with-start).",
            ["outcome"],
            buckets=SIGNAL_BUCKETS,
            registry=self.registry,
        )
        # Every outcome is a series from the start: a rate over a series that appears only
        # on its first event misses that event.
        for outcome in WebhookOutcome:
            self.webhook_events.labels(outcome.value)

    def webhook(self, outcome: WebhookOutcome) -> None:
        self.webhook_events.labels(outcome.value).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


async def get_metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]


class RequestTimer:
    """Times every HTTP request, labelled by the route that served it (its template, as
    `/api/artworks/{artwork_id}`), so that ids in paths never mint series of their own."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = status.HTTP_500_INTERNAL_SERVER_ERROR  # unless a response starts

        async def timed_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            # The router leaves the matched route in the scope it was handed.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.metrics.requests.labels(scope["method"], route, str(answered)).observe(
                time.perf_counter() - started
            )


def metrics_router(settings: Settings) -> APIRouter:
    """`GET /metrics`, out of the OpenAPI schema: it is for Prometheus, not for clients.

    With METRICS_TOKEN set it answers only `Authorization: Bearer <METRICS_TOKEN>`. Without
    one it is open, except in production: this port is the public one, so there it answers
    404, as if it did not exist.
    """
    router = APIRouter()
    expected = f"Bearer {settings.metrics_token}".encode() if settings.metrics_token else None
    served = expected is not None or settings.environment is not Environment.PRODUCTION
    if not served:
        log.warning("METRICS_TOKEN is not set: /metrics is not served in production")

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request, metrics: MetricsDep) -> Response:
        if not served:
            return Response(b"Not Found\n", status_code=404, media_type="text/plain")
        if expected is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return Response(
                    b"a bearer token is required\n",
                    status_code=status.HTTP_401_UNAUTHORIZED,
                    headers={"WWW-Authenticate": "Bearer"},
                    media_type="text/plain",
                )
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
