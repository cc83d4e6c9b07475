"""The whole service in the test process: the real API on a real port, the real worker, the
Temporal dev server, PostgreSQL and localstripe sending signed webhooks to the API.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import stripe
import uvicorn
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.auth import issue_token
from api.main import create_app
from devstack.processes import free_port, register_stripe_webhook
from infra.db import SessionFactory
from infra.payload_keys import PayloadKeys, generate_key
from infra.settings import Environment, Settings
from infra.stripe_api import connect_stripe
from tests.support.polling import eventually
from worker import build_worker

# One key for the whole test session: every client, worker and API of the suite encrypts
# with it, so each test goes through the codec as production does.
PAYLOAD_KEYS = PayloadKeys((generate_key("test-session"),)).render()


def codec_settings() -> Settings:
    """Enough settings to build the suite's data converter (see `infra.temporal`)."""
    return Settings.model_validate(
        {"environment": Environment.TEST, "temporal_payload_keys": PAYLOAD_KEYS}
    )


def settings_for(database_url: str, stripe_api_base: str, **overrides: object) -> Settings:
    """Settings as a deployment would have them, with generated, obviously fake secrets."""
    values: dict[str, object] = {
        "environment": Environment.TEST,
        "database_url": database_url,
        "stripe_api_base": stripe_api_base,
        "stripe_secret_key": f"sk_test_{uuid.uuid4().hex}",
        "stripe_webhook_secret": f"whsec_test_{uuid.uuid4().hex}",
        "jwt_secret": f"test-jwt-{uuid.uuid4().hex}",
        "temporal_task_queue": f"auction-payments-{uuid.uuid4().hex[:8]}",
        "temporal_payload_keys": PAYLOAD_KEYS,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@dataclass
class Stack:
    settings: Settings
    http: httpx.AsyncClient
    stripe: stripe.StripeClient
    sessions: SessionFactory
    temporal: Client

    def headers(self, who: str, *, roles: list[str] | None = None) -> dict[str, str]:
        token = issue_token(
            self.settings.jwt_secret,
            sub=who,
            email=f"{who}@example.com",
            name=who.title(),
            roles=roles,
            now=int(time.time()),
            algorithm=self.settings.jwt_algorithm,
            audience=self.settings.jwt_audience,
            issuer=self.settings.jwt_issuer,
        )
        return {"Authorization": f"Bearer {token}"}

    async def post(self, path: str, who: str | None, body: Any = None, **kw: Any) -> httpx.Response:
        headers = self.headers(who) if who else {}
        return await self.http.post(path, json=body, headers=headers, **kw)

    async def get(self, path: str, who: str) -> httpx.Response:
        return await self.http.get(path, headers=self.headers(who))


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def serve_api(settings: Settings) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: asyncio.sleep(0, server.started), bool, what="API started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def running_stack(
    settings: Settings, sessions: SessionFactory, temporal: Client, *, with_worker: bool = True
) -> AsyncIterator[Stack]:
    stripe_connection = connect_stripe(settings)
    worker = build_worker(temporal, settings, sessions, stripe_connection.client)
    async with serve_api(settings) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        assert settings.stripe_api_base is not None
        register_stripe_webhook(
            settings.stripe_api_base,
            f"{base_url}/api/payments/webhook",
            settings.stripe_webhook_secret,
            name=uuid.uuid4().hex,
        )
        stack = Stack(settings, http, stripe_connection.client, sessions, temporal)
        if with_worker:
            async with worker:
                yield stack
        else:
            yield stack
    await stripe_connection.aclose()


def temporal_address(client: Client) -> str:
    return client.service_client.config.target_host


@asynccontextmanager
async def stack_on(
    temporal: WorkflowEnvironment,
    sessions: SessionFactory,
    database_url: str,
    localstripe_url: str,
    **overrides: object,
) -> AsyncIterator[Stack]:
    """The whole service on the session's dev server, with its own task queue and secrets."""
    settings = settings_for(
        database_url,
        localstripe_url,
        temporal_address=temporal_address(temporal.client),
        **overrides,
    )
    async with running_stack(settings, sessions, temporal.client) as stack:
        yield stack
