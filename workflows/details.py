"""The checkout as the Temporal Web UI shows it (the workflow's current details)."""

from __future__ import annotations

from workflows.types import CheckoutStatus

# The details stay short enough to read: the latest extensions, and how many came before.
SHOWN_EXTENSIONS = 5


def render_details(status: CheckoutStatus) -> str:
    lines = [f"**{status.phase.value}**: bid {status.bid_id} on artwork {status.artwork_id}"]
    if status.amount is not None:
        lines.append(f"amount {status.amount} {status.currency.upper()}")
    if status.payment_intent_id:
        lines.append(f"PaymentIntent `{status.payment_intent_id}`")
    if status.expires_at and not status.phase.is_final:
        lines.append(f"deadline {status.expires_at.isoformat()}")
    if status.extensions and status.original_expires_at:
        lines.append(f"original deadline {status.original_expires_at.isoformat()}")
    earlier = len(status.extensions) - SHOWN_EXTENSIONS
    if earlier > 0:
        lines.append(f"{earlier} earlier extensions (the `status` query lists them all)")
    for granted in status.extensions[-SHOWN_EXTENSIONS:]:
        lines.append(
            f"deadline extended by {granted.minutes} min to {granted.expires_at.isoformat()}"
            f" by {granted.requested_by} at {granted.requested_at.isoformat()}: {granted.reason}"
        )
    if status.window_closed:
        lines.append(f"buyer's window closed: {status.window_closed.value}")
    if status.failure_reason:
        lines.append(f"last decline: {status.failure_reason} ({status.attempts} attempts)")
    if status.rejection_reason:
        lines.append(f"not reserved: {status.rejection_reason}")
    if status.cancel_request is not None:
        request = status.cancel_request
        lines.append(f"cancel requested by {request.requested_by}: {request.reason}")
    if status.processing_since:
        lines.append(f"Stripe processing since {status.processing_since.isoformat()}")
    if status.attention:
        lines.append(f"⚠ {status.attention}")
    if status.error:
        lines.append(f"failed: {status.error}")
    if status.compensation:
        lines.append(f"compensated: {status.compensation}")
    return "\n\n".join(lines)
