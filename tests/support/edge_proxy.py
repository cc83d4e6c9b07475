"""A fault-injecting HTTP proxy in front of localstripe: the only fake in the suite.

It sits at the network edge, between our real Stripe client and the real emulator, and
produces what neither can on demand: an answer lost on the way back (Stripe acted, we never
heard), or the buyer paying at the exact moment our request arrives. It also records each
request's method, path and idempotency key, as Stripe's request log would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from devstack.processes import free_port

Hook = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    idempotency_key: str | None


@dataclass
class Fault:
    method: str
    path_prefix: str
    path_suffix: str = ""
    drop_answer: bool = False  # forward, let Stripe act, then cut the connection
    before_forwarding: Hook | None = None  # called with the path, e.g. to pay just in time
    remaining: int = 1

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and method == self.method
            and path.startswith(self.path_prefix)
            and path.endswith(self.path_suffix)
        )


@dataclass
class EdgeProxy:
    upstream: str
    seen: list[Seen] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests_to(self, method: str, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.method == method and seen.path == path]

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        path = request.path
        self.seen.append(Seen(request.method, path, request.headers.get("Idempotency-Key")))
        fault = next((f for f in self.faults if f.matches(request.method, path)), None)
        if fault is not None:
            fault.remaining -= 1
            if fault.before_forwarding is not None:
                await fault.before_forwarding(path)
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        async with self._session.request(
            request.method,
            f"{self.upstream}{request.path_qs}",
            data=await request.read(),
            headers=headers,
        ) as upstream:
            body = await upstream.read()
            if fault is not None and fault.drop_answer:
                assert request.transport is not None
                request.transport.abort()
                await asyncio.sleep(0)
                raise ConnectionResetError("answer dropped at the network edge")
            return web.Response(
                status=upstream.status,
                body=body,
                content_type=upstream.content_type,
            )
