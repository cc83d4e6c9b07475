"""Whole checkouts through the stack, then both Prometheus endpoints scraped over HTTP: the
worker's (Temporal's runtime: the SDK's series and ours) and the API's `/metrics`.

Counts are compared before and after each checkout: every series must move by exactly what
happened, no more.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from infra.db import SessionFactory
from infra.temporal import connect_temporal
from tests.api.conftest import Closed, closed_auction
from tests.support.buyer import DECLINED, pay
from tests.support.polling import eventually
from tests.support.prometheus import Series, label_values, scrape, value
from tests.support.stack import Stack, running_stack, settings_for, temporal_address, unique
from tests.telemetry.conftest import WorkerMetrics
from workflows.types import saga_workflow_id

# Short enough to watch a checkout reopen, long enough for a payment to land first.
PAYMENT_WINDOW_SECONDS = 8
SAGA = "PaymentSagaWorkflow"
# The parser names counters' samples the OpenMetrics way, with `_total`, as Prometheus does
# when it scrapes Temporal's `temporal_workflow_completed`.
COMPLETED = "temporal_workflow_completed_total"


@pytest_asyncio.fixture(scope="module")
async def stack(
    database_url: str,
    localstripe_url: str,
    sessions: SessionFactory,
    temporal_dev: WorkflowEnvironment,
    worker_metrics: WorkerMetrics,
) -> AsyncIterator[Stack]:
    settings = settings_for(
        database_url,
        localstripe_url,
        temporal_address=temporal_address(temporal_dev.client),
        payment_timeout_seconds=PAYMENT_WINDOW_SECONDS,
        metrics_token=secrets.token_hex(20),
    )
    # As `python worker.py` connects: the runtime that serves Prometheus, for the worker.
    client = await connect_temporal(settings, runtime=worker_metrics.runtime)
    async with running_stack(settings, sessions, client) as running:
        yield running


class Scraper:
    def __init__(self, stack: Stack, worker_metrics: WorkerMetrics) -> None:
        self.stack, self.worker_url = stack, worker_metrics.url
        self.queue = stack.settings.temporal_task_queue

    async def worker(self) -> Series:
        return await scrape(self.worker_url)

    async def api(self) -> Series:
        token = self.stack.settings.metrics_token
        return await scrape(
            str(self.stack.http.base_url.join("/metrics")), {"Authorization": f"Bearer {token}"}
        )

    def checkouts(self, series: Series, outcome: str) -> float:
        return value(series, "auction_checkouts_total", outcome=outcome, task_queue=self.queue)

    def completed(self, series: Series) -> float:
        return value(series, COMPLETED, workflow_type=SAGA, task_queue=self.queue)

    async def worker_after(self, before: Series, outcome: str) -> Series:
        """The worker's series once the checkout's end was counted and its run completed
        (both come just after its sale or reopening is visible)."""
        return await eventually(
            self.worker,
            lambda now: (
                self.checkouts(now, outcome) > self.checkouts(before, outcome)
                and self.completed(now) > self.completed(before)
            ),
            what=f"a checkout counted {outcome}",
        )


async def opened(stack: Stack) -> tuple[Closed, dict[str, str]]:
    closed = await closed_auction(stack)
    intent = await stack.post(
        "/api/payments/create-intent", closed.buyer, {"bid_id": closed.bid_id}
    )
    assert intent.status_code == 200, intent.text
    return closed, intent.json()


def moved(before: Series, after: Series, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_a_sale_is_counted_by_the_worker_and_the_api(
    stack: Stack, worker_metrics: WorkerMetrics
) -> None:
    scraper = Scraper(stack, worker_metrics)
    worker_before, api_before = await scraper.worker(), await scraper.api()

    closed, intent = await opened(stack)
    assert await pay(stack.stripe, intent["payment_intent_id"]) == "succeeded"
    await eventually(
        lambda: stack.get(f"/api/artworks/{closed.artwork_id}", closed.seller),
        lambda r: r.json()["status"] == "sold",
        what="artwork sold",
    )
    worker, api = await scraper.worker_after(worker_before, "sold"), await scraper.api()

    queue = {"task_queue": scraper.queue}
    for outcome in ("sold", "reopened", "canceled", "rejected", "failed"):
        expected = 1 if outcome == "sold" else 0
        assert moved(
            worker_before, worker, "auction_checkouts_total", outcome=outcome, **queue
        ) == (expected), outcome
    assert moved(worker_before, worker, "auction_payment_seconds_count", **queue) == 1
    seconds = moved(worker_before, worker, "auction_payment_seconds_sum", **queue)
    assert 0 < seconds < PAYMENT_WINDOW_SECONDS  # paid at once, well inside the window
    assert moved(worker_before, worker, "auction_payment_declines_total", **queue) == 0
    # Temporal's own series, on the same endpoint.
    assert scraper.completed(worker) - scraper.completed(worker_before) == 1
    assert value(worker, "temporal_request_total", operation="RespondWorkflowTaskCompleted") > 0

    webhook_route = {"route": "/api/payments/webhook", "method": "POST", "status": "200"}
    assert moved(api_before, api, "auction_webhook_events_total", outcome="signaled") == 1
    for outcome in ("restarted", "finished", "bad_signature", "error"):
        assert moved(api_before, api, "auction_webhook_events_total", outcome=outcome) == 0
    assert moved(api_before, api, "auction_webhook_signal_duration_seconds_count") == 1
    assert moved(api_before, api, "auction_api_request_duration_seconds_count", **webhook_route)
    close_route = {"route": "/api/artworks/{artwork_id}/close", "status": "200"}
    assert moved(api_before, api, "auction_api_request_duration_seconds_count", **close_route) == 1


async def test_a_decline_then_the_deadline_is_counted_as_reopened(
    stack: Stack, worker_metrics: WorkerMetrics
) -> None:
    scraper = Scraper(stack, worker_metrics)
    worker_before, api_before = await scraper.worker(), await scraper.api()

    closed, intent = await opened(stack)
    assert await pay(stack.stripe, intent["payment_intent_id"], DECLINED) != "succeeded"
    await eventually(
        lambda: stack.get(f"/api/artworks/{closed.artwork_id}", closed.seller),
        lambda r: r.json()["status"] == "active",
        timeout=PAYMENT_WINDOW_SECONDS + 15,
        what="bidding reopened at the deadline",
    )
    worker, api = await scraper.worker_after(worker_before, "reopened"), await scraper.api()

    queue = {"task_queue": scraper.queue}
    assert moved(worker_before, worker, "auction_checkouts_total", outcome="reopened", **queue) == 1
    assert moved(worker_before, worker, "auction_checkouts_total", outcome="sold", **queue) == 0
    assert moved(worker_before, worker, "auction_payment_seconds_count", **queue) == 0
    # Recorded by the activity, with the activity's labels and Stripe's decline code.
    declines = {"activity_type": "record_decline", **queue}
    assert moved(worker_before, worker, "auction_payment_declines_total", **declines) == 1
    codes = label_values(worker, "auction_payment_declines_total", "code")
    assert "card_declined" in codes, codes
    assert moved(api_before, api, "auction_webhook_events_total", outcome="signaled") == 1


async def test_a_webhook_that_starts_a_stopped_saga_again_is_counted_restarted(
    stack: Stack, worker_metrics: WorkerMetrics
) -> None:
    scraper = Scraper(stack, worker_metrics)
    worker_before, api_before = await scraper.worker(), await scraper.api()

    closed, intent = await opened(stack)
    # Stopped by an operator while its bid is still `won`: the next event starts it again.
    await stack.temporal.get_workflow_handle(saga_workflow_id(closed.bid_id)).terminate("test")
    assert await pay(stack.stripe, intent["payment_intent_id"]) == "succeeded"
    await eventually(
        lambda: stack.get(f"/api/artworks/{closed.artwork_id}", closed.seller),
        lambda r: r.json()["status"] == "sold",
        what="artwork sold by the restarted saga",
    )
    worker, api = await scraper.worker_after(worker_before, "sold"), await scraper.api()

    assert moved(api_before, api, "auction_webhook_events_total", outcome="restarted") == 1
    assert moved(api_before, api, "auction_webhook_events_total", outcome="signaled") == 0
    restarted = {"outcome": "restarted"}
    assert moved(api_before, api, "auction_webhook_signal_duration_seconds_count", **restarted) == 1
    queue = {"task_queue": scraper.queue}
    assert moved(worker_before, worker, "auction_checkouts_total", outcome="sold", **queue) == 1


async def test_requests_are_labelled_by_route_template_never_by_path(
    stack: Stack, worker_metrics: WorkerMetrics
) -> None:
    scraper = Scraper(stack, worker_metrics)
    before = await scraper.api()
    buyer = unique("buyer")
    assert (await stack.get("/api/artworks/987654321", buyer)).status_code == 404
    assert (await stack.get("/no/such/path/987654321", buyer)).status_code == 404
    unsigned = await stack.http.post("/api/payments/webhook", content=b"{}")
    assert unsigned.status_code == 400
    after = await scraper.api()

    histogram = "auction_api_request_duration_seconds_count"
    artwork = {"method": "GET", "route": "/api/artworks/{artwork_id}", "status": "404"}
    assert moved(before, after, histogram, **artwork) == 1
    assert moved(before, after, histogram, method="GET", route="unmatched", status="404") == 1
    assert not [r for r in label_values(after, histogram, "route") if "987654321" in r]
    assert moved(before, after, "auction_webhook_events_total", outcome="bad_signature") == 1


async def test_the_api_metrics_want_the_token_and_stay_out_of_the_schema(stack: Stack) -> None:
    assert (await stack.http.get("/metrics")).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    refused = await stack.http.get("/metrics", headers=wrong)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    right = {"Authorization": f"Bearer {stack.settings.metrics_token}"}
    assert (await stack.http.get("/metrics", headers=right)).status_code == 200
    paths = (await stack.http.get("/openapi.json")).json()["paths"]
    assert "/metrics" not in paths
