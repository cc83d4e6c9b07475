"""What went wrong when a checkout cannot go on: for operators, and for the payment's record."""

from __future__ import annotations

from collections.abc import Mapping

from temporalio.exceptions import ActivityError, ApplicationError

PAYMENT_MISMATCH = "PaymentMismatch"
CHECKOUT_FAILED = "CheckoutFailed"


class CheckoutFailure(Exception):
    """An error no retry fixes. `detail` is for operators (the failed run, the logs);
    `reason` is short and carries no third party's text, for the payment's record."""

    def __init__(self, kind: str, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.reason = kind, detail, reason


def failure_of(error: BaseException) -> CheckoutFailure:
    if isinstance(error, CheckoutFailure):
        return error
    cause = error.cause if isinstance(error, ActivityError) else None
    step = error.activity_type if isinstance(error, ActivityError) else "checkout"
    if not isinstance(cause, ApplicationError):
        return CheckoutFailure(CHECKOUT_FAILED, f"{step}: {error}", f"{step} failed")
    kind = cause.type or CHECKOUT_FAILED
    details = cause.details[0] if cause.details else None
    code = details.get("code") if isinstance(details, Mapping) else None
    reason = f"{step}: {kind}" + (f" ({code})" if code else "")
    return CheckoutFailure(kind, f"{step}: {cause.message}", reason)
