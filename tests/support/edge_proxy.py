"""A fault-injecting HTTP proxy in front of localstripe: the only fake in the suite.

It sits at the network edge, between our real Stripe client and the real emulator, and
produces what neither can on demand: an answer lost on the way back (Stripe acted, we never
heard), the buyer paying at the exact moment our request arrives, Stripe answering 5xx or
too slowly, or reporting an intent as still `processing` (a bank debit in flight, which
localstripe's cards never are). It also records each request's method, path and idempotency
key, as Stripe's request log would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from devstack.processes import free_port

Hook = Callable[[str], Awaitable[None]]
FOREVER = 1_000_000


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
    # Answer this status with a Stripe-shaped error body, without forwarding (Stripe down).
    answer_status: int | None = None
    answer_error: dict[str, Any] | None = None  # the `error` object of that answer
    forward_anyway: bool = False  # with answer_status: Stripe acted, but answered an error
    delay_seconds: float = 0.0  # hold the request this long first (Stripe slow)
    rewrite: dict[str, Any] | None = None  # fields replaced in the JSON answer
    # Stripe's idempotency layer: the answer given is saved against the request's key, and
    # every later request with that key gets it again, whatever `remaining` says.
    saved_for_key: bool = False
    remaining: int = 1

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and method == self.method
            and path.startswith(self.path_prefix)
            and path.endswith(self.path_suffix)
        )


def stripe_error_body(status: int, error: dict[str, Any] | None) -> bytes:
    default = {"type": "api_error", "message": f"edge proxy: answered {status}"}
    return json.dumps({"error": error or default}).encode()


@dataclass
class EdgeProxy:
    upstream: str
    seen: list[Seen] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    saved_answers: dict[str, Fault] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests_to(self, method: str, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.method == method and seen.path == path]

    def clear(self, fault: Fault) -> None:
        """Ends a fault that was set for many requests (e.g. `remaining=FOREVER`)."""
        fault.remaining = 0

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
        # Read now: Stripe has the request even if the client gives up while it is held.
        payload = await request.read()
        key = request.headers.get("Idempotency-Key")
        if key is not None and key in self.saved_answers:
            return self._error(self.saved_answers[key])
        fault = next((f for f in self.faults if f.matches(request.method, path)), None)
        if fault is not None:
            fault.remaining -= 1
            if fault.saved_for_key and key is not None:
                self.saved_answers[key] = fault
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            if fault.before_forwarding is not None:
                await fault.before_forwarding(path)
            if fault.answer_status is not None and not fault.forward_anyway:
                return self._error(fault)
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        async with self._session.request(
            request.method,
            f"{self.upstream}{request.path_qs}",
            data=payload,
            headers=headers,
        ) as upstream:
            body = await upstream.read()
            status = upstream.status
        if fault is None:
            return web.Response(status=status, body=body, content_type="application/json")
        if fault.drop_answer:
            assert request.transport is not None
            request.transport.abort()
            await asyncio.sleep(0)
            raise ConnectionResetError("answer dropped at the network edge")
        if fault.answer_status is not None:
            return self._error(fault)
        if fault.rewrite and 200 <= status < 300:
            body = json.dumps({**json.loads(body), **fault.rewrite}).encode()
        return web.Response(status=status, body=body, content_type="application/json")

    @staticmethod
    def _error(fault: Fault) -> web.Response:
        assert fault.answer_status is not None
        return web.Response(
            status=fault.answer_status,
            body=stripe_error_body(fault.answer_status, fault.answer_error),
            content_type="application/json",
        )
