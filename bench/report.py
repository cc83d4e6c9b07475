"""The benchmark's figures: ratios against the twin and the bare endpoint with their goals,
a table for the terminal, and the JSON kept under bench/results/."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.memory import MemoryMeasures
from bench.phases import Measured
from bench.profile import Profile
from bench.stack import DRIVER
from bench.webhooks import WebhookMeasures

# Stand-ins for what is outside the service (Stripe, the mail server, the people driving it):
# not counted as our CPU.
OUTSIDE = frozenset({"localstripe", "smtp", DRIVER})
# The memory goal counts these three, as the issue that set it does.
MEMORY_PARTS = ("temporal", "worker", "api")
GIB = 1024.0


@dataclass(frozen=True)
class Ratio:
    name: str
    value: float
    goal: float
    at_least: bool  # the goal is a floor (else a ceiling)
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.value >= self.goal if self.at_least else self.value <= self.goal

    def line(self) -> str:
        sign = "≥" if self.at_least else "≤"
        verdict = "met" if self.met else "NOT MET"
        goal = f"goal {sign} {self.goal:g} {self.unit}"
        return f"  {self.name:<62}{self.value:>7.2f} {self.unit:<4} {goal:<14} {verdict}"


@dataclass
class Results:
    options: dict[str, Any]
    twin: Measured
    put_up: Measured
    checkouts: Measured
    below_capacity: Measured
    twin_below_capacity: Measured
    webhooks: WebhookMeasures
    memory: MemoryMeasures
    profiles: list[Profile] = field(default_factory=list)

    def errors(self) -> list[str]:
        measured = [self.twin, self.put_up, self.checkouts]
        measured += [self.below_capacity, self.twin_below_capacity]
        measured += [self.webhooks.service, self.webhooks.bare, self.memory.opening]
        measured += [self.webhooks.finished] if self.webhooks.finished else []
        return [error for phase in measured for error in phase.timed.errors]

    def ratios(self) -> list[Ratio]:
        ours, bare = self.webhooks.service.timed, self.webhooks.bare.timed
        memory = self.memory.samples[-1]
        memory_gib = sum(memory.rss_mib.get(part, 0.0) for part in MEMORY_PARTS) / GIB
        close_p99 = self.below_capacity.timed.percentile(0.99)
        first_activity_p99 = self.twin_below_capacity.timed.percentile(0.99)
        cpu = _div(cpu_per_operation(self.checkouts), cpu_per_operation(self.twin))
        return [
            Ratio(
                "checkouts sold/s ÷ the twin's",
                _div(self.checkouts.timed.rate, self.twin.timed.rate),
                0.8,
                at_least=True,
            ),
            Ratio(
                "webhook requests/s ÷ the bare endpoint's",
                _div(ours.rate, bare.rate),
                0.8,
                at_least=True,
            ),
            Ratio(
                "webhook p99 ÷ the bare endpoint's p99",
                _div(ours.percentile(0.99), bare.percentile(0.99)),
                1.5,
                at_least=False,
            ),
            Ratio("CPU per checkout, our processes ÷ the twin's", cpu, 1.3, at_least=False),
            Ratio(
                "close → intent ready p99 ÷ twin's start → 1st activity p99",
                _div(close_p99, first_activity_p99),
                2.0,
                at_least=False,
            ),
            Ratio(
                f"memory, {memory.open_checkouts} checkouts waiting (server+worker+API)",
                memory_gib,
                2.5,
                at_least=False,
                unit="GiB",
            ),
        ]


def _div(top: float, bottom: float) -> float:
    return top / bottom if bottom else float("inf")


def cpu_per_operation(measured: Measured) -> float:
    """CPU seconds per completed operation, over our processes (not those OUTSIDE)."""
    done = measured.timed.count - len(measured.timed.errors)
    spent = sum(seconds for part, seconds in measured.cpu.items() if part not in OUTSIDE)
    return spent / done if done else 0.0


def requests_per_operation(measured: Measured, shown: int = 6) -> str:
    """The phase's Temporal requests per operation of the phase: the total, then the most
    frequent kinds."""
    count = max(1, measured.timed.count)
    total = sum(measured.temporal_requests.values()) / count
    kinds = list(measured.temporal_requests.items())[:shown]
    detail = ", ".join(f"{name} {handled / count:.1f}" for name, handled in kinds)
    return f"{total:.1f} ({detail})"


def cores_busy(measured: Measured) -> float:
    """How many cores every process of the machine's stack kept busy, on average, driver
    included: near the machine's count, the phase was bound by CPU."""
    seconds = measured.timed.seconds
    return sum(measured.cpu.values()) / seconds if seconds else 0.0


