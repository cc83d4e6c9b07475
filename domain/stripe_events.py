"""A verified Stripe event, as a plain mapping, into the one thing the saga needs to know.

Pure: signature checks happen before this; Temporal signalling happens after.
"""

# No `from __future__ import annotations` here: `PaymentEvent` travels inside other workflow
# payloads, and the converter must read its field types without resolving names in a module
# namespace that Temporal's workflow sandbox may not hold.
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class PaymentEventKind(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


EVENT_KINDS: dict[str, PaymentEventKind] = {
    "payment_intent.succeeded": PaymentEventKind.SUCCEEDED,
    "payment_intent.payment_failed": PaymentEventKind.FAILED,
    "payment_intent.canceled": PaymentEventKind.CANCELED,
}


class MalformedEvent(ValueError):
    """A signed event of a type we handle, but without the fields that type always has."""


@dataclass(frozen=True)
class PaymentEvent:
    event_id: str
    kind: PaymentEventKind
    payment_intent_id: str
    created: int
    charge_id: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    workflow_id: str | None = None
    bid_id: int | None = None

    @property
    def failure_reason(self) -> str | None:
        parts = [part for part in (self.failure_code, self.failure_message) if part]
        return ": ".join(parts) or None


def parse_payment_event(event: Mapping[str, Any]) -> PaymentEvent | None:
    """The saga's view of `event`, or None for events the saga does not act on."""
    kind = EVENT_KINDS.get(str(event.get("type", "")))
    if kind is None:
        return None
    intent = _mapping(_mapping(event.get("data")).get("object"))
    event_id, intent_id = event.get("id"), intent.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedEvent("event has no id")
    if not isinstance(intent_id, str) or not intent_id.startswith("pi_"):
        raise MalformedEvent(f"event {event_id} carries no PaymentIntent")
    created = event.get("created")
    metadata = _mapping(intent.get("metadata"))
    error = _mapping(intent.get("last_payment_error"))
    return PaymentEvent(
        event_id=event_id,
        kind=kind,
        payment_intent_id=intent_id,
        created=created if isinstance(created, int) else 0,
        charge_id=charge_id_of(intent) if kind is PaymentEventKind.SUCCEEDED else None,
        failure_code=_text(error.get("decline_code")) or _text(error.get("code")),
        failure_message=_text(error.get("message")),
        workflow_id=_text(metadata.get("workflow_id")),
        bid_id=_integer(metadata.get("bid_id")),
    )


def charge_id_of(intent: Mapping[str, Any]) -> str | None:
    """The charge of a PaymentIntent, whether `latest_charge` is an id or expanded."""
    latest = intent.get("latest_charge")
    if isinstance(latest, str):
        return latest
    if isinstance(latest, Mapping) and isinstance(latest.get("id"), str):
        return str(latest["id"])
    return None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _integer(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None
