from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
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
