"""Stripe events as Stripe would send them: built from the intent's real state, signed alike."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import stripe

from domain.stripe_events import PaymentEvent, parse_payment_event


async def event_body(
    client: stripe.StripeClient,
    payment_intent_id: str,
    event_type: str,
    event_id: str | None = None,
) -> dict[str, Any]:
    intent = await client.v1.payment_intents.retrieve_async(
        payment_intent_id, params={"expand": ["latest_charge"]}
    )
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": intent.to_dict()},
    }


async def payment_event(
    client: stripe.StripeClient,
    payment_intent_id: str,
    event_type: str,
    event_id: str | None = None,
) -> PaymentEvent:
    parsed = parse_payment_event(await event_body(client, payment_intent_id, event_type, event_id))
    assert parsed is not None
    return parsed


def signed(body: dict[str, Any], secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """The raw bytes and the `Stripe-Signature` header Stripe would send for `body`."""
    payload = json.dumps(body).encode()
    at = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={at},v1={signature}"
