"""Temporal's remote codec, for operators: the Web UI and the CLI decode payloads through it.

`POST /codec/decode` and `/codec/encode` speak Temporal's codec protocol (the `Payloads`
message as protobuf JSON: base64 metadata values and data) for this deployment's namespace.

Who may call them: an operator's bearer token, from the `Authorization` header (the CLI's
`--codec-auth`, or a Web UI that forwards the access token it signed in with) or, for a
browser, from the cookie `POST /codec/login` sets. The cookie is HttpOnly, sent only to
`/codec/`, only from the same site (SameSite=Strict) and, in production, only over HTTPS;
CORS lets only the Web UI's origin read the answers.
"""

from __future__ import annotations

import base64
import binascii
import html
import logging
import time
from typing import Annotated

import jwt
from fastapi import APIRouter, Depends, Form, Header, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload

from api.auth import OPERATOR_ROLE, TokenClaims, decode_token, unauthorized
from api.deps import ServicesDep
from api.errors import error_responses, forbidden
from infra.payload_codec import PayloadDecryptionError
from infra.settings import Environment, Settings

log = logging.getLogger(__name__)

PREFIX = "/codec"
COOKIE = "codec_token"
# What the Web UI sends: JSON, the namespace, and its access token when told to forward it.
ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Namespace"]

router = APIRouter(prefix=PREFIX, tags=["codec"])
_bearer = HTTPBearer(auto_error=False)
_cookie = APIKeyCookie(
    name=COOKIE, auto_error=False, description="An operator's token, set by POST /codec/login."
)


def _base64(text: str) -> str:
    decode_base64(text)
    return text


def decode_base64(text: str) -> bytes:
    """Standard or URL-safe, padded or not: protobuf's JSON accepts them all."""
    standard = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64") from None


Base64Text = Annotated[str, AfterValidator(_base64), Field(json_schema_extra={"format": "byte"})]


class EncodedPayload(BaseModel):
    """A `temporal.api.common.v1.Payload` in protobuf JSON."""

    model_config = ConfigDict(extra="ignore")

    metadata: dict[str, Base64Text] = Field(default_factory=dict)
    data: Base64Text = ""

    def to_proto(self) -> Payload:
        return Payload(
            metadata={name: decode_base64(value) for name, value in self.metadata.items()},
            data=decode_base64(self.data),
        )

    @classmethod
    def of(cls, payload: Payload) -> EncodedPayload:
        return cls(
            metadata={name: _encode(value) for name, value in payload.metadata.items()},
            data=_encode(payload.data),
        )


def _encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class EncodedPayloads(BaseModel):
    """A `temporal.api.common.v1.Payloads` in protobuf JSON, as Temporal's codec clients send."""

    model_config = ConfigDict(extra="ignore")

    payloads: list[EncodedPayload] = Field(default_factory=list)


def operator_claims(token: str, settings: Settings) -> TokenClaims:
    claims = decode_token(token, settings)
    if OPERATOR_ROLE not in claims.roles:
        raise forbidden("only operators may use the codec")
    return claims


async def codec_operator(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> TokenClaims:
    # A header, when sent, is the credential: a bad one is not rescued by a cookie.
    token = credentials.credentials if credentials is not None else cookie
    if not token:
        raise unauthorized("missing bearer token")
    return operator_claims(token, services.settings)


async def served_namespace(
    services: ServicesDep,
    x_namespace: Annotated[
        str | None, Header(description="The namespace the payloads belong to.")
    ] = None,
) -> None:
    served = services.settings.temporal_namespace
    if x_namespace is not None and x_namespace != served:
        raise forbidden(f"this codec serves the namespace {served!r} only")


# Checked in this order: who calls, then for which namespace.
CODEC_CALLER = [Depends(codec_operator), Depends(served_namespace)]
CODEC_ERRORS = error_responses(
    400,
    401,
    403,
    meaning={
        400: "The body could not be read as JSON, or a payload could not be decrypted (a key "
        "id this deployment does not hold, or altered bytes); `detail` says which.",
        403: "The caller is not an operator, or `X-Namespace` names another namespace.",
    },
)


@router.post("/decode", responses=CODEC_ERRORS, dependencies=CODEC_CALLER)
async def decode(body: EncodedPayloads, services: ServicesDep) -> EncodedPayloads:
    """The payloads as the service wrote them: encrypted ones opened, others unchanged."""
    try:
        decoded = await services.codec.decode([payload.to_proto() for payload in body.payloads])
    except PayloadDecryptionError as refused:
        log.warning("Codec could not decode: %s", refused)
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(refused)) from None
    return EncodedPayloads(payloads=[EncodedPayload.of(payload) for payload in decoded])


