"""The buyer's side at Stripe (localstripe): pay, or fail to, with a test card."""

from __future__ import annotations

import contextlib

import stripe

VISA = "pm_card_visa"
DECLINED = "pm_card_chargeCustomerFail"


async def pay(client: stripe.StripeClient, payment_intent_id: str, card: str = VISA) -> str:
    """Attaches `card` and confirms; returns the intent's status afterwards."""
    intents = client.v1.payment_intents
    await intents.update_async(payment_intent_id, params={"payment_method": card})
    # A decline raises; the intent goes back to requires_payment_method.
    with contextlib.suppress(stripe.CardError):
        await intents.confirm_async(payment_intent_id)
    return (await intents.retrieve_async(payment_intent_id)).status
