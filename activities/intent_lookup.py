"""Finding the PaymentIntent an idempotency key made, when Stripe will not say it again.

Stripe answers a reused key with different parameters by an `idempotency_error`, not the
intent: the intent is found through the key we wrote into its metadata.
"""

from __future__ import annotations

import stripe

# How far back the listing fallback looks, newest first on Stripe.
LISTED_INTENTS = 1000
PAGE = 100


async def find_intent_by_idempotency_key(
    intents: stripe.PaymentIntentService, key: str
) -> stripe.PaymentIntent | None:
    """Stripe's search by metadata. Where search is unavailable (some emulators, a search
    outage), the most recent intents are listed and filtered instead; where it answers, its
    answer stands, even empty (its index lags writes by up to a minute)."""
    try:
        found = await intents.search_async(
            params={"query": f"metadata['idempotency_key']:'{key}'", "limit": 10}
        )
    except stripe.InvalidRequestError:
        return await _listed(intents, key)
    return next((intent for intent in found.data if _made_by(intent, key)), None)


async def _listed(intents: stripe.PaymentIntentService, key: str) -> stripe.PaymentIntent | None:
    starting_after: str | None = None
    for _ in range(LISTED_INTENTS // PAGE):
        params: dict[str, object] = {"limit": PAGE}
        if starting_after is not None:
            params["starting_after"] = starting_after
        page = await intents.list_async(params=params)  # type: ignore[arg-type]
        for intent in page.data:
            if _made_by(intent, key):
                return intent
        if not page.has_more or not page.data:
            return None
        starting_after = page.data[-1].id
    return None


def _made_by(intent: stripe.PaymentIntent, key: str) -> bool:
    metadata = intent.to_dict().get("metadata") or {}
    return bool(metadata.get("idempotency_key") == key)
