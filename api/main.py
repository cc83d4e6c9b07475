"""The application: `uvicorn api.main:app` serves the HTTP API and, at `/socket.io`, the live
events."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import socketio
from fastapi import FastAPI
from sqlalchemy import text
from starlette.types import Receive, Scope, Send

from api.deps import ServicesDep
from api.errors import error_responses, install_error_handlers
from api.metrics import ApiMetrics, RequestTimer, metrics_router
from api.realtime.relay import Relay
from api.realtime.server import LiveSockets
from api.routes import (
    artworks,
    bids,
    checkout,
    checkout_page,
    operator_checkouts,
    operator_notifications,
    payments,
    webhooks,
)
from api.routes import (
    codec as codec_routes,
)
from api.routes.codec import CodecCors
from api.sagas import CheckoutSagas
from api.services import Services
from infra.announcer import Announcer
from infra.db import asyncpg_dsn, autocommit_session_factory, create_engine, session_factory
from infra.settings import Settings, get_settings
from infra.stripe_api import connect_stripe
from infra.telemetry import API_SERVICE, Telemetry, start_telemetry
from infra.temporal import data_converter, payload_codec


class AuctionApp:
    """What uvicorn serves: Socket.IO at `/socket.io`, the FastAPI app (`http`) for the rest,
    and the lifespan, which python-socketio hands to FastAPI, starting and stopping both."""

    def __init__(self, http: FastAPI, live: LiveSockets) -> None:
        self.http = http
        self.live = live
        self._asgi = socketio.ASGIApp(live.sio, other_asgi_app=http)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> AuctionApp:
    """The app; `telemetry` defaults to the settings' (traces exported when
    OTEL_EXPORTER_OTLP_ENDPOINT is set)."""
    # Read now, not at startup: request tracing is middleware, fixed before the app starts.
    resolved = settings or get_settings()
    live = LiveSockets()
    http = build_http_app(resolved, live, telemetry or start_telemetry(resolved, API_SERVICE))
    return AuctionApp(http, live)


def build_http_app(settings: Settings, live: LiveSockets, telemetry: Telemetry) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.refuse_development_secrets("jwt_secret", "stripe_webhook_secret", "metrics_token")
        codec = payload_codec(settings)  # no keys, no API: it could start no saga
        database_url = settings.require_database_url()
        engine = create_engine(
            database_url,
            pool_size=settings.database_pool_size,
            pool_timeout_seconds=settings.database_pool_timeout_seconds,
        )
        stripe_connection = connect_stripe(settings)
        app.state.services = Services(
            settings=settings,
            sessions=session_factory(engine),
            autocommit_sessions=autocommit_session_factory(engine),
            sagas=CheckoutSagas(
                settings, data_converter(settings, codec), telemetry.temporal_interceptors()
            ),
            announcer=Announcer(settings.mail_from),
            codec=codec,
            stripe=stripe_connection.client,
        )
        live.bind(app.state.services)
        relay = Relay(asyncpg_dsn(database_url), live.deliver)
        await relay.start()
        try:
            yield
        finally:
            await relay.stop()
            await live.close()
            await engine.dispose()
            await stripe_connection.aclose()

    app = FastAPI(
        title="Auction payments",
        summary="Turns a winning bid into money, or gives the artwork back to the auction.",
        lifespan=lifespan,
    )
    routers = (
        webhooks,
        artworks,
        bids,
        payments,
        checkout,
        checkout_page,
        operator_checkouts,
        operator_notifications,
        codec_routes,
    )
    for module in routers:
        app.include_router(module.router)
    app.include_router(metrics_router(settings))
    checkout_page.mount_assets(app)
    install_error_handlers(app)
    app.add_middleware(CodecCors)
    app.state.metrics = metrics = ApiMetrics()
    app.add_middleware(RequestTimer, metrics=metrics)
    telemetry.instrument(app)  # outermost: the request's span covers its timing too

    @app.get(
        "/healthz",
        tags=["health"],
        responses=error_responses(503, meaning={503: "The database does not answer."}),
    )
    async def healthz(services: ServicesDep) -> dict[str, str]:
        """Ready when the database answers (Temporal is checked by the worker's own start)."""
        async with services.sessions() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        return {"status": "ok"}

    return app


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
