"""Bounded waiting for something another process does (never a bare sleep)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    *,
    timeout: float = 15.0,  # noqa: ASYNC109 (a bound on polling, not a cancellation scope)
    what: str = "condition",
    interval: float = 0.05,
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s; last value: {value!r}")
        await asyncio.sleep(interval)
