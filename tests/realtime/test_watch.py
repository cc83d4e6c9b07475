"""`make watch`: the client a person runs in a second terminal."""

from __future__ import annotations

import asyncio
import contextlib

from devstack.processes import free_port
from devstack.watch import describe, watch
from tests.realtime.auctions import new_artwork, place_bid
from tests.realtime.conftest import Replicas
from tests.support.polling import eventually
from tests.support.stack import serve_api, token_for, unique


def test_an_event_is_one_readable_line() -> None:
    line = describe(
        "payment_required",
        {
            "event_id": "payment_required:12",
            "occurred_at": "2026-03-01T10:15:30+00:00",
            "artwork_id": 7,
            "bid_id": 12,
            "hammer_price": "1250.00",
            "fee_amount": "37.64",
            "amount": "1287.64",
            "currency": "usd",
            "expires_at": None,
        },
    )
    assert "\n" not in line
    assert "payment_required  artwork 7  bid_id=12 hammer_price=1250.00 USD" in line
    assert "amount=1287.64 USD" in line
    assert line.endswith("expires_at=-")
    assert "payment_required:12" not in line  # the id is for programs, not people


async def test_watch_prints_each_event_and_watches_again_after_the_api_restarts(
    replicas: Replicas,
) -> None:
    settings = replicas.a.settings
    artwork_id = await new_artwork(replicas.a, price="20.00")
    port = free_port()
    lines: list[str] = []
    notes: list[str] = []
    token = token_for(settings, unique("watcher"))
    async with serve_api(settings, port):
        watching = asyncio.create_task(
            watch(
                f"http://127.0.0.1:{port}",
                artwork_id,
                lambda: token,
                show=lines.append,
                note=notes.append,
                reconnect_delay_max=1,
            )
        )
        await eventually(lambda: asyncio.sleep(0, notes), any, what="watching")
        await place_bid(replicas.a, artwork_id, "25.00")
        await eventually(lambda: asyncio.sleep(0, lines), bool, what="the first bid printed")
    async with serve_api(settings, port):
        await eventually(
            lambda: asyncio.sleep(0, notes),
            lambda seen: sum("watching artwork" in note for note in seen) == 2,
            what="watching again after the restart",
        )
        await place_bid(replicas.a, artwork_id, "30.00")
        await eventually(lambda: asyncio.sleep(0, lines), lambda seen: len(seen) == 2)
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
    assert "bid_placed" in lines[0] and "amount=25.00 USD" in lines[0]
    assert "amount=30.00 USD" in lines[1]
    assert any(note.startswith("disconnected") for note in notes)


async def test_watch_stops_when_the_artwork_cannot_be_watched(replicas: Replicas) -> None:
    notes: list[str] = []
    token = token_for(replicas.a.settings, unique("watcher"))
    code = await watch(replicas.b_url, 2**62, lambda: token, show=print, note=notes.append)
    assert code == 1
    assert notes[-1] == f"cannot watch artwork {2**62}: artwork not found"


async def test_watch_stops_when_the_token_is_refused(replicas: Replicas) -> None:
    notes: list[str] = []
    token = token_for(replicas.a.settings, unique("watcher"), secret="y" * 40)
    code = await watch(replicas.b_url, 1, lambda: token, show=print, note=notes.append)
    assert code == 1
    assert notes == ["the API refused the connection: token signature is invalid"]


async def test_watch_connects_again_with_a_renewed_token_when_one_expires(
    replicas: Replicas,
) -> None:
    settings, watcher = replicas.a.settings, unique("watcher")
    artwork_id = await new_artwork(replicas.a, price="20.00")
    notes: list[str] = []
    watching = asyncio.create_task(
        watch(
            replicas.b_url,
            artwork_id,
            lambda: token_for(settings, watcher, expires_in_seconds=1),
            show=print,
            note=notes.append,
        )
    )
    await eventually(
        lambda: asyncio.sleep(0, notes),
        lambda seen: sum(note.startswith("watching artwork") for note in seen) >= 2,
        timeout=10,
        what="watching again on a new token",
    )
    watching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watching
    assert "the API closed the connection" in notes
