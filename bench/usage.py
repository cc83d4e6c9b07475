"""CPU seconds and resident memory of each process of the stack, read from outside (psutil).

A part is its main process and every descendant: PostgreSQL's backends, the CLI's server.
CPU counts the descendants that already exited and were waited for (a backend of a closed
connection), so connection churn is not lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

import psutil

MIB = 1024 * 1024


@dataclass(frozen=True)
class PartUsage:
    cpu_seconds: float
    rss_bytes: int


def part_usage(pid: int, *, with_children: bool = True) -> PartUsage:
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        cpu = times.user + times.system
        rss = root.memory_info().rss
        if not with_children:
            return PartUsage(cpu, rss)
        cpu += times.children_user + times.children_system
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # it may exit as we read it
                child_times = child.cpu_times()
                cpu += child_times.user + child_times.system
                rss += child.memory_info().rss
    except psutil.Error:
        return PartUsage(0.0, 0)
    return PartUsage(cpu, rss)


def snapshot(pids: Mapping[str, int], alone: frozenset[str] = frozenset()) -> dict[str, PartUsage]:
    """Each part's usage; those in `alone` without their children (the process that started
    the others)."""
    return {part: part_usage(pid, with_children=part not in alone) for part, pid in pids.items()}


def cpu_spent(before: Mapping[str, PartUsage], after: Mapping[str, PartUsage]) -> dict[str, float]:
    """CPU seconds each part spent between two snapshots."""
    return {
        part: max(0.0, after[part].cpu_seconds - before[part].cpu_seconds)
        for part in after
        if part in before
    }


def rss_mib(usage: Mapping[str, PartUsage]) -> dict[str, float]:
    return {part: round(value.rss_bytes / MIB, 1) for part, value in usage.items()}
