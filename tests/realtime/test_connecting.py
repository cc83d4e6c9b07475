"""Who may listen: a valid bearer token to connect, a real artwork to watch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from api.realtime.server import BAD_ARTWORK_ID, MAX_WATCHED_ARTWORKS
from api.schemas import BIGINT_MAX
from tests.realtime.auctions import new_artwork
from tests.realtime.conftest import Replicas
from tests.realtime.listeners import connect, listening, new_listener
from tests.support.polling import eventually
from tests.support.stack import token_for, unique


def _auth(replicas: Replicas, kind: str) -> Any:
    settings = replicas.a.settings
    return {
        "no auth": None,
        "no token": {},
        "empty token": {"token": ""},
        "token not a string": {"token": 42},
        "expired": {"token": token_for(settings, unique("late"), expires_in_seconds=-60)},
        "forged": {"token": token_for(settings, unique("mallory"), secret="x" * 40)},
        "malformed": {"token": "not.a.jwt"},
    }[kind]


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("no auth", "missing bearer token"),
        ("no token", "missing bearer token"),
        ("empty token", "missing bearer token"),
        ("token not a string", "missing bearer token"),
        ("expired", "token expired"),
        ("forged", "token signature is invalid"),
        ("malformed", "token is malformed"),
    ],
)
async def test_a_connection_without_a_valid_token_is_refused_with_the_reason(
    replicas: Replicas, kind: str, reason: str
) -> None:
    listener = new_listener()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(listener, replicas.b_url, _auth(replicas, kind))
    assert listener.refusals == [{"message": reason}]
    assert not listener.client.connected


async def test_a_socket_is_closed_when_its_token_expires(replicas: Replicas) -> None:
    token = token_for(replicas.a.settings, unique("brief"), expires_in_seconds=2)
    async with listening(replicas.b_url, token) as listener:
        assert listener.client.connected
        await eventually(
            lambda: asyncio.sleep(0, listener.disconnects),
            bool,
            timeout=10,
            what="the server closed the socket at the token's expiry",
        )
        assert listener.disconnects == [listener.client.reason.SERVER_DISCONNECT]


async def test_watching_an_artwork_that_does_not_exist_says_so(replicas: Replicas) -> None:
    token = token_for(replicas.a.settings, unique("watcher"))
    async with listening(replicas.b_url, token) as listener:
        assert await listener.watch(BIGINT_MAX) == {"ok": False, "error": "artwork not found"}


@pytest.mark.parametrize(
    "artwork_id", [0, -1, BIGINT_MAX + 1, "7", True, None, 1.5, [7], {"id": 7}]
)
async def test_watching_needs_an_artwork_id_in_range(
    replicas: Replicas, artwork_id: object
) -> None:
    token = token_for(replicas.a.settings, unique("watcher"))
    async with listening(replicas.b_url, token) as listener:
        assert await listener.watch(artwork_id) == {"ok": False, "error": BAD_ARTWORK_ID}
        assert await listener.unwatch(artwork_id) == {"ok": False, "error": BAD_ARTWORK_ID}
        for malformed in (None, 7, "7", {"artwork": 7}):
            answer = await listener.client.call("watch_artwork", malformed, timeout=10)
            assert answer == {"ok": False, "error": BAD_ARTWORK_ID}


async def test_one_connection_watches_a_bounded_number_of_artworks(replicas: Replicas) -> None:
    artworks = [await new_artwork(replicas.a) for _ in range(MAX_WATCHED_ARTWORKS + 1)]
    token = token_for(replicas.a.settings, unique("collector"))
    async with listening(replicas.b_url, token) as listener:
        for artwork_id in artworks[:-1]:
            assert (await listener.watch(artwork_id))["ok"] is True
        assert await listener.watch(artworks[-1]) == {
            "ok": False,
            "error": f"a connection watches at most {MAX_WATCHED_ARTWORKS} artworks",
        }
        assert (await listener.watch(artworks[0]))["ok"] is True  # already watched
        assert (await listener.unwatch(artworks[0]))["ok"] is True
        assert (await listener.watch(artworks[-1]))["ok"] is True
