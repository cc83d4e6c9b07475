"""Stripe's webhook events as Stripe sends them: built from the intent's real state at Stripe,
signed with the endpoint's secret, delivered as raw bytes.

localstripe delivers each event once and never retries; Stripe retries for days, and may send
an event twice, late or out of order. Tests and `make load` play that part with these.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import stripe

WEBHOOK_PATH = "/api/payments/webhook"


async def event_body(
    client: stripe.StripeClient,
    payment_intent_id: str,
    event_type: str,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An event of `event_type` carrying the intent as Stripe has it now."""
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


async def sent_event(
    client: stripe.StripeClient, payment_intent_id: str, event_type: str, since: int = 0
) -> dict[str, Any] | None:
    """The event localstripe itself sent about this intent (the one Stripe would retry).

    Events come oldest first and cannot be filtered by object, so the list is walked; `since`
    (a Unix time) leaves older events out, which keeps the walk short in a long run.
    """
    found: dict[str, Any] | None = None
    starting_after: str | None = None
    while True:
        params: dict[str, Any] = {"type": event_type, "limit": 100, "created": {"gte": since}}
        if starting_after:
            params["starting_after"] = starting_after
        page = await client.v1.events.list_async(params=params)  # type: ignore[arg-type]
        for event in page.data:
            body = event.to_dict()
            if body["data"]["object"].get("id") == payment_intent_id:
                found = body
        if not page.has_more or not page.data:
            return found
        starting_after = page.data[-1].id


def signed(body: dict[str, Any], secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """The raw bytes and the `Stripe-Signature` header Stripe would send for `body`."""
    payload = json.dumps(body).encode()
    at = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={at},v1={signature}"


async def deliver(
    http: httpx.AsyncClient, body: dict[str, Any], secret: str, path: str = WEBHOOK_PATH
) -> httpx.Response:
    """Posts `body`, freshly signed, to the API's webhook, as a (re)delivery by Stripe."""
    payload, header = signed(body, secret)
    return await http.post(
        path,
        content=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
