"""Starting the real local servers (PostgreSQL, localstripe, Temporal, SMTP), for `make dev`
and for the tests alike: each start waits until the server answers, or says why it did not.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from workflows.search_attributes import dev_server_flags

if TYPE_CHECKING:
    # Imported where used: pgserver warns at import time when XDG_RUNTIME_DIR is unset.
    from pgserver.postgres_server import PostgresServer


class StartupError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool(name: str) -> str:
    """A command installed beside this Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise StartupError(f"{name} is not installed: run `make install`")
    return found


def wait_until(
    check: Any, what: str, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StartupError(f"{what} exited with code {process.returncode} while starting")
        with contextlib.suppress(OSError, urllib.error.URLError):
            if check():
                return
        time.sleep(0.1)
    raise StartupError(f"{what} did not become ready within {timeout:.0f} s")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.create_connection((host, port), timeout=0.5):
        return True


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local URLs only)
        return 200 <= int(response.status) < 300


@dataclass
class Service:
    """A server process we started, stopped politely, then firmly."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no shutdown code runs.

        The whole session goes, so a child the server started cannot outlive it.
        """
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._close_log()

    def running(self) -> bool:
        return self.process.poll() is None

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()


def spawn(
    name: str,
    command: Sequence[str],
    url: str,
    log_dir: Path | None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Service:
    log: IO[bytes] | None = None
    log_path = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}.log"
        log = log_path.open("ab")
    process = subprocess.Popen(
        list(command),
        stdout=log if log is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        # Unbuffered, so a Python child's log shows what it did before it died or hung.
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        start_new_session=True,  # Ctrl-C reaches the runner, which stops us in order
        cwd=cwd,
    )
    return Service(name=name, process=process, url=url, log_path=log_path, _log=log)


def ready_or_stopped(service: Service, wait: Callable[[], None]) -> Service:
    """`service` once `wait` returns; stopped if the wait fails or is interrupted.

    Without this a server that never became ready, or a Ctrl-C during its start, would be
    left running with nobody holding its handle.
    """
    try:
        wait()
    except BaseException:
        service.stop()
        raise
    return service


def start_localstripe(port: int, log_dir: Path | None = None) -> Service:
    """The project's one Stripe emulator, for `make dev`, the tests and the fault cluster:
    localstripe with a declined intent taking another card (see devstack/localstripe_server.py).
    """
    # --from-scratch: never load the state file every localstripe on the machine shares.
    command = [sys.executable, "-m", "devstack.localstripe_server"]
    service = spawn(
        "localstripe",
        [*command, "--port", str(port), "--from-scratch"],
        f"http://localhost:{port}",
        log_dir,
    )
    return ready_or_stopped(
        service, lambda: wait_until(lambda: port_open(port), "localstripe", 20, service.process)
    )


def register_stripe_webhook(api_base: str, url: str, secret: str, name: str = "auction") -> None:
    """Tells localstripe to send signed events to `url` (kept in memory: redo after restarts)."""
    body = urllib.parse.urlencode({"url": url, "secret": secret}).encode()
    endpoint = f"{api_base}/_config/webhooks/{name}"
    request = urllib.request.Request(endpoint, data=body, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        if response.status != 200:
            raise StartupError(f"localstripe refused the webhook: {response.status}")


def start_temporal(
    port: int,
    ui_port: int,
    db_file: Path | None,
    log_dir: Path | None = None,
    *,
    codec_endpoint: str | None = None,
    metrics_port: int | None = None,
) -> Service:
    """The dev server and its Web UI; with `codec_endpoint`, the UI decodes payloads there;
    its Prometheus metrics on `metrics_port` (else on a port of its choosing)."""
    command = [
        tool("temporal"), "server", "start-dev",
        "--ip", "127.0.0.1", "--port", str(port), "--ui-port", str(ui_port),
        "--log-level", "warn",
        *dev_server_flags(),  # the saga's search attributes: a checkout is indexed as it moves
    ]  # fmt: skip
    if codec_endpoint is not None:
        command += ["--ui-codec-endpoint", codec_endpoint]
    if metrics_port is not None:
        command += ["--metrics-port", str(metrics_port)]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        # WAL keeps a persistent dev server near the in-memory one's speed.
        command += [
            "--db-filename", str(db_file),
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
        ]  # fmt: skip
    service = spawn("temporal", command, f"127.0.0.1:{port}", log_dir)
    health = [tool("temporal"), "operator", "cluster", "health", "--address", f"127.0.0.1:{port}"]

    def wait() -> None:
        wait_until(
            lambda: subprocess.run(health, capture_output=True, check=False).returncode == 0,
            "Temporal",
            60,
            service.process,
        )
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{ui_port}/"), "Temporal Web UI", 30, service.process
        )

    return ready_or_stopped(service, wait)