@router.post("/encode", responses=CODEC_ERRORS, dependencies=CODEC_CALLER)
async def encode(body: EncodedPayloads, services: ServicesDep) -> EncodedPayloads:
    """The payloads encrypted with the current key, as the service would send them."""
    encoded = await services.codec.encode([payload.to_proto() for payload in body.payloads])
    return EncodedPayloads(payloads=[EncodedPayload.of(payload) for payload in encoded])


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Codec sign-in</title></head>
<body>
<h1>Decode Temporal payloads in this browser</h1>
<p>Paste an operator's bearer token. This browser then keeps it in a cookie that only this
API's <code>/codec/</code> endpoints receive, until the token expires.</p>
<form method="post">
<label for="token">Operator token</label><br>
<textarea id="token" name="token" rows="6" cols="80" required></textarea><br>
<button type="submit">Sign in</button>
</form>
</body></html>
"""

SIGNED_IN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Codec sign-in</title></head>
<body>
<h1>Signed in</h1>
<p>{who} may decode payloads in this browser until {until} UTC.</p>
<p>In the Temporal Web UI ({origins}), open the codec settings (the data encoder icon),
choose the browser's setting, enter <code>{endpoint}</code> and tick
"Include cross-origin credentials".</p>
</body></html>
"""


@router.get("/login", response_class=HTMLResponse)
async def login_page() -> HTMLResponse:
    """The form where an operator signs this browser in, for the Web UI's codec calls."""
    return HTMLResponse(LOGIN_PAGE)


@router.post(
    "/login",
    responses={
        # A page for the browser that posted the form; errors stay JSON like everywhere else.
        200: {
            "description": "Signed in.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **error_responses(
            400, 401, 403, meaning={403: "The token is valid, but not an operator's."}
        ),
    },
)
async def login(
    request: Request,
    services: ServicesDep,
    token: Annotated[str, Form(max_length=16384, description="An operator's bearer token.")] = "",
) -> HTMLResponse:
    """Keeps an operator's token in an HttpOnly cookie sent only to the codec endpoints.

    The token travels in the body, never in the URL, where access logs would keep it.
    """
    token = token.strip()
    if not token:
        raise unauthorized("missing bearer token")
    settings = services.settings
    claims = operator_claims(token, settings)
    expires_at = int(jwt.decode(token, options={"verify_signature": False})["exp"])
    page = SIGNED_IN_PAGE.format(
        who=html.escape(claims.sub),
        until=html.escape(time.strftime("%Y-%m-%d %H:%M", time.gmtime(expires_at))),
        origins=html.escape(", ".join(settings.temporal_ui_origins)),
        endpoint=html.escape(str(request.base_url).rstrip("/") + PREFIX),
    )
    response = HTMLResponse(page)
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(1, expires_at - int(time.time())),
        path=PREFIX + "/",
        secure=_cookie_secure(request, settings),
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, services: ServicesDep) -> Response:
    """Forgets the codec cookie of this browser."""
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        COOKIE,
        path=PREFIX + "/",
        secure=_cookie_secure(request, services.settings),
        httponly=True,
        samesite="strict",
    )
    return response


def _cookie_secure(request: Request, settings: Settings) -> bool:
    # Production sends it over HTTPS only (browsers count http://localhost as secure too);
    # a laptop on plain http://127.0.0.1 could not keep a Secure cookie at all.
    return settings.environment is Environment.PRODUCTION or request.url.scheme == "https"


class CodecCors:
    """CORS for the Web UI's origins, on the codec's paths only: the rest of the API has no
    business with browsers of other origins.

    The origins come from the settings the app's lifespan resolved, on the first request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._cors: CORSMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        if self._cors is None:
            settings: Settings = scope["app"].state.services.settings
            self._cors = CORSMiddleware(
                self.app,
                allow_origins=settings.temporal_ui_origins,
                allow_methods=["POST"],
                allow_headers=ALLOWED_HEADERS,
                allow_credentials=True,
            )
        await self._cors(scope, receive, send)
