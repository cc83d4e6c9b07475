"""Stripe events as Stripe would send them: built from the intent's real state, signed alike."""

from __future__ import annotations

import stripe

from devstack.stripe_events import event_body, signed
from domain.stripe_events import PaymentEvent, parse_payment_event

__all__ = ["event_body", "payment_event", "signed"]


async def payment_event(
    client: stripe.StripeClient,
    payment_intent_id: str,
    event_type: str,
    event_id: str | None = None,
) -> PaymentEvent:
    parsed = parse_payment_event(await event_body(client, payment_intent_id, event_type, event_id))
    assert parsed is not None
    return parsed
