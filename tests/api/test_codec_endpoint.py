"""The codec endpoint: Temporal's remote codec protocol, for operators only, for this namespace,
callable from the Web UI's origin with the cookie a browser gets from /codec/login."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest

from api.auth import issue_token
from infra.payload_codec import KEY_ID_METADATA
from tests.support.stack import Stack, serve_api, settings_for, unique

UI = "http://localhost:8233"  # TEMPORAL_UI_ORIGIN's default


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def plain(value: Any) -> dict[str, Any]:
    """A payload as the pydantic converter writes it, before any codec."""
    return {"metadata": {"encoding": b64(b"json/plain")}, "data": b64(json.dumps(value).encode())}


def operator(stack: Stack) -> dict[str, str]:
    return stack.headers(unique("operator"), roles=["operator"])


async def codec_call(
    stack: Stack, action: str, payloads: list[dict[str, Any]], headers: dict[str, str]
) -> httpx.Response:
    return await stack.http.post(f"/codec/{action}", json={"payloads": payloads}, headers=headers)


async def test_what_the_codec_encodes_it_decodes(stack: Stack) -> None:
    originals = [plain({"phase": "sold", "amount": "154.79"}), plain(None), plain("x" * 300)]
    sealed = await codec_call(stack, "encode", originals, operator(stack))
    assert sealed.status_code == 200, sealed.text
    for payload in sealed.json()["payloads"]:
        assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"
        assert base64.b64decode(payload["metadata"][KEY_ID_METADATA]) == b"test-session"
        assert b"154.79" not in base64.b64decode(payload["data"])
    opened = await codec_call(stack, "decode", sealed.json()["payloads"], operator(stack))
    assert opened.status_code == 200, opened.text
    assert opened.json() == {"payloads": originals}


async def test_a_payload_from_before_the_codec_decodes_unchanged(stack: Stack) -> None:
    before = [plain({"phase": "awaiting_payment"}), {"metadata": {"encoding": b64(b"binary/null")}}]
    response = await codec_call(stack, "decode", before, operator(stack))
    assert response.status_code == 200, response.text
    assert response.json()["payloads"][0] == before[0]
    assert response.json()["payloads"][1]["metadata"] == before[1]["metadata"]


async def test_url_safe_and_unpadded_base64_is_read_as_protobuf_json_allows(stack: Stack) -> None:
    data = b"\xfb\xff\xfe"  # '+/' in standard base64, '-_' in the URL-safe one
    payload = {"metadata": {"encoding": "YmluYXJ5L3BsYWlu"}, "data": "-__-"}
    response = await codec_call(stack, "decode", [payload], operator(stack))
    assert response.status_code == 200, response.text
    assert base64.b64decode(response.json()["payloads"][0]["data"]) == data


async def test_a_payload_under_an_unknown_key_is_a_400_naming_the_key(stack: Stack) -> None:
    (sealed,) = (await codec_call(stack, "encode", [plain(1)], operator(stack))).json()["payloads"]
    sealed["metadata"][KEY_ID_METADATA] = b64(b"retired-2019")
    response = await codec_call(stack, "decode", [plain(0), sealed], operator(stack))
    assert response.status_code == 400
    assert "payload 1 is encrypted with key id 'retired-2019'" in response.json()["detail"]


async def test_altered_ciphertext_is_a_400(stack: Stack) -> None:
    (sealed,) = (await codec_call(stack, "encode", [plain(1)], operator(stack))).json()["payloads"]
    data = bytearray(base64.b64decode(sealed["data"]))
    data[-1] ^= 1
    sealed["data"] = b64(bytes(data))
    response = await codec_call(stack, "decode", [sealed], operator(stack))
    assert response.status_code == 400
    assert "does not decrypt" in response.json()["detail"]


async def test_not_base64_is_a_422_naming_the_field(stack: Stack) -> None:
    response = await codec_call(stack, "decode", [{"data": "not base64!"}], operator(stack))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "payloads", 0, "data"]


@pytest.mark.parametrize(("namespace", "expected"), [("default", 200), ("payments-eu", 403)])
async def test_only_this_deployments_namespace_is_served(
    stack: Stack, namespace: str, expected: int
) -> None:
    headers = {**operator(stack), "X-Namespace": namespace}
    response = await codec_call(stack, "decode", [plain(1)], headers)
    assert response.status_code == expected, response.text
    if expected == 403:
        assert response.json() == {"detail": "this codec serves the namespace 'default' only"}


async def test_the_ui_origin_may_call_with_credentials_and_the_headers_it_sends(
    stack: Stack,
) -> None:
    preflight = await stack.http.options(
        "/codec/decode",
        headers={
            "Origin": UI,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["Access-Control-Allow-Origin"] == UI
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    allowed_headers = preflight.headers["Access-Control-Allow-Headers"].split(",")
    allowed = {name.strip().lower() for name in allowed_headers}
    assert {"authorization", "content-type", "x-namespace"} <= allowed
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]

    answer = await codec_call(stack, "decode", [plain(1)], {**operator(stack), "Origin": UI})
    assert answer.headers["Access-Control-Allow-Origin"] == UI
    refused = await codec_call(stack, "decode", [plain(1)], {"Origin": UI})
    assert refused.status_code == 401  # and the UI may read why
    assert refused.headers["Access-Control-Allow-Origin"] == UI


async def test_no_other_origin_and_no_other_route(stack: Stack) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    elsewhere = await stack.http.options(
        "/codec/decode", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 400
    assert "Access-Control-Allow-Origin" not in elsewhere.headers
    api = await stack.http.options("/api/artworks", headers={**preflight, "Origin": UI})
    assert "Access-Control-Allow-Origin" not in api.headers


async def test_a_browser_signs_in_once_and_then_decodes_with_its_cookie(stack: Stack) -> None:
    page = await stack.http.get("/codec/login")
    assert page.status_code == 200 and 'name="token"' in page.text
    token = operator(stack)["Authorization"].removeprefix("Bearer ")
    async with httpx.AsyncClient(base_url=stack.http.base_url) as browser:
        signed_in = await browser.post("/codec/login", data={"token": token})
        assert signed_in.status_code == 200, signed_in.text
        assert "text/html" in signed_in.headers["Content-Type"]
        cookie = signed_in.headers["Set-Cookie"]
        for attribute in ("codec_token=", "HttpOnly", "Path=/codec/", "SameSite=strict"):
            assert attribute in cookie
        assert "Secure" not in cookie  # plain http on a laptop; production always sets it
        max_age = int(cookie.split("Max-Age=")[1].split(";")[0])
        assert 3500 < max_age <= 3600  # until the token expires, an hour from now

        decoded = await browser.post("/codec/decode", json={"payloads": [plain(7)]})
        assert decoded.status_code == 200, decoded.text
        # A header that is sent is the credential: a cookie does not rescue a bad one.
        bad_header = await browser.post(
            "/codec/decode",
            json={"payloads": [plain(7)]},
            headers={"Authorization": "Bearer not-a-token"},
        )
        assert bad_header.status_code == 401

        signed_out = await browser.post("/codec/logout")
        assert signed_out.status_code == 204
        after = await browser.post("/codec/decode", json={"payloads": [plain(7)]})
        assert after.status_code == 401
        assert after.json() == {"detail": "missing bearer token"}
    assert token not in str(stack.http.cookies)  # the other clients never got it


async def test_only_an_operators_token_signs_a_browser_in(stack: Stack) -> None:
    buyer = stack.headers(unique("buyer"))["Authorization"].removeprefix("Bearer ")
    refused = await stack.http.post("/codec/login", data={"token": buyer})
    assert refused.status_code == 403
    assert "set-cookie" not in refused.headers
    nothing = await stack.http.post("/codec/login", data={"token": "  "})
    assert nothing.status_code == 401
    assert nothing.json() == {"detail": "missing bearer token"}


async def test_in_production_the_cookie_is_https_only(
    stack: Stack, database_url: str, localstripe_url: str
) -> None:
    production = settings_for(database_url, localstripe_url, environment="production")
    token = issue_token(
        production.jwt_secret,
        sub="ops",
        email="ops@example.com",
        roles=["operator"],
        now=int(time.time()),
    )
    async with serve_api(production) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        signed_in = await http.post("/codec/login", data={"token": token})
    assert signed_in.status_code == 200, signed_in.text
    assert "Secure" in signed_in.headers["Set-Cookie"]
