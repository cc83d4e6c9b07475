"""Bearer JWTs: who is calling, recorded in `users` from the token's claims.

Only the configured HMAC algorithm is accepted, an expiry is required, and the audience and
the issuer are checked when configured. A refusal gives its reason in fixed words: nothing
the caller sent (claim values, decoder or validator messages) is repeated back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import HTTPException, status
from pydantic import AfterValidator, BaseModel, EmailStr, Field, ValidationError
from sqlalchemy import func, or_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.schemas import StoredText, storable_text
from infra.settings import JwtAlgorithm, Settings
from infra.tables import User

OPERATOR_ROLE = "operator"
REQUIRED_CLAIMS = ("exp", "sub", "email")

# Any other refusal (PyJWT's decode errors: bad base64, JSON, header) is `token is malformed`.
_REFUSALS: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.InvalidSignatureError, "token signature is invalid"),
    (jwt.InvalidAlgorithmError, "token algorithm is not accepted"),
    (jwt.InvalidAudienceError, "token audience is not accepted"),
    (jwt.InvalidIssuerError, "token issuer is not accepted"),
    (jwt.ImmatureSignatureError, "token is not valid yet"),
    (jwt.InvalidIssuedAtError, "token claims are invalid: iat"),
    (jwt.exceptions.InvalidSubjectError, "token claims are invalid: sub"),
    (jwt.exceptions.InvalidJTIError, "token claims are invalid: jti"),
)
# PyJWT reports a non-numeric exp or nbf as a decode error naming the claim in parentheses.
_TIME_CLAIMS = ("exp", "nbf")


class TokenClaims(BaseModel):
    sub: StoredText = Field(min_length=1, max_length=255)
    email: Annotated[EmailStr, AfterValidator(storable_text)]
    name: StoredText | None = Field(default=None, max_length=255)
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


def decode_token(token: str, settings: Settings) -> TokenClaims:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[settings.jwt_algorithm.value],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            # Without a configured audience, whatever `aud` a token names is not ours to judge.
            options={
                "require": list(REQUIRED_CLAIMS),
                "verify_aud": settings.jwt_audience is not None,
            },
        )
    except jwt.InvalidTokenError as invalid:
        raise unauthorized(refusal_reason(invalid)) from None
    try:
        return TokenClaims.model_validate(claims)
    except ValidationError as invalid:
        raise unauthorized(f"token claims are invalid: {invalid_fields(invalid)}") from None


def refusal_reason(invalid: jwt.InvalidTokenError) -> str:
    if isinstance(invalid, jwt.MissingRequiredClaimError):
        return f"token has no {invalid.claim} claim"  # one of the names we required
    for kind, reason in _REFUSALS:
        if isinstance(invalid, kind):
            return reason
    for claim in _TIME_CLAIMS:
        if f"({claim})" in str(invalid):
            return f"token claims are invalid: {claim}"
    return "token is malformed"


def invalid_fields(invalid: ValidationError) -> str:
    """The claims' names only: pydantic's own text would quote the values."""
    names = {str(error["loc"][0]) for error in invalid.errors() if error["loc"]}
    return ", ".join(sorted(names & TokenClaims.model_fields.keys())) or "claims"


async def identify_caller(session: AsyncSession, claims: TokenClaims) -> Caller:
    """The caller the token names, as a `users` row: read, and written only when the user is
    new or the token says something new about them.

    Every authenticated request comes through here. An upsert on each would lock the user's
    row (and so write to it, and flush the WAL at commit) even when nothing changed; a read
    takes no lock. Each statement stands alone (the API gives this an autocommit session):
    the read, the upsert and the read after it need no snapshot in common, and no
    connection waits in a transaction while the route waits on Temporal.
    """
    query = select(User.id, User.email, User.name).where(User.subject == claims.sub)
    known = (await session.exec(query)).first()
    if known is not None and tuple(known[1:]) == (claims.email, claims.name):
        user_id = known[0]
    else:
        user_id = await _record_user(session, claims)
    await session.commit()
    assert user_id is not None
    return Caller(
        id=user_id,
        subject=claims.sub,
        email=claims.email,
        name=claims.name,
        is_operator=OPERATOR_ROLE in claims.roles,
    )


async def _record_user(session: AsyncSession, claims: TokenClaims) -> int:
    """Inserts the user, or updates what the token changed. Two first requests of the same
    new user may both get here: the conflict clause makes the second an update, or nothing."""
    table = User.__table__  # type: ignore[attr-defined]
    upsert = insert(table).values(subject=claims.sub, email=claims.email, name=claims.name)
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
    if user_id is None:  # a concurrent request wrote the same claims first
        user_id = (await session.exec(select(User.id).where(User.subject == claims.sub))).one()
    assert user_id is not None
    return int(user_id)


def issue_token(
    secret: str,
    *,
    sub: str,
    email: str,
    name: str | None = None,
    roles: list[str] | None = None,
    expires_in_seconds: int = 3600,
    now: int,
    algorithm: JwtAlgorithm = JwtAlgorithm.HS256,
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    """A token as the identity provider would issue it (for `make token`, demos and tests).

    Pass the deployment's `jwt_algorithm`, `jwt_audience` and `jwt_issuer` when it sets them.
    """
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
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm=JwtAlgorithm(algorithm).value)
