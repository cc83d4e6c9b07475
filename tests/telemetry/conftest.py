"""The worker's metrics endpoint, once for the session.

A Temporal runtime binds its Prometheus port for the life of the process: the session has
one, on a free port, and each stack's series are told apart by its own task queue label.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from temporalio.runtime import Runtime

from devstack.processes import free_port
from infra.telemetry import metrics_bind_address, prometheus_runtime


@dataclass(frozen=True)
class WorkerMetrics:
    runtime: Runtime
    url: str


@pytest.fixture(scope="session")
def worker_metrics() -> WorkerMetrics:
    port = free_port()
    runtime = prometheus_runtime(metrics_bind_address("127.0.0.1", port))
    return WorkerMetrics(runtime, f"http://127.0.0.1:{port}/metrics")
