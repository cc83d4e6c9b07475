"""FastAPI dependencies, as `Annotated` aliases the routes declare."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from api.auth import Caller, decode_token, identify_caller, unauthorized
from api.errors import forbidden
from api.schemas import BIGINT_MAX
from api.services import Services

_bearer = HTTPBearer(auto_error=False)

# Path ids outside the bigint range are a 422 naming the parameter, not a database error.
ArtworkId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="The artwork's id.")]
PaymentId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="The payment's id.")]
BidId = Annotated[
    int,
    Path(ge=1, le=BIGINT_MAX, description="The winning bid's id: its saga is payment-bid-{id}."),
]


# Dependencies are all `async def`: FastAPI runs a plain `def` one in its thread pool, a hop
# to another thread and back on every request for what is an attribute read.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    async with services.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_read_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    """For a route that only reads: every statement is its own transaction. Under READ
    COMMITTED each statement of a transaction takes its own snapshot anyway, so a BEGIN and
    a COMMIT around reads are two round trips that make them agree on nothing more."""
    async with services.autocommit_sessions() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]


async def get_caller(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None:
        raise unauthorized("missing bearer token")
    claims = decode_token(credentials.credentials, services.settings)
    # Its own session, statement by statement: the route's transaction is not begun for it.
    async with services.autocommit_sessions() as session:
        return await identify_caller(session, claims)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def require_operator(caller: CallerDep) -> Caller:
    if not caller.is_operator:
        raise forbidden("only operators can do this")
    return caller


OperatorDep = Annotated[Caller, Depends(require_operator)]
