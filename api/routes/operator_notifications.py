"""Operators' view of the emails: what is still pending, what was given up, what went out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CallerDep, SessionDep
from api.errors import error_responses, forbidden
from api.schemas import BIGINT_MAX, NotificationPage, NotificationPublic
from domain.announcements import MailKind, MailStatus
from infra.outbox import list_notifications
from infra.tables import Notification

router = APIRouter(prefix="/api/operator", tags=["operator"])

MAX_PAGE = 200


@router.get(
    "/notifications",
    responses=error_responses(
        401, 403, 503, meaning={403: "Only operators can look at the notifications."}
    ),
)
async def operator_notifications(
    caller: CallerDep,
    session: SessionDep,
    status: Annotated[
        MailStatus | None, Query(description="Only the emails in this state.")
    ] = None,
    bid_id: Annotated[
        int | None, Query(ge=1, le=BIGINT_MAX, description="Only the emails about this bid.")
    ] = None,
    before_id: Annotated[
        int | None,
        Query(ge=1, le=BIGINT_MAX, description="The `next_before_id` of the previous page."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Emails per page.")] = 50,
) -> NotificationPage:
    """The queued emails, newest first: `status=failed` lists those given up after
    MAIL_RETRY_HOURS or refused for good, with the last error."""
    if not caller.is_operator:
        raise forbidden("only operators can look at the notifications")
    rows = await list_notifications(
        session, status=status, bid_id=bid_id, before_id=before_id, limit=limit + 1
    )
    page = [_view(row) for row in rows[:limit]]
    more = len(rows) > limit
    return NotificationPage(items=page, next_before_id=page[-1].id if more and page else None)


def _view(row: Notification) -> NotificationPublic:
    assert row.id is not None and row.created_at and row.updated_at
    pending = row.status == MailStatus.PENDING
    return NotificationPublic(
        id=row.id,
        kind=MailKind(row.kind),
        status=MailStatus(row.status),
        message_id=row.message_id,
        recipient_id=row.recipient_id,
        recipient_email=row.recipient_email,
        bid_id=row.bid_id,
        artwork_id=row.artwork_id,
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at if pending else None,
        sent_at=row.sent_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
