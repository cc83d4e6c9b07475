"""The FastAPI application: `uvicorn api.main:app`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

from api.deps import ServicesDep
from api.errors import error_responses, install_error_handlers
from api.routes import artworks, bids, payments, webhooks
from api.routes import codec as codec_routes
from api.routes.codec import CodecCors
from api.sagas import CheckoutSagas
from api.services import Services
from infra.announcer import Announcer
from infra.db import create_engine, session_factory
from infra.settings import Settings, get_settings
from infra.temporal import data_converter, payload_codec


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or get_settings()
        resolved.refuse_development_secrets("jwt_secret", "stripe_webhook_secret")
        codec = payload_codec(resolved)  # no keys, no API: it could start no saga
        engine = create_engine(resolved.require_database_url())
        app.state.services = Services(
            settings=resolved,
            sessions=session_factory(engine),
            sagas=CheckoutSagas(resolved, data_converter(resolved, codec)),
            announcer=Announcer(resolved.mail_from),
            codec=codec,
        )
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Auction payments",
        summary="Turns a winning bid into money, or gives the artwork back to the auction.",
        lifespan=lifespan,
    )
    for module in (webhooks, artworks, bids, payments, codec_routes):
        app.include_router(module.router)
    install_error_handlers(app)
    app.add_middleware(CodecCors)

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
