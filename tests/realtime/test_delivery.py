"""What reaches a socket: only what committed, only while watched, and still after the
replica's listening connection to PostgreSQL was lost."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from api.realtime.relay import application_name
from domain.announcements import Announcement, LiveEvent, LiveEventName
from infra.announcer import Announcer
from infra.db import SessionFactory
from tests.realtime.auctions import new_artwork, place_bid
from tests.realtime.conftest import Replicas
from tests.realtime.listeners import listening
from tests.support.polling import eventually
from tests.support.stack import token_for, unique


def _event(artwork_id: int, event_id: str) -> Announcement:
    event = LiveEvent(
        LiveEventName.BID_PLACED,
        event_id,
        artwork_id,
        datetime.now(UTC),
        users=(),
        to_watchers=True,
        fields={"amount": "10.00", "currency": "usd"},
    )
    return Announcement(events=(event,))


async def test_unwatching_stops_an_artworks_events(replicas: Replicas) -> None:
    first, second = (
        await new_artwork(replicas.a, price="10.00"),
        await new_artwork(replicas.a, price="10.00"),
    )
    token = token_for(replicas.a.settings, unique("fan"))
    async with listening(replicas.b_url, token) as listener:
        for artwork_id in (first, second):
            assert (await listener.watch(artwork_id))["ok"] is True
        await place_bid(replicas.a, first, "11.00")
        await listener.received("bid_placed", artwork_id=first)

        assert await listener.unwatch(first) == {"ok": True, "artwork_id": first}
        await place_bid(replicas.a, first, "12.00")
        await place_bid(replicas.a, second, "11.00")
        await listener.received("bid_placed", artwork_id=second)
        # The second artwork's bid committed after the first's: that one would be here.
        assert [bid["amount"] for bid in listener.of("bid_placed", first)] == ["11.00"]


async def test_an_event_published_in_a_rolled_back_transaction_never_arrives(
    replicas: Replicas, sessions: SessionFactory
) -> None:
    artwork_id = await new_artwork(replicas.a, price="10.00")
    announcer = Announcer(replicas.a.settings.mail_from)
    token = token_for(replicas.a.settings, unique("fan"))
    async with listening(replicas.b_url, token) as listener:
        assert (await listener.watch(artwork_id))["ok"] is True
        async with sessions() as session:
            await announcer.write(session, _event(artwork_id, "rolled-back"))
            await session.rollback()
        async with sessions() as session:
            await announcer.write(session, _event(artwork_id, "committed"))
            await session.commit()
        await listener.received("bid_placed")
        assert [event["event_id"] for event in listener.of("bid_placed")] == ["committed"]


async def _listening_relays(sessions: SessionFactory) -> set[int]:
    """This process's replicas' listening connections that have sent their LISTEN (or,
    later, a check): another run on the same server keeps its own."""
    async with sessions() as session:
        rows = await session.exec(  # type: ignore[call-overload]
            text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = :name"
                " AND (query LIKE 'LISTEN %' OR query = 'SELECT 1')"
            ),
            params={"name": application_name()},
        )
        return {int(pid) for (pid,) in rows}


async def test_the_relay_listens_again_after_its_connection_is_killed(
    replicas: Replicas, sessions: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    artwork_id = await new_artwork(replicas.a, price="10.00")
    before = await _listening_relays(sessions)
    assert len(before) >= 2  # one per replica
    async with sessions() as session:
        await session.exec(  # type: ignore[call-overload]
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = :name"
            ),
            params={"name": application_name()},
        )
    await eventually(
        lambda: _listening_relays(sessions),
        lambda pids: len(pids) >= len(before) and not pids & before,
        what="both replicas listening on new connections",
    )
    assert "connection to PostgreSQL was lost" in caplog.text
    assert "listening on PostgreSQL again" in caplog.text

    token = token_for(replicas.a.settings, unique("fan"))
    async with listening(replicas.b_url, token) as listener:
        assert (await listener.watch(artwork_id))["ok"] is True
        await place_bid(replicas.a, artwork_id, "11.00")
        (bid,) = await listener.received("bid_placed")
        assert bid["amount"] == "11.00"
