"""Errors as the API answers them: 422 with the field, 409 for state, 503 when a backend is away."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from temporalio.service import RPCError

from api.sagas import CheckoutFailed, TemporalUnavailable
from api.schemas import ErrorDetail
from domain.money import MoneyError

log = logging.getLogger(__name__)


# What each error status means on this API; routes name theirs so /openapi.json lists them.
ERROR_MEANINGS: dict[int, str] = {
    400: "The body could not be read as JSON.",
    401: "No bearer token, or one that is refused; `detail` says why.",
    402: "The card was declined; `detail` is the reason.",
    403: "The caller may not do this.",
    404: "Not found.",
    409: "The artwork or its checkout does not allow this now; `detail` says why.",
    503: "Temporal or the database is unavailable, or busy; retry after `Retry-After` seconds.",
}
_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}},
}


def error_responses(
    *codes: int, meaning: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route for these error statuses, all answered as `ErrorDetail`.

    A 422 needs no entry: FastAPI declares its validation shape, which ours keep.
    """
    meaning = meaning or {}
    return {
        code: {
            "model": ErrorDetail,
            "description": meaning.get(code, ERROR_MEANINGS[code]),
            **({"headers": _ERROR_HEADERS[code]} if code in _ERROR_HEADERS else {}),
        }
        for code in codes
    }


def conflict(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, detail=detail)


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found")


def forbidden(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)


def unprocessable(field: str, message: str, where: str = "body") -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, naming the field (of the body, or
    of the `query`)."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"type": "value_error", "loc": [where, field], "msg": message}],
    )


CHECKOUT_FAILED = "this checkout failed; operators can find it in Temporal as its workflow"

# What a database that is away (down, restarting, unreachable) raises, and what callers hear.
DATABASE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError, OSError)
DATABASE_UNAVAILABLE = "the database is temporarily unavailable; retry shortly"
# What callers hear when every connection of the pool stayed in use past its time-out.
DATABASE_BUSY = "the service is busy: no database connection came free in time; retry shortly"
# Where a database refusal is among: catch these, then ask `database_refusal`.
DATABASE_FAILURES: tuple[type[Exception], ...] = (SQLAlchemyError, OSError)


def database_refusal(error: BaseException) -> str | None:
    """What the caller hears when `error` means the database cannot serve them now, and so
    a retry shortly may work; None for an error that is a bug.

    Away: down, restarting or unreachable, or a connection that died under a statement
    (asyncpg then raises a plain driver error, which SQLAlchemy marks as having invalidated
    the connection). Busy: the pool had no connection free within its time-out.
    """
    if isinstance(error, PoolTimeout):
        return DATABASE_BUSY
    if isinstance(error, DATABASE_ERRORS):
        return DATABASE_UNAVAILABLE
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return DATABASE_UNAVAILABLE
    return None


async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 shape without `input`: it would send the caller's value back, and a
    value JSON allows but cannot carry back (1e400 parses as infinity) broke the answer."""
    detail = [
        {key: value for key, value in entry.items() if key != "input"} for entry in error.errors()
    ]
    return JSONResponse(
        {"detail": _finite(jsonable_encoder(detail))},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


async def money_refused(_: Request, error: MoneyError) -> JSONResponse:
    refused = unprocessable(error.field, str(error))
    return JSONResponse({"detail": refused.detail}, status_code=refused.status_code)


async def checkout_failed(request: Request, error: CheckoutFailed) -> JSONResponse:
    # The cause is often Stripe's own error text: for the logs and Temporal, not the caller.
    log.error("Checkout saga failed during %s: %s", request.url.path, error)
    return JSONResponse({"detail": CHECKOUT_FAILED}, status_code=status.HTTP_409_CONFLICT)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(MoneyError, money_refused)  # type: ignore[arg-type]
    app.add_exception_handler(CheckoutFailed, checkout_failed)  # type: ignore[arg-type]

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

    async def _database_unavailable(request: Request, error: Exception) -> JSONResponse:
        refusal = database_refusal(error)
        if refusal is None:
            raise error  # a bug, not an outage: answered 500 and logged as any other
        log.warning("Database error during %s: %s", request.url.path, error)
        return JSONResponse(
            {"detail": refusal},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )

    # IntegrityError keeps its own handler: the most specific class is the one looked up.
    for kind in (*DATABASE_ERRORS, PoolTimeout, DBAPIError):
        app.add_exception_handler(kind, _database_unavailable)
