"""What a request handler can reach: built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

import stripe

from api.sagas import CheckoutSagas
from infra.announcer import Announcer
from infra.db import SessionFactory
from infra.payload_codec import EncryptionCodec
from infra.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    sessions: SessionFactory
    # For the one-statement lookups every request makes (who calls, which checkout a webhook
    # is for): see `infra.db.autocommit_session_factory`.
    autocommit_sessions: SessionFactory
    sagas: CheckoutSagas
    announcer: Announcer
    codec: EncryptionCodec
    # The checkout page's calls (a SetupIntent, a card set on the intent); the saga has its own.
    stripe: stripe.StripeClient
