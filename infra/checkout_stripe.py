"""The buyer's side of a checkout at Stripe, for the checkout page: a SetupIntent that collects
the card in the browser, then that card set on the saga's PaymentIntent and confirmed.

The saga never hears from here: it still decides on Stripe's webhook and its own look at the
intent. These calls only start what the buyer asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import stripe
from stripe.params import SetupIntentCreateParams


class CardDeclined(Exception):
    """Stripe refused the card (a `CardError`): `reason` is its decline code or message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PaymentRefused(Exception):
    """Stripe refused the request for this intent or method (a 4xx that is not a decline)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PaymentAttempt:
    status: str
    # For `requires_action`: what Stripe.js needs to finish 3-D Secure in the page.
    client_secret: str | None


async def open_setup_intent(client: stripe.StripeClient, *, bid_id: int, buyer_id: int) -> str:
    """A SetupIntent for one card, confirmed in the browser; returns its client secret.

    On-session: the card is used at once, by the buyer, for this checkout only. (localstripe
    and Stripe both take cards by default: `payment_method_types` is left to them.)
    """
    params: SetupIntentCreateParams = {
        "usage": "on_session",
        "metadata": {"bid_id": str(bid_id), "buyer_id": str(buyer_id)},
    }
    setup = await client.v1.setup_intents.create_async(params=params)
    assert setup.client_secret is not None
    return setup.client_secret


async def pay_with_method(
    client: stripe.StripeClient, payment_intent_id: str, payment_method: str, key_prefix: str
) -> PaymentAttempt:
    """Sets `payment_method` on the intent, then confirms it (`confirm` with a method is not
    implemented by localstripe; the two steps are equally valid at Stripe).

    Both calls carry an idempotency key derived from the intent and the method, so a page that
    posts the same card twice starts one attempt.
    """
    intents = client.v1.payment_intents
    key = f"{key_prefix}{payment_intent_id}-{payment_method}"
    try:
        await intents.update_async(
            payment_intent_id,
            params={"payment_method": payment_method},
            options={"idempotency_key": f"{key}-set"},
        )
        intent = await intents.confirm_async(
            payment_intent_id, options={"idempotency_key": f"{key}-confirm"}
        )
    except stripe.CardError as declined:
        raise CardDeclined(_reason(declined)) from declined
    except stripe.InvalidRequestError as refused:
        raise PaymentRefused(_reason(refused)) from refused
    secret = intent.client_secret if intent.status == "requires_action" else None
    return PaymentAttempt(status=intent.status, client_secret=secret)


def _reason(error: stripe.StripeError) -> str:
    """What the buyer may read: Stripe's message for people, else its code."""
    message = error.user_message or getattr(error, "code", None) or "refused by the card issuer"
    return str(message)[:300]
