"""Who may call what: every route against every kind of caller, in one table.

The scene is built once: an artwork whose auction closed on the buyer's bid, its checkout
waiting for payment. Refused tokens are the buyer's own, flawed one way each.
"""

from __future__ import annotations

import json
import time
from base64 import b64encode
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import jwt
import pytest
import pytest_asyncio
from schemathesis import BaseSchema

from api.auth import issue_token
from tests.api.conftest import assert_documented, closed_auction
from tests.support.stack import Stack, unique
from tests.support.stripe_events import signed

CALLERS = (
    "no token",
    "expired",
    "no exp",
    "wrong key",
    "alg none",
    "buyer",
    "other buyer",
    "seller",
    "operator",
)
REFUSALS = {
    "no token": "missing bearer token",
    "expired": "token expired",
    "no exp": "token has no exp claim",
    "wrong key": "token signature is invalid",
    "alg none": "token algorithm is not accepted",
}
# fmt: off
MATRIX: dict[str, tuple[int, ...]] = {
    #                                          none exp  !exp key  none buyer other seller op
    "POST /api/artworks":                      (401, 401, 401, 401, 401, 201, 201, 201, 201),
    "GET /api/artworks/{artwork_id}":          (401, 401, 401, 401, 401, 200, 200, 200, 200),
    "POST /api/artworks/{artwork_id}/bids":    (401, 401, 401, 401, 401, 409, 409, 403, 409),
    "POST /api/artworks/{artwork_id}/close":   (401, 401, 401, 401, 401, 403, 403, 200, 200),
    "POST /api/payments/create-intent":        (401, 401, 401, 401, 401, 200, 403, 403, 403),
    "GET /api/payments/my-payments":           (401, 401, 401, 401, 401, 200, 200, 200, 200),
    "GET /api/payments/{payment_id}":          (401, 401, 401, 401, 401, 200, 404, 404, 200),
    # The checkout page's routes: the winner's only. The buyer's card here is one Stripe
    # does not know, so the checkout stays open for the rest of the table.
    "GET /api/payments/{bid_id}/checkout":     (401, 401, 401, 401, 401, 200, 403, 403, 403),
    "POST /api/payments/{bid_id}/setup-intent": (401, 401, 401, 401, 401, 200, 403, 403, 403),
    "POST /api/payments/{bid_id}/pay":         (401, 401, 401, 401, 401, 409, 403, 403, 403),
    "GET /api/operator/notifications":         (401, 401, 401, 401, 401, 403, 403, 403, 200),
    "GET /api/operator/checkouts":             (401, 401, 401, 401, 401, 403, 403, 403, 200),
    "POST /api/operator/checkouts/{bid_id}/extend": (401, 401, 401, 401, 401, 403, 403, 403, 200),
    "POST /api/operator/checkouts/{bid_id}/cancel": (401, 401, 401, 401, 401, 403, 403, 403, 200),
    # Signed by Stripe, not by a bearer token: whatever Authorization says is irrelevant.
    "POST /api/payments/webhook":              (200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /healthz":                            (200, 200, 200, 200, 200, 200, 200, 200, 200),
    # Temporal's payloads, decrypted: operators only.
    "POST /codec/decode":                      (401, 401, 401, 401, 401, 403, 403, 403, 200),
    "POST /codec/encode":                      (401, 401, 401, 401, 401, 403, 403, 403, 200),
    # The token is in the form, not the header: the same table all the same.
    "POST /codec/login":                       (401, 401, 401, 401, 401, 403, 403, 403, 200),
    "GET /codec/login":                        (200, 200, 200, 200, 200, 200, 200, 200, 200),
    "POST /codec/logout":                      (204, 204, 204, 204, 204, 204, 204, 204, 204),
}
# fmt: on


@dataclass(frozen=True)
class Scene:
    artwork_id: int
    bid_id: int
    payment_id: int
    headers: dict[str, dict[str, str]]  # per caller
    spare_bid_id: int  # a second checkout, for the operator to cancel


@pytest_asyncio.fixture(scope="module")
async def scene(stack: Stack) -> Scene:
    closed = await closed_auction(stack)
    intent = await stack.post(
        "/api/payments/create-intent", closed.buyer, {"bid_id": closed.bid_id}
    )
    assert intent.status_code == 200, intent.text
    secret, now = stack.settings.jwt_secret, int(time.time())
    email = f"{closed.buyer}@example.com"
    claims = {"sub": closed.buyer, "email": email, "exp": now + 600}
    no_exp = {"sub": closed.buyer, "email": email}
    tokens = {
        "expired": issue_token(secret, sub=closed.buyer, email=email, now=now - 7200),
        "no exp": jwt.encode(no_exp, secret, algorithm="HS256"),
        "wrong key": jwt.encode(claims, "not-the-deployment-key-" + "k" * 32, algorithm="HS256"),
        "alg none": jwt.encode(claims, "", algorithm="none"),
    }
    headers = {
        "no token": {},
        **{caller: {"Authorization": f"Bearer {token}"} for caller, token in tokens.items()},
        "buyer": stack.headers(closed.buyer),
        "other buyer": stack.headers(unique("other-buyer")),
        "seller": stack.headers(closed.seller),
        "operator": stack.headers(unique("operator"), roles=["operator"]),
    }
    spare = await closed_auction(stack)
    return Scene(
        closed.artwork_id, closed.bid_id, intent.json()["payment_id"], headers, spare.bid_id
    )


async def call(stack: Stack, scene: Scene, route: str, caller: str) -> httpx.Response:
    method, template = route.split(" ")
    bid_id = scene.spare_bid_id if template.endswith("/cancel") else scene.bid_id
    path = template.format(artwork_id=scene.artwork_id, payment_id=scene.payment_id, bid_id=bid_id)
    headers = dict(scene.headers[caller])
    stack.http.cookies.clear()  # a codec sign-in earlier in the table must not vouch for anyone
    content: bytes | None = None
    if template == "/api/artworks":
        content = json.dumps({"title": "Matrix", "starting_price": "20.00"}).encode()
    elif template.endswith("/bids"):
        content = json.dumps({"amount": "9000.00"}).encode()
    elif template.endswith("/create-intent"):
        content = json.dumps({"bid_id": scene.bid_id}).encode()
    elif template.endswith("/pay"):
        content = json.dumps({"payment_method": "pm_matrix_unknown"}).encode()
    elif template.endswith("/extend"):
        content = json.dumps({"minutes": 1, "reason": "matrix"}).encode()
    elif template.endswith("/cancel"):
        content = json.dumps({"reason": "matrix"}).encode()
    elif template.startswith("/codec/") and method == "POST" and template != "/codec/logout":
        content = codec_body(template, headers)
    elif template.endswith("/webhook"):
        event = {"id": f"evt_{unique('matrix')}", "type": "customer.created", "data": {}}
        content, signature = signed(event, stack.settings.stripe_webhook_secret)
        headers["Stripe-Signature"] = signature
    if content is not None and "Content-Type" not in headers:
        headers["Content-Type"] = "application/json"
    return await stack.http.request(method, path, headers=headers, content=content)


def codec_body(template: str, headers: dict[str, str]) -> bytes:
    if template == "/codec/login":
        token = headers.pop("Authorization", "").removeprefix("Bearer ")
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return urlencode({"token": token}).encode()
    # A payload from before the codec: decoding passes it through, encoding seals it.
    plain = {"metadata": {"encoding": b64encode(b"json/plain").decode()}, "data": "bnVsbA=="}
    return json.dumps({"payloads": [plain]}).encode()


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", MATRIX)
async def test_who_may_call_what(
    stack: Stack, scene: Scene, documented: BaseSchema, route: str, caller: str
) -> None:
    expected = MATRIX[route][CALLERS.index(caller)]
    response = await call(stack, scene, route, caller)
    assert response.status_code == expected, response.text
    if expected == 401:
        assert response.json() == {"detail": REFUSALS[caller]}
        assert response.headers["WWW-Authenticate"] == "Bearer"
    method, template = route.split(" ")
    assert_documented(documented, method, template, response)
