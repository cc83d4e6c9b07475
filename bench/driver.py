"""Runs one operation many times at a bounded concurrency, with a progress line, timing each."""

from __future__ import annotations

import asyncio
import math
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

BAR_WIDTH = 30
LOG_INTERVAL = 5.0  # seconds between progress lines when the output is not a terminal


@dataclass
class Timed:
    """What a phase's operations took: each one's seconds, and the errors met."""

    name: str
    count: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        done = self.count - len(self.errors)
        return done / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        return percentile(self.latencies, share)

    @property
    def median(self) -> float:
        return statistics.median(self.latencies) if self.latencies else 0.0


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile: a value that was measured, never interpolated."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered) - 1e-9))  # 0.07 * 100 is 7.000000000000001
    return ordered[min(len(ordered), rank) - 1]


class _Bar:
    def __init__(self, name: str, total: int) -> None:
        self.name, self.total, self.done = name, total, 0
        self.started = time.monotonic()
        self._shown_at = 0.0
        self._tty = sys.stdout.isatty()

    def advance(self, final: bool = False) -> None:
        self.done += not final
        now = time.monotonic()
        if not (final or self._tty or now - self._shown_at >= LOG_INTERVAL):
            return
        self._shown_at = now
        filled = BAR_WIDTH * self.done // max(1, self.total)
        line = (
            f"  {self.name:<34} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
            f"{self.done}/{self.total} {now - self.started:6.1f} s"
        )
        if self._tty:
            print(f"\r{line}", end="\n" if final else "", flush=True)
        else:
            print(line, flush=True)


async def run_many(
    name: str,
    count: int,
    concurrency: int,
    operation: Callable[[int], Awaitable[None]],
) -> Timed:
    """`operation(i)` for i in range(count), at most `concurrency` at once."""
    timed = Timed(name, count)
    bar = _Bar(name, count)
    limit = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with limit:
            started = time.monotonic()
            try:
                await operation(index)
            except Exception as failed:  # counted and shown; the phase goes on
                timed.errors.append(f"{name} #{index}: {type(failed).__name__}: {failed}"[:300])
            else:
                timed.latencies.append(time.monotonic() - started)
        bar.advance()

    started = time.monotonic()
    await asyncio.gather(*(one(index) for index in range(count)))
    timed.seconds = time.monotonic() - started
    bar.advance(final=True)
    return timed
