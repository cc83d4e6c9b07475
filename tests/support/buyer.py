"""The buyer's side at Stripe (localstripe): pay, or fail to, with a test card."""

from __future__ import annotations

import stripe

from devstack.pay import DECLINED, VISA, attempt_payment

__all__ = ["DECLINED", "VISA", "pay"]


async def pay(client: stripe.StripeClient, payment_intent_id: str, card: str = VISA) -> str:
    """Attaches `card` and confirms; returns the intent's status afterwards."""
    status, _ = await attempt_payment(client, payment_intent_id, card)
    return status
