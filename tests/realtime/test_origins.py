"""Which browser pages may open a socket: the API's own origin, unless configured."""

from __future__ import annotations

import httpx
import pytest

from api.realtime.server import allowed_origins
from infra.settings import Settings
from tests.realtime.conftest import Replicas
from tests.support.stack import serve_api

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


@pytest.mark.parametrize(
    ("configured", "origins"),
    [
        ("", None),
        (" , ", None),
        ("https://shop.example/", ["https://shop.example"]),
        (
            "https://a.example, http://b.example:8080",
            ["https://a.example", "http://b.example:8080"],
        ),
        ("https://a.example,*", "*"),
    ],
)
def test_the_setting_names_the_origins(configured: str, origins: object) -> None:
    assert allowed_origins(Settings(live_events_allowed_origins=configured)) == origins


async def test_by_default_only_the_apis_own_origin_may_connect(replicas: Replicas) -> None:
    async with httpx.AsyncClient(base_url=replicas.b_url) as http:
        own = await http.get(HANDSHAKE, headers={"Origin": replicas.b_url})
        assert own.status_code == 200
        foreign = await http.get(HANDSHAKE, headers={"Origin": "https://elsewhere.example"})
        assert foreign.status_code == 400
        assert "not an accepted origin" in foreign.text
        # Programs send no Origin: they are judged by their token alone.
        assert (await http.get(HANDSHAKE)).status_code == 200


async def test_a_configured_origin_may_connect(replicas: Replicas) -> None:
    settings = replicas.a.settings.model_copy(
        update={"live_events_allowed_origins": "https://shop.example"}
    )
    async with serve_api(settings) as url, httpx.AsyncClient(base_url=url) as http:
        allowed = await http.get(HANDSHAKE, headers={"Origin": "https://shop.example"})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
        other = await http.get(HANDSHAKE, headers={"Origin": "https://elsewhere.example"})
        assert other.status_code == 400
