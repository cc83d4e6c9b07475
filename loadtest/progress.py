"""The live line of a load run: how many checkouts are opened, driven, decided, failed."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

# In a terminal the line is rewritten in place; in a CI log, one line every few seconds.
TTY_INTERVAL = 0.5
LOG_INTERVAL = 5.0


@dataclass
class Progress:
    total: int
    started: float = field(default_factory=time.monotonic)
    driven: int = 0
    errors: int = 0
    decided: dict[str, int] = field(default_factory=dict)  # bid status -> count, from the DB
    _shown_at: float = 0.0

    def line(self) -> str:
        decided = self.decided
        waiting = decided.get("won", 0)
        return (
            f"driven {self.driven}/{self.total}  "
            f"sold {decided.get('paid', 0)}  reopened {decided.get('unpaid', 0)}  "
            f"waiting {waiting}  errors {self.errors}  "
            f"{time.monotonic() - self.started:6.1f} s"
        )

    def show(self, final: bool = False) -> None:
        now = time.monotonic()
        if sys.stdout.isatty():
            print(f"\r  {self.line()}   ", end="\n" if final else "", flush=True)
        elif final or now - self._shown_at >= LOG_INTERVAL:
            print(f"  {self.line()}", flush=True)
            self._shown_at = now

    async def keep_showing(self, refresh: Callable[[], Awaitable[dict[str, int]]]) -> None:
        """Refreshes the decided counts and redraws until cancelled."""
        while True:
            try:
                self.decided = await refresh()
            except Exception as failed:  # a database blip must not end the run's display
                print(f"\n  (progress: {failed})", flush=True)
            self.show()
            await asyncio.sleep(TTY_INTERVAL)
