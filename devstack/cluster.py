"""The whole service as separate processes, each of which can be killed, stopped and started
again on its own: what the fault tests and `make load` run against.

Unlike `make dev`, everything lives in a throw-away folder, every secret is generated, the
ports are picked once and kept across restarts (so a restarted part is found where it was),
and the worker may reach Stripe through an edge proxy that injects faults. PostgreSQL is an
embedded pgserver in that folder unless a DATABASE_URL is given; Temporal is the dev server
on a SQLite file (with WAL), so it can be SIGKILLed and restarted on the same history.
"""

from __future__ import annotations

import atexit
import dataclasses
import mailbox
import signal
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType

from devstack.processes import (
    Postgres,
    Service,
    free_port,
    register_stripe_webhook,
    run_migrations,
    start_api,
    start_localstripe,
    start_postgres,
    start_smtp_sink,
    start_temporal,
    start_worker,
)
from infra.payload_keys import PayloadKeys, generate_key
from infra.settings import Environment, Settings

REPO = Path(__file__).resolve().parent.parent
# The order parts start in; they stop in the reverse one.
PARTS = ("temporal", "localstripe", "smtp", "worker", "api")


@dataclass(frozen=True)
class ClusterOptions:
    """What the worker and the API are told, beyond where the other parts are."""

    payment_timeout_seconds: int = 600
    stripe_timeout_seconds: float = 20.0
    # The worker's Stripe base URL when it must not talk to localstripe directly (an edge
    # proxy in front of it); the API and the caller's clients always reach localstripe.
    worker_stripe_api_base: str | None = None
    # An existing PostgreSQL; None starts a pgserver of our own (needed to restart it).
    database_url: str | None = None
    # Whether localstripe posts its events to the API; `make bench` signs and posts them itself.
    stripe_sends_webhooks: bool = True
    # The reconciliation schedule's period (`make bench` keeps it out of its phases).
    reconcile_interval_minutes: int = 5


@dataclass(frozen=True)
class ClusterPorts:
    temporal: int
    temporal_ui: int
    localstripe: int
    api: int
    smtp: int
    temporal_metrics: int  # the server's Prometheus metrics (`make bench` reads its requests)

    @classmethod
    def pick(cls) -> ClusterPorts:
        return cls(*(free_port() for _ in range(6)))


