"""When an operator may give the buyer more time, and the deadline that results.

Pure rules on the checkout's status, so the update's validator and its handler (which runs
after other messages may have moved the checkout on) judge a request the same way.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from workflows.types import CheckoutPhase, CheckoutStatus, DeadlineExtension, ExtendDeadline


def extension_refusal(
    status: CheckoutStatus, request: ExtendDeadline, max_minutes: int, now: datetime
) -> str | None:
    """Why this extension cannot be granted now, or None when it can."""
    if status.phase.is_final:
        return f"the checkout already ended: {status.phase.value}"
    if status.window_closed is not None:
        return (
            f"the buyer's window already closed ({status.window_closed.value}); "
            "the checkout is settling with Stripe"
        )
    if status.cancel_request is not None:
        return f"the checkout is being canceled by {status.cancel_request.requested_by}"
    if status.phase is not CheckoutPhase.AWAITING_PAYMENT or status.expires_at is None:
        return (
            f"the checkout is {status.phase.value}, not awaiting payment: only a deadline "
            "the buyer is paying against can move"
        )
    if now >= status.expires_at:
        return f"the payment deadline {status.expires_at.isoformat()} already passed"
    if request.minutes <= 0:
        return "minutes must be a positive number"
    if not request.reason.strip():
        return "a reason is required to extend a deadline"
    original = status.original_expires_at or status.expires_at
    already = (status.expires_at - original) // timedelta(minutes=1)
    # Compared in minutes before any date arithmetic: a huge request must not overflow.
    if request.minutes > max_minutes - already:
        return (
            f"a deadline may move at most {max_minutes} minutes past the original one "
            f"({original.isoformat()}); it already moved {already}, and {request.minutes} "
            "more would pass that"
        )
    return None


def extension(status: CheckoutStatus, request: ExtendDeadline, now: datetime) -> DeadlineExtension:
    """The extension as granted: counted from the current deadline, so extensions add up."""
    assert status.expires_at is not None
    return DeadlineExtension(
        minutes=request.minutes,
        reason=request.reason.strip(),
        requested_by=request.requested_by,
        requested_at=now,
        expires_at=status.expires_at + timedelta(minutes=request.minutes),
    )
