"""/openapi.json tells clients every error a route answers, and the answers match it."""

from __future__ import annotations

from typing import Any

import pytest
from schemathesis import BaseSchema

from tests.api.conftest import assert_documented, open_auction
from tests.support.stack import Stack, running_stack, settings_for, unique

ERRORS_OF_ROUTES = {
    ("POST", "/api/artworks"): {400, 401, 422, 503},
    ("GET", "/api/artworks/{artwork_id}"): {401, 404, 422, 503},
    ("POST", "/api/artworks/{artwork_id}/bids"): {400, 401, 403, 404, 409, 422, 503},
    ("POST", "/api/artworks/{artwork_id}/close"): {401, 403, 404, 409, 422, 503},
    ("POST", "/api/payments/create-intent"): {400, 401, 403, 404, 409, 422, 503},
    ("GET", "/api/payments/my-payments"): {401, 503},
    ("GET", "/api/payments/{payment_id}"): {401, 404, 422, 503},
    ("GET", "/api/payments/{bid_id}/checkout"): {401, 403, 404, 422, 503},
    ("POST", "/api/payments/{bid_id}/setup-intent"): {401, 403, 404, 409, 422, 503},
    ("POST", "/api/payments/{bid_id}/pay"): {400, 401, 402, 403, 404, 409, 422, 503},
    ("GET", "/api/operator/notifications"): {401, 403, 422, 503},
    ("POST", "/api/payments/webhook"): {400, 503},
    ("GET", "/api/operator/checkouts"): {401, 403, 422, 503},
    ("POST", "/api/operator/checkouts/{bid_id}/extend"): {400, 401, 403, 404, 409, 422, 503},
    ("POST", "/api/operator/checkouts/{bid_id}/cancel"): {400, 401, 403, 404, 409, 422, 503},
    ("GET", "/healthz"): {503},
    ("POST", "/codec/decode"): {400, 401, 403, 422},
    ("POST", "/codec/encode"): {400, 401, 403, 422},
    ("GET", "/codec/login"): set(),
    ("POST", "/codec/login"): {400, 401, 403, 422},
    ("POST", "/codec/logout"): set(),
}


async def openapi(stack: Stack) -> dict[str, Any]:
    response = await stack.http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_every_route_is_listed(stack: Stack) -> None:
    paths = (await openapi(stack))["paths"]
    listed = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert listed == set(ERRORS_OF_ROUTES)


@pytest.mark.parametrize(("route", "errors"), ERRORS_OF_ROUTES.items(), ids=str)
async def test_each_route_declares_the_errors_it_answers(
    stack: Stack, route: tuple[str, str], errors: set[int]
) -> None:
    method, path = route
    responses = (await openapi(stack))["paths"][path][method.lower()]["responses"]
    declared = {int(code) for code in responses if not code.startswith("2")}
    assert declared == errors
    for code in errors:
        schema = responses[str(code)]["content"]["application/json"]["schema"]
        expected = "HTTPValidationError" if code == 422 else "ErrorDetail"
        assert schema == {"$ref": f"#/components/schemas/{expected}"}
    if 401 in errors:
        assert "WWW-Authenticate" in responses["401"]["headers"]
    if 503 in errors:
        assert "Retry-After" in responses["503"]["headers"]


async def test_error_bodies_match_what_is_declared(stack: Stack, documented: BaseSchema) -> None:
    buyer = stack.headers(unique("buyer"))
    answers = [
        ("POST", "/api/artworks", await stack.http.post("/api/artworks", json={})),
        (
            "POST",
            "/api/artworks",
            await stack.http.post(
                "/api/artworks",
                content=b"\x80 not utf-8",
                headers={**buyer, "Content-Type": "application/json"},
            ),
        ),
        (
            "POST",
            "/api/artworks",
            await stack.http.post(
                "/api/artworks", json={"title": "x", "starting_price": "0.10"}, headers=buyer
            ),
        ),
        (
            "GET",
            "/api/artworks/{artwork_id}",
            await stack.http.get("/api/artworks/987654321", headers=buyer),
        ),
        (
            "GET",
            "/api/payments/{payment_id}",
            await stack.http.get("/api/payments/-1", headers=buyer),
        ),
        (
            "POST",
            "/api/payments/webhook",
            await stack.http.post("/api/payments/webhook", content=b"{}"),
        ),
    ]
    assert [response.status_code for *_, response in answers] == [401, 400, 422, 404, 422, 400]
    for method, template, response in answers:
        assert_documented(documented, method, template, response)


async def test_a_503_matches_what_is_declared(
    stack: Stack, documented: BaseSchema, database_url: str, localstripe_url: str
) -> None:
    seller, artwork_id = await open_auction(stack)
    await stack.post(f"/api/artworks/{artwork_id}/bids", unique("buyer"), {"amount": "900.00"})
    unreachable = settings_for(
        database_url,
        localstripe_url,
        temporal_address="127.0.0.1:1",
        jwt_secret=stack.settings.jwt_secret,
    )
    async with running_stack(
        unreachable, stack.sessions, stack.temporal, with_worker=False
    ) as cut_off:
        response = await cut_off.post(f"/api/artworks/{artwork_id}/close", seller)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert_documented(documented, "POST", "/api/artworks/{artwork_id}/close", response)
