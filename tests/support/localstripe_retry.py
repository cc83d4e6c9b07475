"""localstripe with one of its gaps closed, for the checkout page's browser tests.

At Stripe, a PaymentIntent whose charge was declined goes back to `requires_payment_method`
and takes another card: set it, confirm again. localstripe keeps the failed charge as the
intent's latest, so its status stays `requires_payment_method` and the second confirm is a
400. Here, setting a new payment method on such an intent forgets the failed charge, as a new
attempt at Stripe does; nothing else changes. Run as a script, with localstripe's arguments.
"""

from __future__ import annotations

import sys
from typing import Any

from localstripe.resources import PaymentIntent
from localstripe.server import start

_update = PaymentIntent._update


def _update_as_stripe_does(self: Any, **data: Any) -> None:
    charge = self.latest_charge
    _update(self, **data)
    if "payment_method" in data and charge is not None and charge.status == "failed":
        self.latest_charge = None


PaymentIntent._update = _update_as_stripe_does

if __name__ == "__main__":
    sys.exit(start())
