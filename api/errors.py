"""Errors as the API answers them: 422 with the field, 409 for state, 503 when a backend is away."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from temporalio.service import RPCError

from api.sagas import CheckoutFailed, TemporalUnavailable
from domain.money import MoneyError

log = logging.getLogger(__name__)


def conflict(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, detail=detail)


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found")


def forbidden(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)


def unprocessable(field: str, message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, naming the body field."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"type": "value_error", "loc": ["body", field], "msg": message}],
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MoneyError)
    async def _money(_: Request, error: MoneyError) -> JSONResponse:
        refused = unprocessable(error.field, str(error))
        return JSONResponse({"detail": refused.detail}, status_code=refused.status_code)

    @app.exception_handler(CheckoutFailed)
    async def _checkout_failed(request: Request, error: CheckoutFailed) -> JSONResponse:
        log.error("Checkout saga failed during %s: %s", request.url.path, error)
        return JSONResponse(
            {"detail": f"this checkout failed and waits for an operator: {error}"},
            status_code=status.HTTP_409_CONFLICT,
        )

    @app.exception_handler(RPCError)
    @app.exception_handler(TemporalUnavailable)
    async def _temporal_unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning("Temporal unavailable during %s: %s", request.url.path, error)
        return JSONResponse(
            {"detail": "the checkout service is temporarily unavailable; retry shortly"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(IntegrityError)
    async def _concurrent_write(request: Request, error: IntegrityError) -> JSONResponse:
        log.info("Conflicting write during %s: %s", request.url.path, error.orig)
        return JSONResponse(
            {"detail": "a concurrent change conflicts with this request; reload and retry"},
            status_code=status.HTTP_409_CONFLICT,
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(OSError)
    async def _database_unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning("Database error during %s: %s", request.url.path, error)
        return JSONResponse(
            {"detail": "the database is temporarily unavailable; retry shortly"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
