"""Inputs and results of the reconciliation's activities."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.reconciliation import CheckoutRow, Finding, IntentSeen, SagaSeen


@dataclass(frozen=True)
class ListIntents:
    created_since: int  # seconds since the epoch
    max_intents: int


@dataclass(frozen=True)
class RecentIntents:
    intents: list[IntentSeen] = field(default_factory=list)  # this deployment's only
    listed: int = 0
    truncated: bool = False  # `max_intents` reached before the end of the window
    # False where Stripe's list refused the `created` filter (localstripe): filtered here.
    filtered_at_stripe: bool = True


@dataclass(frozen=True)
class ReadIntents:
    payment_intent_ids: list[str]


@dataclass(frozen=True)
class IntentsRead:
    intents: list[IntentSeen] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # Stripe does not know them


@dataclass(frozen=True)
class ReadCheckouts:
    bid_ids: list[int]
    # Also the undecided checkouts, at most this many (oldest bids first); 0: none.
    max_undecided: int = 0


@dataclass(frozen=True)
class CheckoutRows:
    rows: list[CheckoutRow] = field(default_factory=list)
    reserved_without_winner: list[int] = field(default_factory=list)  # artwork ids
    truncated: bool = False


@dataclass(frozen=True)
class DescribeSagas:
    bid_ids: list[int]


@dataclass(frozen=True)
class SagasSeen:
    sagas: list[SagaSeen] = field(default_factory=list)


@dataclass(frozen=True)
class RepairRequest:
    finding: Finding
    reconciliation_run: str  # the run id of the reconciliation asking
    orphan_grace_seconds: int


@dataclass(frozen=True)
class RepairOutcome:
    done: bool
    detail: str
