"""Operators find any checkout, give its buyer more time, or call it off.

Finding reads Temporal's visibility through the saga's search attributes; steering runs the
saga's own updates, whose validators have the last word (a refusal is a 409 in their words).
Every action names who asked (the operator's email) and why, in the saga's status, its
history and the Web UI's details.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Awaitable
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from temporalio.client import WorkflowExecution

from api.deps import BidId, OperatorDep, ServicesDep
from api.errors import conflict, error_responses, not_found, unprocessable
from api.sagas import CheckoutNotFound, CheckoutRefused, PageTokenRefused
from api.schemas import (
    BIGINT_MAX,
    CancelCheckoutRequest,
    CheckoutPage,
    CheckoutStatusPublic,
    CheckoutSummary,
    ExtendDeadlineRequest,
)
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.search_attributes import (
    AMOUNT_DUE,
    ARTWORK_ID,
    BUYER_ID,
    CHECKOUT_PHASE,
    CURRENCY,
    PAYMENT_DEADLINE,
    SELLER_ID,
)
from workflows.types import (
    WORKFLOW_ID_PREFIX,
    CancelCheckout,
    CheckoutPhase,
    CheckoutStatus,
    ExtendDeadline,
)

router = APIRouter(prefix="/api/operator/checkouts", tags=["operators"])

OPERATORS_ONLY = "Only operators can find and steer checkouts."
STEERING_ERRORS = error_responses(
    400,
    401,
    403,
    404,
    409,
    503,
    meaning={
        403: OPERATORS_ONLY,
        404: "No checkout was ever started for this bid.",
        409: "The checkout refused: `detail` gives the saga's reason (it ended, the buyer's "
        "window closed, it is not awaiting payment, the extension goes past the limit).",
    },
)
IdFilter = Annotated[int | None, Query(ge=1, le=BIGINT_MAX)]


@router.get("", responses=error_responses(401, 403, 503, meaning={403: OPERATORS_ONLY}))
async def list_checkouts(
    _: OperatorDep,
    services: ServicesDep,
    phase: Annotated[
        CheckoutPhase | None, Query(description="As the `status` query shows it.")
    ] = None,
    artwork_id: IdFilter = None,
    buyer_id: IdFilter = None,
    seller_id: IdFilter = None,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    next_page_token: Annotated[
        str | None, Query(max_length=4096, description="From the previous page's answer.")
    ] = None,
) -> CheckoutPage:
    """Checkouts, newest first, from Temporal's visibility: the filters all apply at once.

    Visibility follows each saga by a moment: a checkout that just moved may still show its
    previous phase. The saga's `status` query in Temporal has its exact state.
    """
    query = checkout_query(phase, artwork_id, buyer_id, seller_id)
    key = _page_key(services.settings.jwt_secret)
    token = None if next_page_token is None else _open(next_page_token, query, key)
    try:
        executions, following = await services.sagas.list_checkouts(query, page_size, token)
    except PageTokenRefused:
        raise _bad_token() from None
    return CheckoutPage(
        checkouts=[_summary(execution) for execution in executions],
        next_page_token=None if following is None else _seal(following, query, key),
    )


@router.post("/{bid_id}/extend", responses=STEERING_ERRORS)
async def extend_deadline(
    bid_id: BidId, body: ExtendDeadlineRequest, operator: OperatorDep, services: ServicesDep
) -> CheckoutStatusPublic:
    """Gives the buyer `minutes` more to pay: the saga's `extend_deadline` update.

    The answer comes once the saga runs to the new deadline and the payment records it.
    """
    request = ExtendDeadline(minutes=body.minutes, reason=body.reason, requested_by=operator.email)
    return await _steered(services.sagas.extend_deadline(bid_id, request))


@router.post("/{bid_id}/cancel", responses=STEERING_ERRORS)
async def cancel_checkout(
    bid_id: BidId, body: CancelCheckoutRequest, operator: OperatorDep, services: ServicesDep
) -> CheckoutStatusPublic:
    """Calls the checkout off: the saga's `cancel_checkout` update. The artwork goes back on
    sale, but money that already landed still makes a sale (there are no refunds)."""
    request = CancelCheckout(reason=body.reason, requested_by=operator.email)
    return await _steered(services.sagas.cancel_checkout(bid_id, request))


def checkout_query(
    phase: CheckoutPhase | None,
    artwork_id: int | None,
    buyer_id: int | None,
    seller_id: int | None,
) -> str:
    """The visibility query of these filters; values are validated enums and ints only."""
    clauses = [f"WorkflowType = '{PaymentSagaWorkflow.__name__}'"]
    if phase is not None:
        clauses.append(f"{CHECKOUT_PHASE.name} = '{phase.value}'")
    for key, value in ((ARTWORK_ID, artwork_id), (BUYER_ID, buyer_id), (SELLER_ID, seller_id)):
        if value is not None:
            clauses.append(f"{key.name} = {int(value)}")
    return " AND ".join(clauses)


async def _steered(update: Awaitable[CheckoutStatus]) -> CheckoutStatusPublic:
    try:
        checkout = await update
    except CheckoutNotFound:
        raise not_found("checkout") from None
    except CheckoutRefused as refused:
        raise conflict(str(refused)) from None
    return CheckoutStatusPublic.model_validate(checkout)


def _summary(execution: WorkflowExecution) -> CheckoutSummary:
    indexed = execution.typed_search_attributes
    amount = indexed.get(AMOUNT_DUE)
    return CheckoutSummary(
        workflow_id=execution.id,
        bid_id=_bid_of(execution.id),
        run_status=execution.status.name.lower() if execution.status else None,
        phase=indexed.get(CHECKOUT_PHASE),
        artwork_id=indexed.get(ARTWORK_ID),
        buyer_id=indexed.get(BUYER_ID),
        seller_id=indexed.get(SELLER_ID),
        # Visibility keeps a double; its shortest repr is the decimal the saga indexed.
        amount_due=None if amount is None else Decimal(repr(amount)),
        currency=indexed.get(CURRENCY),
        payment_deadline=indexed.get(PAYMENT_DEADLINE),
        started_at=execution.start_time,
        closed_at=execution.close_time,
    )


def _bid_of(workflow_id: str) -> int | None:
    # Someone may start the saga by hand under another id (the UI's "Start Workflow Like
    # This One"): it is listed all the same.
    number = workflow_id.removeprefix(WORKFLOW_ID_PREFIX)
    return int(number) if number.isdecimal() and number.isascii() else None


# Page tokens are Temporal's, sealed to the query they page through: a token made up, altered
# or carried to other filters is a 422 here, never an error from Temporal.
_MAC_BYTES = 16


def _page_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"operator checkout page tokens", hashlib.sha256).digest()


def _mac(key: bytes, query: str, token: bytes) -> bytes:
    signed = query.encode() + b"\0" + token
    return hmac.new(key, signed, hashlib.sha256).digest()[:_MAC_BYTES]


def _seal(token: bytes, query: str, key: bytes) -> str:
    sealed = base64.urlsafe_b64encode(_mac(key, query, token) + token)
    return sealed.decode().rstrip("=")


def _open(sealed: str, query: str, key: bytes) -> bytes:
    try:
        raw = base64.b64decode(sealed + "=" * (-len(sealed) % 4), altchars=b"-_", validate=True)
    except ValueError:  # not base64, or not ASCII at all
        raise _bad_token() from None
    mac, token = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
    if not token or not hmac.compare_digest(mac, _mac(key, query, token)):
        raise _bad_token()
    return token


def _bad_token() -> HTTPException:
    return unprocessable(
        "next_page_token", "not a page token of this listing with these filters", where="query"
    )
