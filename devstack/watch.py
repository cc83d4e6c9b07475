"""`make watch`: an auction's live events, one line each, as they arrive.

    python -m devstack.watch --artwork 7 [--token T] [--api http://localhost:8000]

A Socket.IO client like any other: it connects with the token, watches the artwork and prints
every event it receives, the artwork's and the token's user's own (a buyer's declined
payment, say). Without --token it signs a development token for a `watcher` user, as
`make token` would. When the API restarts it connects and watches again; Ctrl-C stops it.
Events go to stdout, what the connection does to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import socketio

from devstack.token import dev_token

# Shown with the event's currency; the other fields as they come.
MONEY_FIELDS = ("amount", "hammer_price", "fee_amount", "highest_bid")
_ALWAYS = ("event_id", "occurred_at", "artwork_id")

Say = Callable[[str], None]


def default_api() -> str:
    return f"http://localhost:{os.environ.get('DEV_API_PORT') or 8000}"


def describe(name: str, payload: Mapping[str, Any]) -> str:
    """`14:02:11  payment_required  artwork 7  bid_id=12 amount=1287.64 USD ...`"""
    details = {key: value for key, value in payload.items() if key not in _ALWAYS}
    currency = details.pop("currency", None)
    shown = []
    for key, value in details.items():
        if key in MONEY_FIELDS and value is not None and currency:
            shown.append(f"{key}={value} {str(currency).upper()}")
        elif key.endswith("_at"):
            shown.append(f"{key}={_clock(value)}")
        else:
            shown.append(f"{key}={'-' if value is None else value}")
    moment = _clock(payload.get("occurred_at"))
    return f"{moment}  {name:<17} artwork {payload.get('artwork_id')}  {' '.join(shown)}"


def _clock(value: object) -> str:
    """An ISO instant as local wall-clock time; anything else as it came."""
    if not isinstance(value, str):
        return "-" if value is None else str(value)
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return value


async def watch(
    api: str,
    artwork_id: int,
    token: Callable[[], str],
    *,
    show: Say = print,
    note: Say = lambda line: print(line, file=sys.stderr),
    reconnect_delay_max: float = 5.0,
) -> int:
    """Prints the artwork's events until the API refuses us or the artwork cannot be watched
    (1), or the server closes the connection and `token` cannot be renewed."""
    # Ctrl-C is asyncio.run's to handle (cancel, disconnect, exit): python-socketio's own
    # handler would stop the event loop under it.
    client = socketio.AsyncClient(reconnection_delay_max=reconnect_delay_max, handle_sigint=False)
    ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    closed_by_server = asyncio.Event()

    def end(code: int) -> None:
        if not ended.done():
            ended.set_result(code)

    async def start_watching() -> None:
        answer = await client.call("watch_artwork", {"artwork_id": artwork_id}, timeout=10)
        if isinstance(answer, dict) and answer.get("ok"):
            note(f"watching artwork {artwork_id} at {api}")
        else:
            error = answer.get("error") if isinstance(answer, dict) else answer
            note(f"cannot watch artwork {artwork_id}: {error}")
            end(1)

    async def connected() -> None:
        # Not awaited here: the client reads the ack on the very task that runs this handler.
        client.start_background_task(start_watching)

    async def refused(data: Any = None) -> None:
        if isinstance(data, dict):  # the server's refusal, with its reason
            note(f"the API refused the connection: {data.get('message')}")
        else:
            note(f"cannot reach {api} ({data}); trying again")

    async def disconnected(reason: Any = None) -> None:
        if reason == client.reason.SERVER_DISCONNECT:
            # Deliberate (its token expired): the client does not reconnect on its own.
            note("the API closed the connection")
            closed_by_server.set()
        elif reason != client.reason.CLIENT_DISCONNECT:  # not our own leaving
            note(f"disconnected ({reason}); connecting again when the API answers")

    async def event(name: str, payload: Any = None) -> None:
        show(describe(name, payload) if isinstance(payload, dict) else f"{name} {payload!r}")

    client.on("connect", connected)
    client.on("connect_error", refused)
    client.on("disconnect", disconnected)
    client.on("*", event)
    try:
        while True:
            closed_by_server.clear()
            try:
                # `retry` waits for an API that is not up yet; auth is asked for again on each
                # (re)connection, so a renewed token is used.
                await client.connect(
                    api,
                    auth=lambda: {"token": token()},
                    transports=["websocket"],
                    retry=True,
                    wait_timeout=10,
                )
            except socketio.exceptions.ConnectionError:
                return 1  # refused: `refused` printed the reason
            closed = asyncio.ensure_future(closed_by_server.wait())
            either: set[asyncio.Future[Any]] = {closed, ended}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            if ended.done():
                return ended.result()
            await client.wait()  # the Engine.IO side winds down before connecting again
    finally:
        await client.disconnect()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.watch", description="Print an auction's live events."
    )
    parser.add_argument("--artwork", type=int, required=True, help="the artwork's id")
    parser.add_argument("--token", help="a bearer token (default: a dev token for `watcher`)")
    parser.add_argument("--api", default=default_api(), help="default: %(default)s")
    args = parser.parse_args(argv)

    def token() -> str:
        return args.token or dev_token("watcher", "watcher@example.com", name="Watcher")

    def show(line: str) -> None:
        print(line, flush=True)

    try:
        return asyncio.run(watch(args.api, args.artwork, token, show=show))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
