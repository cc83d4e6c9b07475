"""The project's Stripe emulator: localstripe, with one gap closed. `make dev`, the tests and
the fault cluster all start this one (`devstack.processes.start_localstripe`):

    python -m devstack.localstripe_server --port 8420 --from-scratch

It takes localstripe's own arguments and runs localstripe's own server.

The Stripe behaviour it restores: a PaymentIntent whose charge was declined goes back to
`requires_payment_method`, and the buyer may try another card on the same intent: set the new
`payment_method` (the intent becomes `requires_confirmation`), confirm, and a new charge is
made. localstripe derives an intent's status from its latest charge, so once a charge failed
the status stays `requires_payment_method` whatever method is set, and the second `confirm`
is a 400 "Bad request": a buyer could never retry after a decline, which is exactly what the
checkout page offers. Here, setting a `payment_method` on an intent whose latest charge failed
lets go of that charge, so the intent reads `requires_confirmation` and the next confirm
charges the new card. Until that confirm, the intent shows no `latest_charge` and no
`last_payment_error` (Stripe may still show the failed attempt); the decline itself was
already announced with them in its `payment_intent.payment_failed` event, built when it
happened.

It also keeps its store in memory only. localstripe pickles its whole store to
`/tmp/localstripe.pickle` on every write, so that a restart without `--from-scratch` finds it
again. Every localstripe here starts `--from-scratch` (the file is shared by all of them on
the machine), so the file was never read, and writing it made each write cost as much as the
store is large: in `make bench`, localstripe went from a few to tens of milliseconds per
checkout as it filled, and checkouts were opened a third as fast at 10,000 as at the start.

Why this is not a fake of our code: it changes one method of localstripe's PaymentIntent, on
Stripe's side of the API, and only on a path that stock localstripe refuses. Our code calls
the same Stripe API it calls on Stripe, through the official SDK; nothing here knows of the
saga, the API or their data. `tests/devstack/test_localstripe_server.py` plays the sequence
through the stripe SDK, so a localstripe release that fixes or changes this is noticed.
"""

from __future__ import annotations

import sys
from typing import Any

from localstripe.resources import PaymentIntent, Store
from localstripe.server import start

_localstripe_update = PaymentIntent._update


def _update_taking_another_card(self: Any, **data: Any) -> None:
    charge = self.latest_charge
    _localstripe_update(self, **data)
    if "payment_method" in data and charge is not None and charge.status == "failed":
        self.latest_charge = None


PaymentIntent._update = _update_taking_another_card


def _kept_in_memory(self: Any) -> None:
    return None


Store.dump_to_disk = _kept_in_memory


if __name__ == "__main__":
    sys.exit(start())
