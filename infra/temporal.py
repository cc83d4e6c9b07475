"""One way to reach Temporal, shared by the API and the worker."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from infra.settings import Settings


async def connect_temporal(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """`runtime` carries the worker's Prometheus endpoint; `interceptors` the tracing (see
    `infra.telemetry`). A worker built on this client uses the same interceptors."""
    # The pydantic converter carries Decimal and datetime through workflow history exactly.
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
        interceptors=interceptors,
    )
