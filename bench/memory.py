"""Memory against the number of checkouts waiting for payment: opened through the API and
left open, the resident memory of every process read as they pile up."""

from __future__ import annotations

from dataclasses import dataclass

from bench.driver import run_many
from bench.phases import CURRENCY, PRICE, WINNING_BID, Bench, Measured
from bench.usage import rss_mib

SAMPLES = 25


@dataclass
class MemorySample:
    open_checkouts: int
    rss_mib: dict[str, float]


@dataclass
class MemoryMeasures:
    opening: Measured
    samples: list[MemorySample]


async def memory_with_open_checkouts(bench: Bench, target: int, concurrency: int) -> MemoryMeasures:
    already = len(bench.waiting)
    to_open = max(0, target - already)
    every = max(1, to_open // SAMPLES)
    samples = [MemorySample(already, rss_mib(bench.usage()))]

    async def one(index: int) -> None:
        bench.waiting.append(await bench.api.close_on_one_bid(PRICE, WINNING_BID, CURRENCY))
        if len(bench.waiting) % every == 0:
            samples.append(MemorySample(len(bench.waiting), rss_mib(bench.usage())))

    opening = await bench.measure(
        run_many(f"open {to_open} checkouts, waiting", to_open, concurrency, one)
    )
    samples.append(MemorySample(len(bench.waiting), rss_mib(bench.usage())))
    return MemoryMeasures(opening, samples)
