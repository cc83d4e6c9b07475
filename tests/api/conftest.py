from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
import schemathesis
from schemathesis import BaseSchema
from temporalio.testing import WorkflowEnvironment

from infra.db import SessionFactory
from tests.support.stack import Stack, stack_on, unique


@pytest_asyncio.fixture(scope="module")
async def stack(
    database_url: str,
    localstripe_url: str,
    sessions: SessionFactory,
    temporal_dev: WorkflowEnvironment,
) -> AsyncIterator[Stack]:
    async with stack_on(temporal_dev, sessions, database_url, localstripe_url) as running:
        yield running


@dataclass(frozen=True)
class Closed:
    seller: str
    buyer: str
    artwork_id: int
    bid_id: int
    close: dict[str, Any]


async def open_auction(
    stack: Stack, price: str = "500.00", currency: str = "usd"
) -> tuple[str, int]:
    seller = unique("seller")
    created = await stack.post(
        "/api/artworks",
        seller,
        {"title": "Blue hour", "starting_price": price, "currency": currency},
    )
    assert created.status_code == 201, created.text
    return seller, int(created.json()["id"])


async def closed_auction(stack: Stack, amount: str = "600.00") -> Closed:
    """An auction closed on one buyer's bid: its saga runs and waits for the payment."""
    seller, artwork_id = await open_auction(stack)
    buyer = unique("buyer")
    bid = await stack.post(f"/api/artworks/{artwork_id}/bids", buyer, {"amount": amount})
    assert bid.status_code == 201, bid.text
    close = await stack.post(f"/api/artworks/{artwork_id}/close", seller)
    assert close.status_code == 200, close.text
    return Closed(seller, buyer, artwork_id, int(bid.json()["id"]), close.json())


@pytest_asyncio.fixture(scope="module")
async def documented(stack: Stack) -> BaseSchema:
    """The API's own /openapi.json, as schemathesis reads it."""
    response = await stack.http.get("/openapi.json")
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


def assert_documented(
    schema: BaseSchema, method: str, template: str, response: httpx.Response
) -> None:
    """The status is one the route declares, and the body matches the declared schema."""
    operation = schema[template][method]
    declared = operation.responses.find_by_status_code(response.status_code)
    assert declared is not None, f"{method} {template}: {response.status_code} is not declared"
    operation.validate_response(response)  # raises, naming the mismatch
