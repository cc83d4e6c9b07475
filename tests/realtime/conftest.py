"""Two API replicas on two ports with the same settings, database and task queue; replica A
also gets localstripe's webhooks and runs beside the worker, as `running_stack` builds it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from infra.db import SessionFactory
from tests.support.stack import Stack, serve_api, stack_on

# Short enough to watch a checkout expire, long enough for a payment to land first.
PAYMENT_WINDOW_SECONDS = 8


@dataclass(frozen=True)
class Replicas:
    a: Stack
    b_url: str

    @property
    def a_url(self) -> str:
        return str(self.a.http.base_url).rstrip("/")


@pytest_asyncio.fixture(scope="module")
async def replicas(
    database_url: str,
    localstripe_url: str,
    sessions: SessionFactory,
    temporal_dev: WorkflowEnvironment,
) -> AsyncIterator[Replicas]:
    async with (
        stack_on(
            temporal_dev,
            sessions,
            database_url,
            localstripe_url,
            payment_timeout_seconds=PAYMENT_WINDOW_SECONDS,
        ) as a,
        serve_api(a.settings) as b_url,
    ):
        yield Replicas(a, b_url)
