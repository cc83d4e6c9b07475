"""The requests Temporal's server handled during a phase, read from its Prometheus metrics
(`service_requests`, by operation): what the saga and its twin each ask of the server."""

from __future__ import annotations

import re
from collections.abc import Mapping

import httpx

_SAMPLE = re.compile(r"^service_requests\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$")
_OPERATION = re.compile(r'operation="(?P<operation>[^"]+)"')


def requests_by_operation(exposition: str) -> dict[str, float]:
    """`service_requests` summed per operation over the other labels (namespace, service)."""
    totals: dict[str, float] = {}
    for line in exposition.splitlines():
        sample = _SAMPLE.match(line)
        if sample is None:
            continue
        operation = _OPERATION.search(sample["labels"])
        if operation is not None:
            name = operation["operation"]
            totals[name] = totals.get(name, 0.0) + float(sample["value"])
    return totals


def handled_between(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, int]:
    """What was handled between two reads, per operation, biggest first."""
    handled = {name: round(after[name] - before.get(name, 0.0)) for name in after}
    return dict(sorted(((n, c) for n, c in handled.items() if c > 0), key=lambda kind: -kind[1]))


async def read_requests(metrics_url: str) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(metrics_url)
        response.raise_for_status()
    return requests_by_operation(response.text)
