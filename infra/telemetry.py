"""Traces and metrics, set up one way for both processes (see docs/metrics.md).

Traces: with OTEL_EXPORTER_OTLP_ENDPOINT set, each process exports its spans over OTLP/HTTP,
named by OTEL_SERVICE_NAME (`auction-api`, `auction-worker` when unset): the API's request
spans, Temporal's client spans (start, signal, update), and the worker's workflow and
activity spans, linked through Temporal's headers. Unset, nothing is installed: no
interceptor, no middleware, no exporter; OpenTelemetry's API stays its no-op default.

Metrics: the worker's Temporal runtime serves Prometheus on WORKER_METRICS_PORT, the SDK's
`temporal_*` series and ours (`infra.checkout_metrics`). The API serves its own `/metrics`
(`api.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from infra.checkout_metrics import HISTOGRAM_BUCKETS
from infra.settings import Settings

API_SERVICE = "auction-api"
WORKER_SERVICE = "auction-worker"
# Probes and scrapes every few seconds would drown the traces people look for.
UNTRACED_PATHS = "/healthz$,/metrics$"


@dataclass(frozen=True)
class Telemetry:
    """One process's tracing: `tracer_provider` is None when tracing is off."""

    service_name: str
    tracer_provider: TracerProvider | None = None

    @property
    def tracing(self) -> bool:
        return self.tracer_provider is not None

    def temporal_interceptors(self) -> list[Interceptor]:
        """For the Temporal client; a worker built on that client traces with it too."""
        if self.tracer_provider is None:
            return []
        return [TracingInterceptor(self.tracer_provider.get_tracer("temporalio"))]

    def instrument(self, app: FastAPI) -> None:
        """Request spans for `app`, whose context Temporal's client spans then continue."""
        if self.tracer_provider is not None:
            FastAPIInstrumentor.instrument_app(
                app, tracer_provider=self.tracer_provider, excluded_urls=UNTRACED_PATHS
            )

    def shutdown(self) -> None:
        """Sends the spans still batched; the process is about to exit."""
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()


def start_telemetry(
    settings: Settings, default_service: str, *, exporter: SpanExporter | None = None
) -> Telemetry:
    """This process's tracing, from the settings; `exporter` replaces OTLP (tests use an
    in-memory one), and is handed each span as it ends rather than in batches."""
    service = settings.otel_service_name or default_service
    processor: SpanProcessor
    if exporter is not None:
        processor = SimpleSpanProcessor(exporter)
    elif settings.otel_exporter_otlp_endpoint:
        # Headers, timeout and compression still come from the OTEL_EXPORTER_OTLP_* variables.
        otlp = OTLPSpanExporter(endpoint=traces_endpoint(settings.otel_exporter_otlp_endpoint))
        processor = BatchSpanProcessor(otlp)
    else:
        return Telemetry(service)
    # The provider is this process's own, not OpenTelemetry's global one: the tests run the API
    # and the worker in one process, each under its own name.
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(processor)
    return Telemetry(service, provider)


def traces_endpoint(base_url: str) -> str:
    """As OTLP/HTTP exporters read OTEL_EXPORTER_OTLP_ENDPOINT: the base of every signal."""
    return base_url.rstrip("/") + "/v1/traces"


def metrics_bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def worker_runtime(settings: Settings) -> Runtime | None:
    """The worker's Temporal runtime, serving Prometheus; None with WORKER_METRICS_PORT=0.

    A runtime binds its port once for the life of the process: build one per process.
    """
    if settings.worker_metrics_port == 0:
        return None
    return prometheus_runtime(
        metrics_bind_address(settings.worker_metrics_host, settings.worker_metrics_port)
    )


def prometheus_runtime(bind_address: str) -> Runtime:
    prometheus = PrometheusConfig(
        bind_address=bind_address, histogram_bucket_overrides=HISTOGRAM_BUCKETS
    )
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=prometheus))
    except ValueError as failed:  # how the SDK reports a port it cannot bind
        raise RuntimeError(
            f"cannot serve the worker's metrics on {bind_address}: {failed}; "
            "set WORKER_METRICS_PORT to a free port, or to 0 to serve none"
        ) from failed
