"""The benchmark's stack: the service as `make load` runs it, plus the twin's worker and the
bare webhook endpoint, on the same Temporal server and the same machine."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType

from devstack.cluster import REPO, Cluster, ClusterOptions
from devstack.processes import Service, free_port, start_api, start_worker

# Long enough that no checkout of a run expires while it runs: every one is paid or left open.
PAYMENT_WINDOW_SECONDS = 4 * 3600
DRIVER = "bench-driver"


class BenchStack:
    def __init__(self, root: Path) -> None:
        self.cluster = Cluster(
            root,
            ClusterOptions(
                payment_timeout_seconds=PAYMENT_WINDOW_SECONDS,
                database_url=os.environ.get("DATABASE_URL"),
                stripe_sends_webhooks=False,
                # A reconciliation run in the middle of a phase would be charged to it.
                reconcile_interval_minutes=24 * 60,
            ),
        )
        self.twin_task_queue = f"{self.cluster.task_queue}-twin"
        self.bare_port = free_port()
        self._extra: dict[str, Service] = {}

    @property
    def bare_webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.bare_port}"

    def pids(self) -> dict[str, int]:
        pids = self.cluster.process_ids()
        pids.update({name: service.process.pid for name, service in self._extra.items()})
        pids[DRIVER] = os.getpid()  # the people and Stripe: how busy the machine was
        return pids

    def __enter__(self) -> BenchStack:
        self.cluster.start()
        try:
            env = {**self.cluster.env_for("worker"), "BENCH_TWIN_TASK_QUEUE": self.twin_task_queue}
            self._extra["twin-worker"] = self._start_twin_worker(env)
            self._extra["bare-webhook"] = self._start_bare_webhook(env)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        for service in self._extra.values():
            service.stop()
        self._extra.clear()
        self.cluster.stop()

    def _start_twin_worker(self, env: dict[str, str]) -> Service:
        command = [sys.executable, "-m", "bench.twin_worker"]
        return start_worker(REPO, env, self.cluster.logs, name="twin-worker", command=command)

    def _start_bare_webhook(self, env: dict[str, str]) -> Service:
        # Served as the API is: the same uvicorn, the same options.
        return start_api(
            REPO,
            self.bare_port,
            env,
            self.cluster.logs,
            app="bench.bare_webhook:app",
            name="bare-webhook",
        )
