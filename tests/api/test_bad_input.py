"""Input no route can use is refused with a 4xx naming what is wrong, never a 500."""

from __future__ import annotations

import json as jsonlib

import pytest

from tests.api.conftest import open_auction
from tests.support.stack import Stack, unique

BEYOND_BIGINT = 2**63
ID_ROUTES = [
    ("GET", "/api/artworks/{id}", "artwork_id"),
    ("POST", "/api/artworks/{id}/bids", "artwork_id"),
    ("POST", "/api/artworks/{id}/close", "artwork_id"),
    ("GET", "/api/payments/{id}", "payment_id"),
]


async def send(
    stack: Stack, method: str, path: str, json: object = None, content: bytes | None = None
) -> tuple[int, object]:
    headers = stack.headers(unique("caller"))
    if content is not None:
        headers["Content-Type"] = "application/json"
    response = await stack.http.request(method, path, headers=headers, json=json, content=content)
    return response.status_code, response.json()


def locations(body: object) -> list[list[object]]:
    assert isinstance(body, dict)
    return [entry["loc"] for entry in body["detail"]]


@pytest.mark.parametrize("bad_id", [BEYOND_BIGINT, 10**30, 0, -1])
@pytest.mark.parametrize(("method", "template", "field"), ID_ROUTES)
async def test_ids_out_of_range_are_422_naming_the_path_field(
    stack: Stack, method: str, template: str, field: str, bad_id: int
) -> None:
    body = {"amount": "10.00"} if template.endswith("/bids") else None
    status, answer = await send(stack, method, template.format(id=bad_id), json=body)
    assert status == 422, answer
    assert locations(answer) == [["path", field]]


@pytest.mark.parametrize("bad_id", [BEYOND_BIGINT, 0, -5, 1e30, "9223372036854775808"])
async def test_a_bid_id_out_of_range_is_422_naming_the_body_field(
    stack: Stack, bad_id: object
) -> None:
    status, answer = await send(
        stack, "POST", "/api/payments/create-intent", json={"bid_id": bad_id}
    )
    assert status == 422, answer
    assert locations(answer) == [["body", "bid_id"]]


async def test_the_largest_bigint_is_a_plain_404(stack: Stack) -> None:
    status, answer = await send(stack, "GET", f"/api/artworks/{BEYOND_BIGINT - 1}")
    assert (status, answer) == (404, {"detail": "artwork not found"})


async def test_unicode_titles_are_kept_as_sent(stack: Stack) -> None:
    title = "Çà et là — 夜の海 🌊 \u0301" + "🎨" * 150
    status, answer = await send(
        stack, "POST", "/api/artworks", json={"title": title, "starting_price": "10.00"}
    )
    assert status == 201, answer
    assert isinstance(answer, dict) and answer["title"] == title


@pytest.mark.parametrize(
    "raw_title", ['"nul \\u0000 inside"', '"lone \\ud800 surrogate"', '"' + "x" * 201 + '"']
)
async def test_titles_postgresql_cannot_store_are_422(stack: Stack, raw_title: str) -> None:
    status, answer = await send(
        stack,
        "POST",
        "/api/artworks",
        content=f'{{"title": {raw_title}, "starting_price": "10.00"}}'.encode(),
    )
    assert status == 422, answer
    assert locations(answer) == [["body", "title"]], answer


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"title": "x", "starting_price": "10.00"}', "text/plain"),
        (b"title=x&starting_price=10.00", "application/x-www-form-urlencoded"),
        (b'{"title": "x", "starting_price": ', "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'{"title": "x", "starting_price": 1e400}', "application/json"),
        (b'{"title": "x", "starting_price": "10.00", "extra": 1}', "application/json"),
        (
            jsonlib.dumps({"title": "x" * 2_000_000, "starting_price": "1"}).encode(),
            "application/json",
        ),
    ],
)
async def test_bodies_that_are_not_an_artwork_are_422(
    stack: Stack, content: bytes, content_type: str
) -> None:
    response = await stack.http.post(
        "/api/artworks",
        content=content,
        headers={**stack.headers(unique("seller")), "Content-Type": content_type},
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("content", [b"\x80\x81 not utf-8", b"[" * 100_000 + b"]" * 100_000])
async def test_bodies_that_cannot_be_read_are_400(stack: Stack, content: bytes) -> None:
    response = await stack.http.post(
        "/api/artworks",
        content=content,
        headers={**stack.headers(unique("seller")), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["detail"], str)


async def test_numbers_may_come_as_strings(stack: Stack) -> None:
    _, artwork_id = await open_auction(stack, "10.00")
    bid = await stack.post(f"/api/artworks/{artwork_id}/bids", unique("buyer"), {"amount": 12})
    assert bid.status_code == 201, bid.text
    assert bid.json()["amount"] == "12.00"
    intent = await stack.post(
        "/api/payments/create-intent", unique("buyer"), {"bid_id": str(bid.json()["id"])}
    )
    assert intent.status_code == 403  # parsed as the bid's id: it is someone else's bid
