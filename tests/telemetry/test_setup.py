"""What `start_telemetry` installs: nothing without OTEL_EXPORTER_OTLP_ENDPOINT, and with it,
an exporter that posts each process's spans to the collector over OTLP/HTTP."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider

from api.main import create_app
from infra.settings import Environment, Settings
from infra.telemetry import (
    API_SERVICE,
    WORKER_SERVICE,
    metrics_bind_address,
    start_telemetry,
    traces_endpoint,
    worker_runtime,
)


@dataclass
class Collector:
    """A stand-in for an OpenTelemetry collector's OTLP/HTTP receiver: keeps what it gets."""

    url: str
    received: list[tuple[str, str, bytes]] = field(default_factory=list)


@pytest.fixture
def collector() -> Iterator[Collector]:
    received: list[tuple[str, str, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Collector(f"http://127.0.0.1:{server.server_address[1]}", received)
    server.shutdown()
    server.server_close()


def test_without_an_endpoint_nothing_is_installed() -> None:
    settings = Settings(otel_exporter_otlp_endpoint=None)
    telemetry = start_telemetry(settings, API_SERVICE)
    assert not telemetry.tracing and telemetry.tracer_provider is None
    assert telemetry.temporal_interceptors() == []
    app = create_app(settings)
    assert not getattr(app.http, "_is_instrumented_by_opentelemetry", False)
    # OpenTelemetry's own global stays its no-op proxy: no SDK provider, no exporter.
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    telemetry.shutdown()  # nothing to flush


def test_a_blank_endpoint_is_unset() -> None:
    assert Settings(otel_exporter_otlp_endpoint="  ").otel_exporter_otlp_endpoint is None


async def test_with_an_endpoint_spans_are_posted_to_the_collector(collector: Collector) -> None:
    settings = Settings(otel_exporter_otlp_endpoint=collector.url + "/")
    telemetry = start_telemetry(settings, WORKER_SERVICE)
    assert telemetry.tracing and len(telemetry.temporal_interceptors()) == 1
    assert telemetry.tracer_provider is not None
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("checkout"):
        pass
    # The batch goes out on shutdown, as when the worker stops.
    await asyncio.to_thread(telemetry.shutdown)

    assert len(collector.received) == 1
    path, content_type, body = collector.received[0]
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == WORKER_SERVICE
    assert [s.name for scope in resource_spans.scope_spans for s in scope.spans] == ["checkout"]


def test_the_service_name_is_the_processs_unless_set() -> None:
    assert start_telemetry(Settings(), API_SERVICE).service_name == "auction-api"
    named = Settings(otel_service_name="auction-api-eu")
    assert start_telemetry(named, API_SERVICE).service_name == "auction-api-eu"


def test_addresses() -> None:
    assert traces_endpoint("http://collector:4318") == "http://collector:4318/v1/traces"
    assert metrics_bind_address("127.0.0.1", 9464) == "127.0.0.1:9464"
    assert metrics_bind_address("::", 9464) == "[::]:9464"
    assert worker_runtime(Settings(worker_metrics_port=0)) is None


def test_a_taken_port_is_named_in_the_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = Settings(
            worker_metrics_host="127.0.0.1", worker_metrics_port=holder.getsockname()[1]
        )
        with pytest.raises(RuntimeError, match="WORKER_METRICS_PORT"):
            worker_runtime(taken)


async def test_in_production_metrics_are_served_only_to_a_token() -> None:
    """The API's /metrics is on its public port: production without a token serves none."""

    async def get_metrics(settings: Settings, headers: dict[str, str] | None = None) -> int:
        transport = httpx.ASGITransport(app=create_app(settings).http)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            return (await http.get("/metrics", headers=headers)).status_code

    production = {"environment": Environment.PRODUCTION, "otel_exporter_otlp_endpoint": None}
    assert await get_metrics(Settings.model_validate(production)) == 404
    token = "m" * 32
    guarded = Settings.model_validate({**production, "metrics_token": token})
    assert await get_metrics(guarded) == 401
    assert await get_metrics(guarded, {"Authorization": f"Bearer {token}"}) == 200
    laptop = Settings(environment=Environment.DEVELOPMENT, otel_exporter_otlp_endpoint=None)
    assert await get_metrics(laptop) == 200