def start_smtp_sink(
    port: int, log_dir: Path | None = None, *, mailbox: Path | None = None
) -> Service:
    """aiosmtpd accepting everything: printed to its log, or kept in a maildir to read back."""
    handler = ["aiosmtpd.handlers.Debugging"]
    if mailbox is not None:
        handler = ["aiosmtpd.handlers.Mailbox", str(mailbox)]
    service = spawn(
        "smtp",
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", *handler],
        f"smtp://127.0.0.1:{port}",
        log_dir,
    )
    return ready_or_stopped(
        service, lambda: wait_until(lambda: port_open(port), "SMTP sink", 20, service.process)
    )


WORKER_READY_LINE = b"Worker polling"


def log_size(path: Path | None) -> int:
    return path.stat().st_size if path is not None and path.exists() else 0


def log_contains(path: Path | None, offset: int, text: bytes) -> bool:
    """Whether `text` was written to the log at `path` after byte `offset`."""
    if path is None or not path.exists():
        return False
    with path.open("rb") as log:
        log.seek(offset)
        return text in log.read()


def start_worker(
    repo: Path,
    env: dict[str, str],
    log_dir: Path,
    *,
    settle_seconds: float = 1.0,
    name: str = "worker",
    command: Sequence[str] | None = None,
) -> Service:
    """`python worker.py` (or another worker's `command`), ready once it says it polls its
    task queue."""
    offset = log_size(log_dir / f"{name}.log")  # the log is appended to across restarts
    command = command or [sys.executable, str(repo / "worker.py")]
    service = spawn(name, command, "", log_dir, env, repo)

    def wait() -> None:
        wait_until(
            lambda: log_contains(service.log_path, offset, WORKER_READY_LINE),
            f"the {name}",
            60,
            service.process,
        )
        # A worker that polls, then fails on its first task, dies within this moment.
        time.sleep(settle_seconds)
        if service.process.poll() is not None:
            raise StartupError(f"the worker exited with code {service.process.returncode}")

    return ready_or_stopped(service, wait)


def start_api(
    repo: Path,
    port: int,
    env: dict[str, str],
    log_dir: Path | None,
    *,
    app: str = "api.main:app",
    name: str = "api",
) -> Service:
    """`uvicorn api.main:app` (or another `app`), ready once GET /healthz answers (for the
    API: the database is reachable)."""
    url = f"http://127.0.0.1:{port}"
    command = [tool("uvicorn"), app, "--host", "127.0.0.1", "--port", str(port)]
    service = spawn(name, command, url, log_dir, env, repo)
    return ready_or_stopped(
        service,
        lambda: wait_until(lambda: http_ok(f"{url}/healthz"), f"the {name}", 60, service.process),
    )


@dataclass
class Postgres:
    """PostgreSQL for this project: the embedded pgserver one, in `data_dir`."""

    url: str
    _server: PostgresServer

    @property
    def log_path(self) -> Path:
        return Path(self._server.log)

    def running(self) -> bool:
        return bool(self._server.get_postmaster_info().is_running())

    @property
    def pid(self) -> int:
        """The postmaster's: every backend is its child."""
        return int(self._server.get_postmaster_info().pid)

    def stop(self) -> None:
        self._server.cleanup()

    def crash(self) -> None:
        """Stops the server the way a crash would: `pg_ctl stop -m immediate` quits every
        process at once, without a checkpoint, and clients lose their connections.
        The next start replays the write-ahead log, as after a power cut.
        """
        # Made at import time for each binary pgserver ships, so unknown to type checkers.
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(["-m", "immediate", "-w", "stop"], pgdata=self._server.pgdata,
               user=self._server.system_user)  # fmt: skip

    def start_again(self) -> None:
        """Starts the server on the same data folder and socket, so `url` stays valid."""
        from pgserver.postgres_server import PostgresServer

        with PostgresServer._lock:
            self._server.ensure_postgres_running()

    def create_database(self, name: str) -> str:
        self._server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')
        self._server.psql(f'CREATE DATABASE "{name}";')
        return str(self._server.get_uri(name))


def start_postgres(data_dir: Path, *, keep_running: bool = False) -> Postgres:
    from pgserver.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(data_dir.resolve())
    server = get_server(str(data_dir), cleanup_mode=None if keep_running else "stop")
    return Postgres(url=str(server.get_uri()), _server=server)


def _forget_dead_handles(data_dir: Path) -> None:
    """Drops the handles of processes that died without releasing the server.

    pgserver stops the server when its last handle is released; a handle left by a killed
    process would otherwise keep every later server of this folder running for ever.
    """
    from pgserver.postgres_server import PostgresServer

    handles = data_dir / ".handle_pids.json"
    with PostgresServer._lock:
        if not handles.exists():
            return
        pids = [int(pid) for pid in json.loads(handles.read_text())]
        alive = [pid for pid in pids if _pid_alive(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_migrations(database_url: str) -> None:
    result = subprocess.run(
        [tool("alembic"), "upgrade", "head"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StartupError(f"alembic upgrade head failed:\n{result.stdout}{result.stderr}")
