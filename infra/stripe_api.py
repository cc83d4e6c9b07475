"""The Stripe client: real Stripe unless STRIPE_API_BASE points at an emulator."""

from __future__ import annotations

from dataclasses import dataclass

import stripe
from stripe._base_address import BaseAddresses

from infra.settings import Settings


@dataclass(frozen=True)
class StripeConnection:
    client: stripe.StripeClient
    http: stripe.HTTPXClient

    async def aclose(self) -> None:
        await self.http.close_async()  # type: ignore[no-untyped-call]


def connect_stripe(settings: Settings) -> StripeConnection:
    base_addresses: BaseAddresses = {}
    if settings.stripe_api_base:
        base_addresses["api"] = settings.stripe_api_base
    http = stripe.HTTPXClient(timeout=settings.stripe_timeout_seconds)
    # Temporal owns retries (with the same idempotency key), so the SDK makes one attempt.
    client = stripe.StripeClient(
        settings.stripe_secret_key,
        base_addresses=base_addresses,
        http_client=http,
        max_network_retries=0,
        stripe_version=settings.stripe_api_version,
    )
    return StripeConnection(client=client, http=http)
