"""The whole service in the test process: the real API on a real port, the real worker, the
Temporal dev server, PostgreSQL and localstripe sending signed webhooks to the API.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import stripe
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.auth import issue_token
from api.main import AuctionApp, create_app
from api.services import Services
from devstack.processes import free_port, register_stripe_webhook
from infra.db import SessionFactory
from infra.payload_keys import PayloadKey, PayloadKeys, generate_key
from infra.settings import Environment, Settings
from infra.stripe_api import connect_stripe
from infra.telemetry import Telemetry
from tests.support.polling import eventually
from worker import build_dispatcher, build_worker

# One key ring for the whole test session: every client, worker and API of the suite
# encrypts with its session key, so each test goes through the codec as production does.
# The replay fixtures (`make histories`) are sealed with an obviously fake all-zero key
# instead, which every session also holds, so a history recorded once replays in any run.
REPLAY_FIXTURES_KEY = PayloadKey("replay-fixtures", bytes(32))
_SESSION_KEY = generate_key("test-session")
PAYLOAD_KEYS = PayloadKeys(
    (REPLAY_FIXTURES_KEY, _SESSION_KEY)
    if os.environ.get("RECORD_HISTORIES") == "1"
    else (_SESSION_KEY, REPLAY_FIXTURES_KEY)
).render()


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


def token_for(
    settings: Settings,
    who: str,
    *,
    roles: list[str] | None = None,
    expires_in_seconds: int = 3600,
    secret: str | None = None,
) -> str:
    """A bearer token for user `who`, signed as the deployment expects (or with `secret`)."""
    return issue_token(
        secret or settings.jwt_secret,
        sub=who,
        email=f"{who}@example.com",
        name=who.title(),
        roles=roles,
        expires_in_seconds=expires_in_seconds,
        now=int(time.time()),
        algorithm=settings.jwt_algorithm,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )


@dataclass
class Stack:
    settings: Settings
    http: httpx.AsyncClient
    stripe: stripe.StripeClient
    sessions: SessionFactory
    temporal: Client

    def headers(self, who: str, *, roles: list[str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(self.settings, who, roles=roles)}"}

    async def post(self, path: str, who: str | None, body: Any = None, **kw: Any) -> httpx.Response:
        headers = self.headers(who) if who else {}
        return await self.http.post(path, json=body, headers=headers, **kw)

    async def get(self, path: str, who: str) -> httpx.Response:
        return await self.http.get(path, headers=self.headers(who))


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def serve_api(
    settings: Settings,
    port: int | None = None,
    telemetry: Telemetry | None = None,
    app: AuctionApp | None = None,
) -> AsyncIterator[str]:
    """The API on `port` (a free one by default; the same one again plays a restart); `app`
    when the test wants to look inside it (see `engine_of`)."""
    port = port or free_port()
    app = app or create_app(settings, telemetry)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: asyncio.sleep(0, server.started), bool, what="API started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def engine_of(app: AuctionApp) -> AsyncEngine:
    """The engine a started app talks to PostgreSQL through."""
    services: Services = app.http.state.services
    engine = services.sessions.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    return engine


@asynccontextmanager
async def serve_worker(
    settings: Settings,
    sessions: SessionFactory,
    temporal: Client,
    stripe_client: stripe.StripeClient,
    *,
    with_mail: bool = False,
) -> AsyncIterator[None]:
    """The worker process's part: the Temporal worker, and the mail dispatcher beside it
    (sending to SMTP_HOST:SMTP_PORT) when `with_mail`. Leaving the block stops both."""
    async with AsyncExitStack() as running:
        await running.enter_async_context(build_worker(temporal, settings, sessions, stripe_client))
        if with_mail:
            await running.enter_async_context(build_dispatcher(settings, sessions))
        yield


@asynccontextmanager
async def running_stack(
    settings: Settings,
    sessions: SessionFactory,
    temporal: Client,
    *,
    with_worker: bool = True,
    with_mail: bool = False,
    api_telemetry: Telemetry | None = None,
) -> AsyncIterator[Stack]:
    """The API, and the worker unless told otherwise; `with_mail` runs the mail dispatcher
    beside the worker, as `python worker.py` does (point SMTP_PORT at a test server).
    The worker traces and serves metrics as its `temporal` client was built to."""
    stripe_connection = connect_stripe(settings)
    serving = serve_api(settings, telemetry=api_telemetry)
    async with serving as base_url, httpx.AsyncClient(base_url=base_url) as http:
        assert settings.stripe_api_base is not None
        register_stripe_webhook(
            settings.stripe_api_base,
            f"{base_url}/api/payments/webhook",
            settings.stripe_webhook_secret,
            name=uuid.uuid4().hex,
        )
        stack = Stack(settings, http, stripe_connection.client, sessions, temporal)
        if with_worker:
            async with serve_worker(
                settings, sessions, temporal, stripe_connection.client, with_mail=with_mail
            ):
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