def _phase(measured: Measured) -> dict[str, Any]:
    timed = measured.timed
    return {
        "count": timed.count,
        "errors": len(timed.errors),
        "seconds": round(timed.seconds, 3),
        "per_second": round(timed.rate, 2),
        "latency_ms": {
            name: round(timed.percentile(share) * 1000, 1)
            for name, share in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
        },
        "cpu_seconds": {part: round(seconds, 3) for part, seconds in measured.cpu.items()},
        "cpu_ms_per_operation": round(cpu_per_operation(measured) * 1000, 2),
        "cores_busy": round(cores_busy(measured), 2),
        "postgres_transactions": measured.transactions,
        "temporal_requests": measured.temporal_requests,
    }


def as_json(results: Results, started_at: datetime, wall_seconds: float) -> dict[str, Any]:
    hooks = results.webhooks
    phases = {
        "twin": results.twin,
        "auctions_put_up": results.put_up,
        "checkouts": results.checkouts,
        "close_to_intent_below_capacity": results.below_capacity,
        "twin_start_to_first_activity_below_capacity": results.twin_below_capacity,
        "webhook_to_waiting_checkout": hooks.service,
        "bare_webhook_to_waiting_checkout": hooks.bare,
        "open_checkouts_for_memory": results.memory.opening,
    }
    if hooks.finished is not None:
        phases["webhook_to_finished_checkout"] = hooks.finished
    return {
        "started_at": started_at.isoformat(timespec="seconds"),
        "wall_seconds": round(wall_seconds, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / GIB**3, 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "options": results.options,
        "ratios": [{**asdict(ratio), "met": ratio.met} for ratio in results.ratios()],
        "phases": {name: _phase(measured) for name, measured in phases.items()},
        "memory_mib": [asdict(sample) for sample in results.memory.samples],
        "profiles": [asdict(profile) for profile in results.profiles],
        "errors": results.errors()[:50],
    }


def run_name(started_at: datetime, quick: bool) -> str:
    """What the files of one run are called in bench/results: its start, and whether quick."""
    stamp = started_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-quick" if quick else stamp


def write_json(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def table(results: Results) -> str:
    rows = [
        f"  {'phase':<40}{'n':>7}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/op':>11}"
        f"{'cores':>7}",
    ]
    named = [
        ("no-op twin, start → sold", results.twin),
        ("auctions put up (artwork, bid)", results.put_up),
        ("checkouts, close → sold", results.checkouts),
        ("close → intent ready (below capacity)", results.below_capacity),
        ("twin start → first activity (below cap.)", results.twin_below_capacity),
        ("webhook → waiting checkout", results.webhooks.service),
        ("bare endpoint → waiting checkout", results.webhooks.bare),
    ]
    if results.webhooks.finished is not None:
        named.append(("webhook → finished checkout", results.webhooks.finished))
    named.append(("opening checkouts left waiting", results.memory.opening))
    for name, measured in named:
        timed = measured.timed
        rows.append(
            f"  {name:<40}{timed.count:>7}{timed.rate:>9.1f}{timed.median * 1000:>9.0f}"
            f"{timed.percentile(0.99) * 1000:>9.0f}{cpu_per_operation(measured) * 1000:>11.1f}"
            f"{cores_busy(measured):>7.2f}"
        )
    cpu = results.checkouts.cpu
    per_part = ", ".join(
        f"{part} {seconds / max(1, results.checkouts.timed.count) * 1000:.1f}"
        for part, seconds in sorted(cpu.items(), key=lambda item: -item[1])
    )
    sold = results.checkouts
    per_checkout = ", ".join(
        f"{count / max(1, sold.timed.count):.1f} {kind}"
        for kind, count in sold.transactions.items()
    )
    rows += ["", f"  CPU ms per checkout by process: {per_part}"]
    rows += [f"  PostgreSQL transactions per checkout: {per_checkout}"]
    rows += [
        f"  Temporal requests per {who}: {requests_per_operation(measured)}"
        for who, measured in (("checkout", sold), ("twin", results.twin))
    ]
    rows += [""]
    rows += [ratio.line() for ratio in results.ratios()]
    for profile in results.profiles:
        shares = ", ".join(
            f"{name} {share:.0%}" for name, share in list(profile.by_library.items())[:8]
        )
        rows += ["", f"  {profile.part}, where its CPU went ({profile.samples} samples): {shares}"]
    return "\n".join(rows)
