"""One way to reach Temporal, shared by the API and the worker."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.client import Client, Interceptor
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime

from infra.payload_codec import EncryptionCodec
from infra.payload_keys import load_payload_keys
from infra.pydantic_payloads import SharedAdapterPayloadConverter
from infra.settings import Settings


def payload_codec(settings: Settings) -> EncryptionCodec:
    """Raises `PayloadKeyError` when the keys are missing (in production) or malformed."""
    return EncryptionCodec(load_payload_keys(settings))


def data_converter(settings: Settings, codec: EncryptionCodec | None = None) -> DataConverter:
    """What every client, worker and replayer of this service converts payloads with.

    The pydantic converter carries Decimal and datetime through workflow history exactly
    (the SDK's, with its type adapters shared by every run: `infra.pydantic_payloads`); the
    codec encrypts each payload. Failure messages and stack traces go through the codec too:
    they can quote whatever an exception was given.
    """
    return DataConverter(
        payload_converter_class=SharedAdapterPayloadConverter,
        payload_codec=codec or payload_codec(settings),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect_temporal(
    settings: Settings,
    converter: DataConverter | None = None,
    *,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """`runtime` carries the worker's Prometheus endpoint; `interceptors` the tracing (see
    `infra.telemetry`). A worker built on this client uses the same interceptors."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=converter or data_converter(settings),
        runtime=runtime,
        interceptors=interceptors,
    )
