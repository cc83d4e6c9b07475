"""The Socket.IO server: who may connect, and which rooms each connection joins.

A connection needs a bearer token, refused for the same reasons, in the same words, as the
REST API refuses it; it is closed when the token expires, since it would hear events nobody
authorized any more. Each connection joins its user's room, and an artwork's room while it
watches that artwork. Rooms live in this replica's memory: after reconnecting, a client is in
its user's room again but watches its artworks again itself (and catches up through REST).
"""

from __future__ import annotations

import asyncio
import logging
import time

import jwt
import socketio
from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, ValidationError

from api.auth import decode_token, identify_caller
from api.errors import DATABASE_FAILURES, database_refusal
from api.realtime.rooms import artwork_room, rooms_for, user_room
from api.schemas import BIGINT_MAX, RowId
from api.services import Services
from domain.announcements import LiveEvent
from infra.settings import Settings
from infra.tables import Artwork

log = logging.getLogger(__name__)

Ack = dict[str, object]

# Enough for any page a person looks at; a bound on the rooms one connection can fill.
MAX_WATCHED_ARTWORKS = 100
BAD_ARTWORK_ID = f'expected {{"artwork_id": N}}, N an integer from 1 to {BIGINT_MAX}'
# Clients send only `watch_artwork` and `unwatch_artwork`: a few bytes each.
_MAX_CLIENT_MESSAGE_BYTES = 64 * 1024


def allowed_origins(settings: Settings) -> list[str] | str | None:
    """What python-socketio's `cors_allowed_origins` takes: None is same origin only."""
    origins = [
        origin.strip().rstrip("/")
        for origin in settings.live_events_allowed_origins.split(",")
        if origin.strip()
    ]
    if not origins:
        return None
    return "*" if "*" in origins else origins


class LiveSockets:
    """This replica's sockets; `deliver` emits an event to the rooms it is meant for."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=None,
            max_http_buffer_size=_MAX_CLIENT_MESSAGE_BYTES,
        )
        self._services: Services | None = None
        self._expiries: dict[str, asyncio.Task[None]] = {}
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("watch_artwork", self._watch)
        self.sio.on("unwatch_artwork", self._unwatch)

    def bind(self, services: Services) -> None:
        """Called from the app's lifespan, once the settings are read and the database is set
        up; the server itself exists earlier, since `api.main` builds the app at import."""
        self._services = services
        self.sio.eio.cors_allowed_origins = allowed_origins(services.settings)

    async def close(self) -> None:
        for expiry in self._expiries.values():
            expiry.cancel()
        self._expiries.clear()
        await self.sio.shutdown()

    async def deliver(self, event: LiveEvent) -> None:
        rooms = rooms_for(event)
        if rooms:
            # A socket in several of these rooms (a buyer watching their own auction) gets
            # the event once: python-socketio emits to the union of the rooms' members.
            await self.sio.emit(event.name.value, event.payload(), to=rooms)

    def _bound(self) -> Services:
        if self._services is None:
            raise RuntimeError("the live-events server is used before the app started")
        return self._services

    async def _connect(self, sid: str, _environ: object, auth: object) -> None:
        services = self._bound()
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise _refused("missing bearer token")
        try:
            claims = decode_token(token, services.settings)
        except HTTPException as refused:
            raise _refused(str(refused.detail)) from None
        try:
            async with services.sessions() as session:
                caller = await identify_caller(session, claims)
        except DATABASE_FAILURES as error:
            refusal = database_refusal(error)
            if refusal is None:
                raise
            log.warning("Database error while connecting a socket: %s", error)
            raise _refused(refusal) from None
        await self.sio.enter_room(sid, user_room(caller.id))
        self._close_at_expiry(sid, token)

    async def _disconnect(self, sid: str, _reason: object = None) -> None:
        expiry = self._expiries.pop(sid, None)
        if expiry is not None:
            expiry.cancel()

    async def _watch(self, sid: str, *data: object) -> Ack:
        artwork_id = _artwork_id(data)
        if artwork_id is None:
            return _not_ok(BAD_ARTWORK_ID)
        room = artwork_room(artwork_id)
        watched = [name for name in self.sio.rooms(sid) if name.startswith("artwork:")]
        if room not in watched and len(watched) >= MAX_WATCHED_ARTWORKS:
            return _not_ok(f"a connection watches at most {MAX_WATCHED_ARTWORKS} artworks")
        try:
            async with self._bound().sessions() as session:
                artwork = await session.get(Artwork, artwork_id)
        except DATABASE_FAILURES as error:
            refusal = database_refusal(error)
            if refusal is None:
                raise
            log.warning("Database error while watching an artwork: %s", error)
            return _not_ok(refusal)
        if artwork is None:
            return _not_ok("artwork not found")
        await self.sio.enter_room(sid, room)
        return {"ok": True, "artwork_id": artwork_id}

    async def _unwatch(self, sid: str, *data: object) -> Ack:
        artwork_id = _artwork_id(data)
        if artwork_id is None:
            return _not_ok(BAD_ARTWORK_ID)
        await self.sio.leave_room(sid, artwork_room(artwork_id))
        return {"ok": True, "artwork_id": artwork_id}

    def _close_at_expiry(self, sid: str, token: str) -> None:
        # decode_token has verified this very token; only its `exp` is read again here.
        expires_at = float(jwt.decode(token, options={"verify_signature": False})["exp"])
        delay = max(0.0, expires_at - time.time())
        self._expiries[sid] = asyncio.create_task(self._expire(sid, delay))

    async def _expire(self, sid: str, delay: float) -> None:
        await asyncio.sleep(delay)
        # Out of the table first: the disconnect handler would otherwise cancel this task
        # halfway through the disconnect.
        self._expiries.pop(sid, None)
        log.info("Closing socket %s: its token expired", sid)
        await self.sio.disconnect(sid)


class ArtworkRef(BaseModel):
    """The body of `watch_artwork` and `unwatch_artwork`. Strict: JSON's true, 7.0 or "7"
    are not ids (lax validation would take each for 1 or 7)."""

    model_config = ConfigDict(strict=True)

    artwork_id: RowId


def _artwork_id(data: tuple[object, ...]) -> int | None:
    if len(data) != 1:
        return None
    try:
        return ArtworkRef.model_validate(data[0]).artwork_id
    except ValidationError:
        return None


def _not_ok(error: str) -> Ack:
    return {"ok": False, "error": error}


def _refused(reason: str) -> Exception:
    """The client's `connect_error` handler receives `{"message": reason}`."""
    refusal: Exception = socketio.exceptions.ConnectionRefusedError(reason)
    return refusal
