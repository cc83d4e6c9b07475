"""The audit after a load run: the database against Stripe and Temporal, checkout by checkout,
and each checkout's outcome against what its scenario asked for.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import stripe
from sqlalchemy import func
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from devstack.verdict import Verdict, judge_checkouts
from infra.db import SessionFactory
from infra.tables import Artwork, Bid, Notification
from loadtest.scenarios import EXPECTED, Checkout, Scenario
from workflows.types import saga_workflow_id

# The sagas still running; a reconciliation the schedule started meanwhile is not one.
RUNNING_SAGAS = 'WorkflowType="PaymentSagaWorkflow" AND ExecutionStatus="Running"'


@dataclass
class AuditReport:
    # scenario -> outcome (sold, reopened, undecided, broken, or "not opened") -> count
    counts: dict[Scenario, Counter[str]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    emails_queued: int = 0  # by the run's checkouts; each must reach the SMTP server once

    @property
    def passed(self) -> bool:
        return not self.violations


async def audit(
    checkouts: list[Checkout],
    *,
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
    temporal: Client,
    delivered_mail: Callable[[], list[str]] | None = None,
) -> AuditReport:
    report = AuditReport(counts={scenario: Counter() for scenario in Scenario})
    opened = [c for c in checkouts if c.opened is not None]
    verdicts = await judge_checkouts(
        [c.opened.bid_id for c in opened if c.opened],
        sessions=sessions,
        stripe_client=stripe_client,
        temporal=temporal,
    )
    for checkout in checkouts:
        if checkout.opened is None:
            report.counts[checkout.scenario]["not opened"] += 1
            report.violations.append(f"#{checkout.index} {checkout.scenario}: {checkout.error}")
            continue
        verdict = verdicts[checkout.opened.bid_id]
        report.counts[checkout.scenario][verdict.outcome.value] += 1
        report.violations += [
            f"#{checkout.index} {checkout.scenario}, {problem}"
            for problem in _problems(checkout, verdict)
        ]
    for checkout in opened:
        if checkout.scenario is Scenario.DUPLICATE_DELIVERIES and checkout.opened:
            sales = await _sales_recorded(temporal, checkout.opened.bid_id)
            if sales != 1:
                report.violations.append(
                    f"#{checkout.index} {checkout.scenario}: the sale was recorded {sales} times"
                )
    report.violations += await _leftovers(sessions, temporal, verdicts)
    if delivered_mail is not None:
        problems, report.emails_queued = await _mail_problems(
            sessions, list(verdicts), delivered_mail
        )
        report.violations += problems
    return report


def _problems(checkout: Checkout, verdict: Verdict) -> list[str]:
    problems = []
    if checkout.error:
        problems.append(f"the run failed: {checkout.error}")
    refused = [code for code in checkout.deliveries if not 200 <= code < 300]
    if refused:
        problems.append(f"webhook deliveries answered {refused}")
    outcome, payment_status = EXPECTED[checkout.scenario]
    rows = verdict.rows
    if not verdict.ok:
        problems.append(str(verdict))
    elif verdict.outcome is not outcome or rows is None or rows.payment_status != payment_status:
        status = rows.payment_status if rows else None
        problems.append(f"asked for {outcome} with payment {payment_status}, got {verdict}")
        problems[-1] += f" (payment {status})"
    if checkout.scenario is Scenario.DECLINED_THEN_PAID:
        reason = (rows.failure_reason if rows else None) or ""
        if "authentication" not in reason:
            problems.append(f"the declined attempt was not recorded (failure_reason {reason!r})")
    return problems


async def _sales_recorded(temporal: Client, bid_id: int) -> int:
    handle = temporal.get_workflow_handle(saga_workflow_id(bid_id))
    scheduled = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    return sum(
        [
            event.event_type == scheduled
            and event.activity_task_scheduled_event_attributes.activity_type.name == "complete_sale"
            async for event in handle.fetch_history_events()
        ]
    )


async def _leftovers(
    sessions: SessionFactory, temporal: Client, verdicts: dict[int, Verdict]
) -> list[str]:
    """Anything of this run still in between, read again now that the audit is done."""
    artwork_ids = [v.rows.artwork_id for v in verdicts.values() if v.rows is not None]
    pending_artworks = select(func.count()).where(
        col(Artwork.id).in_(artwork_ids), Artwork.status == "pending_payment"
    )
    won_bids = select(func.count()).where(col(Bid.id).in_(list(verdicts)), Bid.status == "won")
    async with sessions() as session:
        pending = (await session.exec(pending_artworks)).one()
        won = (await session.exec(won_bids)).one()
    found = []
    if pending:
        found.append(f"{pending} artworks still pending_payment")
    if won:
        found.append(f"{won} bids still won (neither paid nor unpaid)")
    # The stack's Temporal serves this run alone: any saga still running is one of ours.
    running = (await temporal.count_workflows(RUNNING_SAGAS)).count
    if running:
        found.append(f"{running} sagas still running in Temporal")
    return found


# Every email of the run leaves the queue within a few dispatcher polls once the sink is up.
MAIL_DRAIN_SECONDS = 60.0


async def _mail_problems(
    sessions: SessionFactory, bid_ids: list[int], delivered: Callable[[], list[str]]
) -> tuple[list[str], int]:
    """Each email the run queued reached the SMTP server exactly once, and nothing else did."""
    query = select(Notification.message_id, Notification.status).where(
        col(Notification.bid_id).in_(bid_ids)
    )
    deadline = time.monotonic() + MAIL_DRAIN_SECONDS
    while True:
        async with sessions() as session:
            rows = dict((await session.exec(query)).all())
        if "pending" not in rows.values() or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    found = [
        f"email {message_id} is {status}" for message_id, status in rows.items() if status != "sent"
    ]
    received = Counter(delivered())
    for message_id in rows:
        if received[message_id] != 1:
            found.append(f"email {message_id} reached the SMTP server {received[message_id]} times")
    if stray := set(received) - set(rows):
        found.append(f"{len(stray)} emails received that no checkout queued")
    return found, len(rows)
