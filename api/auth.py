"""Bearer JWTs (HS256): who is calling, upserted into `users` from the token's claims."""

from __future__ import annotations

from dataclasses import dataclass

import jwt
from fastapi import HTTPException, status
from pydantic import BaseModel, EmailStr, Field, ValidationError
from sqlalchemy import func, or_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from infra.tables import User

OPERATOR_ROLE = "operator"


class TokenClaims(BaseModel):
    sub: str = Field(min_length=1, max_length=255)
    email: EmailStr
    name: str | None = Field(default=None, max_length=255)
    roles: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Caller:
    id: int
    subject: str
    email: str
    name: str | None
    is_operator: bool


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def decode_token(token: str, secret: str) -> TokenClaims:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["sub", "email"]}
        )
        return TokenClaims.model_validate(claims)
    except (jwt.InvalidTokenError, ValidationError) as invalid:
        raise unauthorized(f"invalid token: {invalid}") from None


async def upsert_caller(session: AsyncSession, claims: TokenClaims) -> Caller:
    table = User.__table__  # type: ignore[attr-defined]
    upsert = insert(table).values(subject=claims.sub, email=claims.email, name=claims.name)
    # Writes only when the token says something new, so most requests stay read-only.
    statement = upsert.on_conflict_do_update(
        index_elements=[table.c.subject],
        set_={
            "email": upsert.excluded.email,
            "name": upsert.excluded.name,
            "updated_at": func.now(),
        },
        where=or_(
            table.c.email.is_distinct_from(upsert.excluded.email),
            table.c.name.is_distinct_from(upsert.excluded.name),
        ),
    ).returning(table.c.id)
    user_id = (await session.exec(statement)).scalar_one_or_none()
    if user_id is None:
        user_id = (await session.exec(select(User.id).where(User.subject == claims.sub))).one()
    await session.commit()
    assert user_id is not None
    return Caller(
        id=user_id,
        subject=claims.sub,
        email=claims.email,
        name=claims.name,
        is_operator=OPERATOR_ROLE in claims.roles,
    )


def issue_token(
    secret: str,
    *,
    sub: str,
    email: str,
    name: str | None = None,
    roles: list[str] | None = None,
    expires_in_seconds: int = 3600,
    now: int,
) -> str:
    """A token as the identity provider would issue it (for `make token`, demos and tests)."""
    claims: dict[str, object] = {
        "sub": sub,
        "email": email,
        "iat": now,
        "exp": now + expires_in_seconds,
    }
    if name:
        claims["name"] = name
    if roles:
        claims["roles"] = roles
    return jwt.encode(claims, secret, algorithm="HS256")
