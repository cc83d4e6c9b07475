"""The SDK's pydantic payload converter, with its type adapters built once per process.

The worker builds a new payload converter for every workflow run it starts (and for every
run it replays after an eviction), and the SDK's converter keeps its adapters on the
instance: each run built a `TypeAdapter` again for every type it decoded (its input, each
activity's result, each signal), about 1 ms of CPU apiece. Here they are kept per type for
the whole process. What is written is left to the SDK's converter, so payloads stay
byte-for-byte what it writes; reading only swaps where the adapter comes from.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

# Our payloads use a few dozen types; the bound only keeps a stray caller from growing it.
MAX_CACHED_TYPE_ADAPTERS = 256


@functools.lru_cache(maxsize=MAX_CACHED_TYPE_ADAPTERS)
def _cached_adapter(type_hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(type_hint)


def type_adapter(type_hint: Any) -> TypeAdapter[Any]:
    """The process's adapter for `type_hint`; an unhashable hint gets one of its own, as the
    SDK's converter does."""
    try:
        return _cached_adapter(type_hint)
    except TypeError:
        # An unhashable hint (no cache possible), or a TypeError pydantic raised while
        # building the adapter, which is the caller's to see.
        try:
            hash(type_hint)
        except TypeError:
            return TypeAdapter(type_hint)
        raise


def cached_adapters() -> functools._CacheInfo:
    """How the process-wide cache has fared (hits, misses, size)."""
    return _cached_adapter.cache_info()


class SharedAdapterJSONPayloadConverter(PydanticJSONPlainPayloadConverter):
    """`json/plain` as the SDK's pydantic converter writes and reads it, with shared adapters."""

    def __init__(self) -> None:
        # The SDK's own per-instance cache is never consulted: hold nothing in it.
        super().__init__(max_cached_type_adapters=0)

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        return type_adapter(type_hint if type_hint is not None else Any).validate_json(payload.data)


class SharedAdapterPayloadConverter(CompositePayloadConverter):
    """The SDK's `PydanticPayloadConverter` with the JSON converter above in its place.

    Nullary, as Temporal requires: the worker instantiates it for each workflow run.
    """

    def __init__(self) -> None:
        super().__init__(
            *(
                SharedAdapterJSONPayloadConverter()
                if isinstance(converter, JSONPlainPayloadConverter)
                else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )
