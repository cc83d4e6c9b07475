"""The webhook endpoint against the bare one: the same deliveries, to checkouts waiting for
their buyer, each event posted several times as Stripe's retries and duplicates do.

Both endpoints signal sagas among the checkouts left waiting: as many hear of their decline
through the service's endpoint as through the bare one, which signals the saga its intent's
metadata names. Each event is new to its checkout once (the saga records the decline and
mails the buyer) and a duplicate after, behind either endpoint alike: what differs is the
endpoint alone. Then the duplicates of sold checkouts' success events, which the service
answers as finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.driver import run_many
from bench.phases import FAILED, Bench, Measured
from devstack.stripe_events import deliver, event_body


@dataclass
class WebhookMeasures:
    service: Measured
    bare: Measured
    finished: Measured | None


def _spread(events: list[dict[str, Any]], copies: int) -> list[dict[str, Any]]:
    """Every event `copies` times, the copies of one event far apart."""
    return [event for _ in range(copies) for event in events]


async def webhooks(bench: Bench, checkouts: int, copies: int, concurrency: int) -> WebhookMeasures:
    """`checkouts` waiting checkouts hear of their decline through each endpoint."""
    each = min(checkouts, len(bench.waiting) // 2)
    declines = [
        await event_body(bench.stripe, checkout.payment_intent_id, FAILED)
        for checkout in bench.waiting[: 2 * each]
    ]
    ours, theirs = _spread(declines[:each], copies), _spread(declines[each:], copies)

    async def to_service(index: int) -> None:
        response = await deliver(bench.api.http, ours[index], bench.secret)
        if response.status_code != 200 or not response.json().get("handled"):
            raise RuntimeError(f"HTTP {response.status_code} {response.text[:200]}")

    async def to_bare(index: int) -> None:
        response = await deliver(bench.bare, theirs[index], bench.secret, "/webhook")
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code} {response.text[:200]}")

    service = await bench.measure(
        run_many("webhook → waiting checkout", len(ours), concurrency, to_service)
    )
    bare = await bench.measure(
        run_many("bare endpoint → waiting checkout", len(theirs), concurrency, to_bare)
    )
    finished = None
    sold = bench.sold_events[: len(ours)]
    if sold:

        async def to_finished(index: int) -> None:
            response = await deliver(bench.api.http, sold[index], bench.secret)
            if response.status_code != 200 or response.json().get("handled"):
                raise RuntimeError(f"HTTP {response.status_code} {response.text[:200]}")

        finished = await bench.measure(
            run_many("webhook → finished checkout", len(sold), concurrency, to_finished)
        )
    return WebhookMeasures(service, bare, finished)
