"""Where a process spends its CPU during a phase: py-spy samples it from outside (no change to
the process, about 1 % overhead), and the samples are summed by the library they fall in."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devstack.processes import StartupError, tool

SAMPLES_PER_SECOND = 97  # not a divisor of any timer's period: no aliasing
TOP = 15

# Where a sample's innermost frame says the process waits for work: not CPU it spends.
IDLE = (
    "EpollSelector.select (selectors.py",
    "_worker (concurrent/futures/thread.py",
    "Condition.wait (threading.py",
)
# Each frame reads `function (path/of/file.py:line)`, the path relative to where Python found
# it. A sample counts for the library of its innermost frame that any pattern names.
LIBRARIES = (
    ("temporal sandbox (re-imports)", ("(temporalio/worker/workflow_sandbox",)),
    ("temporal SDK", ("(temporalio/",)),
    ("pydantic", ("(pydantic/", "(pydantic_core/")),
    ("stripe SDK", ("(stripe/",)),
    ("SQLAlchemy / SQLModel", ("(sqlalchemy/", "(sqlmodel/")),
    ("asyncpg", ("(asyncpg/",)),
    ("FastAPI / Starlette", ("(fastapi/", "(starlette/")),
    ("uvicorn / h11 / websockets", ("(uvicorn/", "(h11/", "(websockets/")),
    ("Socket.IO", ("(socketio/", "(engineio/")),
    ("httpx / httpcore", ("(httpx/", "(httpcore/", "(anyio/")),
    ("mail (email, jinja2, aiosmtplib)", ("(email/", "(jinja2/", "(aiosmtplib/")),
    ("encryption", ("(cryptography/", "payload_codec")),
    ("metrics and traces", ("(prometheus_client/", "(opentelemetry/")),
    ("imports", ("<frozen importlib",)),
    ("asyncio", ("(asyncio/",)),
    (
        "our code",
        ("(workflows/", "(activities/", "(api/", "(infra/", "(domain/", "(notifications/"),
    ),
)


@dataclass(frozen=True)
class Profile:
    part: str
    samples: int  # busy ones: those waiting for work are left out
    idle_samples: int
    by_library: dict[str, float]  # share of the busy samples
    top_functions: list[tuple[str, float]]  # share of the busy samples, innermost frame


def available() -> bool:
    try:
        tool("py-spy")
    except StartupError:
        return False
    return True


@contextlib.contextmanager
def sampling(pids: dict[str, int], folder: Path, stem: str) -> Iterator[dict[str, Path]]:
    """py-spy recording each process in `pids` for the duration of the block."""
    folder.mkdir(parents=True, exist_ok=True)
    outputs = {part: folder / f"{stem}-{part}.folded" for part in pids}
    command = [tool("py-spy"), "record", "--rate", str(SAMPLES_PER_SECOND), "--format", "raw"]
    command.append("--nonblocking")  # never pauses the process it samples
    spies = [
        subprocess.Popen(  # noqa: S603 (our own tool, with our own arguments)
            [*command, "--pid", str(pid), "--output", str(outputs[part])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for part, pid in pids.items()
    ]
    try:
        yield outputs
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for spy in spies:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()


def summarize(part: str, folded: Path) -> Profile | None:
    """The shares of `folded` (py-spy's raw output: `frame;frame;... count` per line)."""
    if not folded.exists():
        return None
    libraries: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = idle = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[-1].startswith(IDLE):
            idle += count
            continue
        total += count
        functions[frames[-1]] += count
        libraries[_library_of(frames)] += count
    if not total:
        return None
    return Profile(
        part,
        total,
        idle,
        {name: round(count / total, 3) for name, count in libraries.most_common()},
        [(name, round(count / total, 3)) for name, count in functions.most_common(TOP)],
    )


def _library_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, patterns in LIBRARIES:
            if any(pattern in frame for pattern in patterns):
                return name
    return "other"
