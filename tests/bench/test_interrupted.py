"""`make bench` stopped from outside (a `kill`, a CI job's time-out) stops its whole stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from devstack.cluster import REPO

STARTED = "  up in "


def test_sigterm_stops_the_benchmark_and_its_stack(tmp_path: Path) -> None:
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=REPO,
        env={**os.environ, "BENCH_RESULTS": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert bench.stdout is not None
    lines: list[str] = []
    try:
        for line in bench.stdout:
            lines.append(line)
            if line.startswith(STARTED):
                break
        root = lines[0].rsplit(" ", 1)[-1].strip()  # "Starting a stack of its own in <root>"
        parts = [child.pid for child in psutil.Process(bench.pid).children(recursive=True)]
        assert len(parts) >= 7, lines  # PostgreSQL, Temporal, localstripe, SMTP, 2 workers, 2 APIs
        bench.send_signal(signal.SIGTERM)
        rest = bench.communicate(timeout=90)[0]
    finally:
        if bench.poll() is None:
            bench.kill()
    assert bench.returncode == 130, rest
    assert "Interrupted: the stack is stopped" in rest
    assert "never awaited" not in rest
    deadline = time.monotonic() + 10
    while (left := [pid for pid in parts if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:  # not to leave them to the next tests
        psutil.Process(pid).kill()
    assert left == [], f"still running from {root}: {left}"


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