class Cluster:
    """Start with `with Cluster(root, options) as cluster:`; everything stops on the way out,
    whatever happened, and at interpreter exit as a last resort.
    """

    def __init__(self, root: Path, options: ClusterOptions | None = None) -> None:
        self.root = root
        self.logs = root / "logs"
        self.options = options or ClusterOptions()
        self.ports = ClusterPorts.pick()
        token = uuid.uuid4().hex
        self.webhook_secret = f"whsec_test_{token}"
        self.stripe_secret_key = f"sk_test_{token}"
        self.jwt_secret = f"test-jwt-{token}"
        self.task_queue = f"auction-payments-{token[:8]}"
        # Every process of the cluster, and the caller's clients, encrypt with this key.
        self.payload_keys = PayloadKeys((generate_key(f"cluster-{token[:8]}"),)).render()
        self.database_url = ""
        self._postgres: Postgres | None = None
        self._services: dict[str, Service] = {}

    # Addresses.

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def localstripe_url(self) -> str:
        return f"http://localhost:{self.ports.localstripe}"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.ports.temporal}"

    @property
    def temporal_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.temporal_metrics}/metrics"

    @property
    def temporal_db(self) -> Path:
        return self.root / "temporal" / "temporal.db"

    @property
    def mailbox(self) -> Path:
        """The maildir the SMTP sink delivers every message to."""
        return self.root / "mailbox"

    def delivered_message_ids(self) -> list[str]:
        """The Message-ID of every email the sink received, repeats included."""
        if not self.mailbox.exists():
            return []
        return [str(message["Message-ID"]) for message in mailbox.Maildir(self.mailbox)]

    def log_of(self, part: str) -> Path:
        return self.logs / f"{part}.log"

    def settings(self, **overrides: object) -> Settings:
        """Settings for clients in the caller's process: the API's view of the cluster."""
        values: dict[str, object] = {
            "environment": Environment.TEST,
            "database_url": self.database_url,
            "temporal_address": self.temporal_address,
            "temporal_task_queue": self.task_queue,
            "stripe_api_base": self.localstripe_url,
            "stripe_secret_key": self.stripe_secret_key,
            "stripe_webhook_secret": self.webhook_secret,
            "jwt_secret": self.jwt_secret,
            "temporal_payload_keys": self.payload_keys,
            "payment_timeout_seconds": self.options.payment_timeout_seconds,
            "stripe_timeout_seconds": self.options.stripe_timeout_seconds,
        }
        values.update(overrides)
        return Settings.model_validate(values)

    def env_for(self, part: str) -> dict[str, str]:
        stripe_base = self.localstripe_url
        if part == "worker" and self.options.worker_stripe_api_base:
            stripe_base = self.options.worker_stripe_api_base
        return {
            "ENVIRONMENT": Environment.TEST.value,
            "DATABASE_URL": self.database_url,
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TEMPORAL_TASK_QUEUE": self.task_queue,
            "STRIPE_API_BASE": stripe_base,
            "STRIPE_SECRET_KEY": self.stripe_secret_key,
            "STRIPE_WEBHOOK_SECRET": self.webhook_secret,
            "JWT_SECRET": self.jwt_secret,
            "TEMPORAL_PAYLOAD_KEYS": self.payload_keys,
            "PAYMENT_TIMEOUT_SECONDS": str(self.options.payment_timeout_seconds),
            "STRIPE_TIMEOUT_SECONDS": str(self.options.stripe_timeout_seconds),
            "RECONCILE_INTERVAL_MINUTES": str(self.options.reconcile_interval_minutes),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.ports.smtp),
            "PUBLIC_BASE_URL": self.api_url,
            "TEMPORAL_UI_ORIGIN": f"http://127.0.0.1:{self.ports.temporal_ui}",
            # Nobody scrapes a cluster, and a fixed port would clash with `make dev`'s.
            "WORKER_METRICS_PORT": "0",
        }

    # The whole cluster.

    def start(self) -> Cluster:
        atexit.register(self.stop)  # a caller that forgets `with` still leaves nothing behind
        try:
            self._start_database()
            for part in PARTS:
                self.start_part(part)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops every part still running, in reverse order; safe to call twice."""
        for part in reversed(PARTS):
            service = self._services.pop(part, None)
            if service is not None:
                try:
                    service.stop()
                except Exception as failed:  # one stuck part must not keep the others up
                    print(f"could not stop {part}: {failed}", file=sys.stderr)
                    service.kill()
        if self._postgres is not None:
            postgres, self._postgres = self._postgres, None
            postgres.stop()  # a crashed server is already gone; pgserver then does nothing
        atexit.unregister(self.stop)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # One part at a time.

    def start_part(self, part: str) -> None:
        if self.running(part):
            return
        if part == "temporal":
            service = start_temporal(
                self.ports.temporal,
                self.ports.temporal_ui,
                self.temporal_db,
                self.logs,
                codec_endpoint=f"{self.api_url}/codec",
                metrics_port=self.ports.temporal_metrics,
            )
        elif part == "localstripe":
            service = start_localstripe(self.ports.localstripe, self.logs)
            if self.options.stripe_sends_webhooks:
                # localstripe keeps webhooks in memory: a new one must be told again.
                register_stripe_webhook(
                    service.url, f"{self.api_url}/api/payments/webhook", self.webhook_secret
                )
        elif part == "smtp":
            service = start_smtp_sink(self.ports.smtp, self.logs, mailbox=self.mailbox)
        elif part == "worker":
            service = start_worker(REPO, self.env_for("worker"), self.logs, settle_seconds=0.5)
        elif part == "api":
            service = start_api(REPO, self.ports.api, self.env_for("api"), self.logs)
        else:
            raise ValueError(f"no part named {part!r}; the parts are {PARTS}")
        self._services[part] = service

    def kill_part(self, part: str) -> None:
        """SIGKILL: the part gets no chance to finish anything."""
        service = self._services.pop(part, None)
        if service is not None:
            service.kill()

    def stop_part(self, part: str) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        service = self._services.pop(part, None)
        if service is not None:
            service.stop()

    def restart_part(self, part: str) -> None:
        self.stop_part(part)
        self.start_part(part)

    def process_ids(self) -> dict[str, int]:
        """The main process of each part running now, PostgreSQL's postmaster included."""
        pids = {part: service.process.pid for part, service in self._services.items()}
        if self._postgres is not None and self._postgres.running():
            pids["postgres"] = self._postgres.pid
        return pids

    def running(self, part: str) -> bool:
        service = self._services.get(part)
        return service is not None and service.running()

    def reconfigure(self, **changes: object) -> None:
        """New options for the worker and the API, which are restarted to take them."""
        self.options = dataclasses.replace(self.options, **changes)  # type: ignore[arg-type]
        for part in ("worker", "api"):
            if part in self._services:
                self.restart_part(part)

    # PostgreSQL.

    @property
    def owns_database(self) -> bool:
        """Whether PostgreSQL is ours to crash and restart (not one from DATABASE_URL)."""
        return self._postgres is not None

    def crash_database(self) -> None:
        if self._postgres is None:
            raise RuntimeError("PostgreSQL comes from DATABASE_URL: it is not ours to crash")
        self._postgres.crash()

    def start_database_again(self) -> None:
        if self._postgres is None:
            raise RuntimeError("PostgreSQL comes from DATABASE_URL: it is not ours to start")
        self._postgres.start_again()

    def _start_database(self) -> None:
        if self.options.database_url:
            self.database_url = self.options.database_url
        else:
            # A fresh server of our own: its default database is ours alone.
            self._postgres = start_postgres(self.root / "postgres")
            self.database_url = self._postgres.url
        run_migrations(self.database_url)


def stop_on_sigterm() -> None:
    """SIGTERM (a `kill`, a CI job's time-out) unwinds as Ctrl-C does: through the `with
    Cluster` block, which stops every part, rather than leaving them running."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, _: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)
