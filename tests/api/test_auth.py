"""Bearer tokens: the configured HMAC algorithm only, an expiry always, the audience and the
issuer when configured; a refusal names the reason and never repeats what the token said.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.testing import WorkflowEnvironment

from api.auth import issue_token
from infra.db import SessionFactory
from tests.support.stack import Stack, stack_on, unique

AUDIENCE = "auction-api"
ISSUER = "https://id.example.test/"
PROTECTED = "/api/payments/my-payments"


@pytest_asyncio.fixture(scope="module")
async def strict_stack(
    database_url: str,
    localstripe_url: str,
    sessions: SessionFactory,
    temporal_dev: WorkflowEnvironment,
) -> AsyncIterator[Stack]:
    """A deployment that names its audience and issuer and signs with HS512."""
    async with stack_on(
        temporal_dev,
        sessions,
        database_url,
        localstripe_url,
        jwt_algorithm="HS512",
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
        jwt_secret=f"test-jwt-hs512-{uuid.uuid4().hex}{uuid.uuid4().hex}",
    ) as running:
        yield running


def claims(who: str, **extra: object) -> dict[str, object]:
    now = int(time.time())
    return {"sub": who, "email": f"{who}@example.com", "iat": now, "exp": now + 600, **extra}


async def call_with(stack: Stack, token: str) -> httpx.Response:
    return await stack.http.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})


async def refused(stack: Stack, token: str) -> str:
    response = await call_with(stack, token)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    return detail


async def test_a_valid_token_is_accepted(stack: Stack) -> None:
    token = jwt.encode(claims(unique("buyer")), stack.settings.jwt_secret, algorithm="HS256")
    response = await call_with(stack, token)
    assert response.status_code == 200, response.text


async def test_a_token_without_an_expiry_is_refused(stack: Stack) -> None:
    forever = claims(unique("buyer"))
    del forever["exp"]
    token = jwt.encode(forever, stack.settings.jwt_secret, algorithm="HS256")
    assert await refused(stack, token) == "token has no exp claim"


async def test_an_expired_token_is_refused(stack: Stack) -> None:
    token = issue_token(
        stack.settings.jwt_secret,
        sub=unique("buyer"),
        email="late@example.com",
        now=int(time.time()) - 7200,
    )
    assert await refused(stack, token) == "token expired"


async def test_a_token_signed_with_another_key_is_refused(stack: Stack) -> None:
    token = jwt.encode(claims(unique("buyer")), "another-key-" + "x" * 32, algorithm="HS256")
    assert await refused(stack, token) == "token signature is invalid"


@pytest.mark.parametrize("algorithm", ["none", "HS384", "HS512"])
async def test_only_the_configured_algorithm_is_accepted(stack: Stack, algorithm: str) -> None:
    # PyJWT takes "" as the absent key of `none`.
    key = "" if algorithm == "none" else stack.settings.jwt_secret + "-" * 32
    token = jwt.encode(claims(unique("buyer")), key, algorithm=algorithm)
    assert await refused(stack, token) == "token algorithm is not accepted"


async def test_a_malformed_token_is_refused(stack: Stack) -> None:
    assert await refused(stack, "not.a.jwt") == "token is malformed"


async def test_invalid_claims_are_named_but_never_repeated(stack: Stack) -> None:
    token = jwt.encode(
        claims(unique("buyer"), email="leaked-SECRET-value", name="n" * 300),
        stack.settings.jwt_secret,
        algorithm="HS256",
    )
    response = await call_with(stack, token)
    assert response.status_code == 401
    assert response.json() == {"detail": "token claims are invalid: email, name"}
    assert "SECRET" not in response.text


@pytest.mark.parametrize(
    ("claim", "value"), [("sub", "nul\x00byte"), ("name", "lone \ud800 surrogate")]
)
async def test_claims_postgresql_cannot_store_are_refused(
    stack: Stack, claim: str, value: str
) -> None:
    token = jwt.encode(
        claims(unique("buyer"), **{claim: value}), stack.settings.jwt_secret, algorithm="HS256"
    )
    assert await refused(stack, token) == f"token claims are invalid: {claim}"


async def test_a_configured_audience_and_issuer_are_required(strict_stack: Stack) -> None:
    secret = strict_stack.settings.jwt_secret
    who = unique("buyer")

    def signed(**extra: object) -> str:
        return jwt.encode(claims(who, **extra), secret, algorithm="HS512")

    assert await refused(strict_stack, signed(iss=ISSUER)) == "token has no aud claim"
    assert await refused(strict_stack, signed(aud=AUDIENCE)) == "token has no iss claim"
    assert (
        await refused(strict_stack, signed(aud="another-api", iss=ISSUER))
        == "token audience is not accepted"
    )
    assert (
        await refused(strict_stack, signed(aud=AUDIENCE, iss="https://elsewhere.example.test/"))
        == "token issuer is not accepted"
    )
    hs256 = jwt.encode(claims(who, aud=AUDIENCE, iss=ISSUER), secret, algorithm="HS256")
    assert await refused(strict_stack, hs256) == "token algorithm is not accepted"
    accepted = await call_with(strict_stack, signed(aud=AUDIENCE, iss=ISSUER))
    assert accepted.status_code == 200, accepted.text


async def test_issued_tokens_carry_the_configured_audience_and_issuer(strict_stack: Stack) -> None:
    settings = strict_stack.settings
    token = issue_token(
        settings.jwt_secret,
        sub=unique("buyer"),
        email="buyer@example.com",
        now=int(time.time()),
        algorithm=settings.jwt_algorithm,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    assert (await call_with(strict_stack, token)).status_code == 200


MARK = "MARK"
marked_text = st.text(max_size=40).map(lambda text: MARK + text)
claim_values = st.one_of(
    marked_text,
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(marked_text, max_size=3),
    st.dictionaries(marked_text, marked_text, max_size=2),
)
claim_names = st.sampled_from(["sub", "email", "name", "roles", "exp", "iat", "nbf", "jti"])


@settings(
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(tampered=st.dictionaries(claim_names, claim_values, max_size=4))
async def test_any_claims_are_answered_without_echo_and_without_a_server_error(
    stack: Stack, tampered: dict[str, Any]
) -> None:
    token = jwt.encode(
        {**claims(unique("buyer")), **tampered}, stack.settings.jwt_secret, algorithm="HS256"
    )
    response = await call_with(stack, token)
    assert response.status_code in (200, 401), response.text
    assert MARK not in response.text
