"""`make pay`: the buyer's side of checkout, played against localstripe.

    python -m devstack.pay pi_... [--card pm_card_visa | pm_card_chargeCustomerFail]

What a browser would do with the client secret: attach a test card to the PaymentIntent,
then confirm it. localstripe then sends `payment_intent.succeeded` (or `.payment_failed`)
to the webhook that `make dev` registered, about a second later.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import httpx
import stripe

from infra.settings import Settings
from infra.stripe_api import connect_stripe

VISA = "pm_card_visa"
DECLINED = "pm_card_chargeCustomerFail"
THREE_D_SECURE_CARD = "4000002500003155"  # asks for 3-D Secure on every payment


def localstripe_url() -> str:
    port = os.environ.get("DEV_LOCALSTRIPE_PORT", "8420")
    return os.environ.get("STRIPE_API_BASE") or f"http://localhost:{port}"


async def attempt_payment(
    client: stripe.StripeClient, payment_intent_id: str, card: str = VISA
) -> tuple[str, str | None]:
    """Attaches `card` and confirms, as the buyer's browser would.

    Returns the intent's status afterwards and, when the card was declined, why.
    """
    intents = client.v1.payment_intents
    # localstripe refuses `confirm(payment_method=...)`: the card is attached first.
    await intents.update_async(payment_intent_id, params={"payment_method": card})
    try:
        intent = await intents.confirm_async(payment_intent_id)
    except stripe.CardError as declined:
        intent = await intents.retrieve_async(payment_intent_id)
        return intent.status, declined.code or str(declined)
    return intent.status, None


async def fail_3d_secure(client: stripe.StripeClient, api_base: str, payment_intent_id: str) -> str:
    """The buyer fails 3-D Secure: the attempt fails and the intent can be paid again.

    A failed attempt of which localstripe sends no event (Stripe sends
    `payment_intent.payment_failed`): the tests sign that event themselves. Returns the
    intent's status after.
    """
    intents = client.v1.payment_intents
    card = await client.v1.payment_methods.create_async(
        params={
            "type": "card",
            "card": {
                "number": THREE_D_SECURE_CARD,
                "exp_month": 12,
                "exp_year": 2034,
                "cvc": "123",
            },
        }
    )
    await intents.update_async(payment_intent_id, params={"payment_method": card.id})
    intent = await intents.confirm_async(payment_intent_id)
    # localstripe's stand-in for the bank's 3-D Secure page, answered "failed".
    async with httpx.AsyncClient(base_url=api_base) as http:
        answer = await http.post(
            f"/v1/payment_intents/{payment_intent_id}/_authenticate",
            data={"client_secret": intent.client_secret, "success": "false", "key": "pk_test_dev"},
        )
        answer.raise_for_status()
    return (await intents.retrieve_async(payment_intent_id)).status


async def pay(payment_intent_id: str, card: str, api_base: str) -> str:
    """Attaches `card` and confirms; returns what happened, in one line."""
    # Any sk_test_ key is taken by localstripe; a real one must never be used from here.
    settings = Settings(
        stripe_api_base=api_base,
        stripe_secret_key=Settings.model_fields["stripe_secret_key"].default,
    )
    connection = connect_stripe(settings)
    try:
        status, declined = await attempt_payment(connection.client, payment_intent_id, card)
    finally:
        await connection.aclose()
    return f"{payment_intent_id}: {status}" + (f" (declined: {declined})" if declined else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.pay",
        description="Pay a PaymentIntent at localstripe with a test card, as the buyer would.",
    )
    parser.add_argument("payment_intent", metavar="PI", help="the PaymentIntent id (pi_...)")
    parser.add_argument(
        "--card",
        default=VISA,
        help=f"a test PaymentMethod: {VISA} (default) pays, {DECLINED} is declined",
    )
    args = parser.parse_args(argv)
    if not args.payment_intent.startswith("pi_"):
        parser.error("PI must be a PaymentIntent id, e.g. `make pay PI=pi_...`")
    api_base = localstripe_url()
    try:
        print(asyncio.run(pay(args.payment_intent, args.card, api_base)))
    except stripe.StripeError as refused:
        print(
            f"localstripe at {api_base} refused: {refused.user_message or refused}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
