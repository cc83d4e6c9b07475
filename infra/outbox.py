"""The `notifications` table as a queue: claimed by dispatchers, read by operators.

A claim is one UPDATE: it takes the due rows no other dispatcher holds (`SKIP LOCKED`), counts
the attempt and pushes `next_attempt_at` past the end of the send (the lease), then commits.
The SMTP conversations run outside any transaction; a dispatcher that dies during them leaves
the rows to be claimed again when the lease ends. `attempts` is the claim's fencing token: a
failure or a release is recorded only while the row still carries the attempt that produced
it. A pass's sent mails are marked in one statement; failures are rare and written per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.announcements import MailKind, MailStatus
from infra.tables import Notification

# The column's size: an SMTP server's answer can be longer.
LAST_ERROR_LENGTH = 1000

_CLAIM = text(
    """
    WITH due AS (
        SELECT id FROM notifications
        WHERE status = 'pending' AND next_attempt_at <= now()
        ORDER BY next_attempt_at, id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE notifications AS n
    SET attempts = n.attempts + 1,
        next_attempt_at = now() + make_interval(secs => :lease_seconds),
        updated_at = now()
    FROM due
    WHERE n.id = due.id
    RETURNING n.id, n.kind, n.message_id, n.recipient_email, n.bid_id, n.artwork_id,
              n.context, n.attempts, n.created_at, now() AS claimed_at
    """
)

# Not fenced by the attempt: a mail the server accepted is sent, whoever holds the row now.
_MARK_SENT = text(
    """
    UPDATE notifications
    SET status = 'sent', sent_at = now(), updated_at = now()
    WHERE id = ANY(:ids) AND status = 'pending'
    """
)

# Only the holder of this attempt may write its outcome: once a lease ran out and another
# dispatcher claimed the row, the late answer of the first one changes nothing.
_RECORD_FAILURE = text(
    """
    UPDATE notifications
    SET status = :status, last_error = :last_error,
        next_attempt_at = COALESCE(:next_attempt_at, next_attempt_at), updated_at = now()
    WHERE id = :id AND attempts = :attempts AND status = 'pending'
    """
)


# A claim whose send never started gives back the attempt it counted, and the row is due
# again at once. Written while the lease still runs, so no other claim has this attempt.
_RELEASE = text(
    """
    UPDATE notifications AS n
    SET attempts = n.attempts - 1, next_attempt_at = now(), updated_at = now()
    FROM unnest(CAST(:ids AS bigint[]), CAST(:attempts AS integer[])) AS claim(id, attempts)
    WHERE n.id = claim.id AND n.attempts = claim.attempts AND n.status = 'pending'
    """
)


@dataclass(frozen=True)
class ClaimedMail:
    id: int
    kind: MailKind
    message_id: str
    recipient_email: str
    bid_id: int
    artwork_id: int
    context: dict[str, Any]
    attempts: int  # this one included
    queued_at: datetime
    claimed_at: datetime  # the database's clock, like every other time on the row


async def claim_due(session: AsyncSession, *, limit: int, lease: timedelta) -> list[ClaimedMail]:
    """Claims up to `limit` due mails and commits the claim before returning."""
    params = {"limit": limit, "lease_seconds": lease.total_seconds()}
    async with session.begin():
        rows = (await session.exec(_CLAIM, params=params)).all()  # type: ignore[call-overload]
    return [
        ClaimedMail(
            id=row.id,
            kind=MailKind(row.kind),
            message_id=row.message_id,
            recipient_email=row.recipient_email,
            bid_id=row.bid_id,
            artwork_id=row.artwork_id,
            context=dict(row.context),
            attempts=row.attempts,
            queued_at=row.created_at,
            claimed_at=row.claimed_at,
        )
        for row in rows
    ]


async def mark_sent(session: AsyncSession, mail_ids: Sequence[int]) -> None:
    """Marks the mails the server accepted as sent, in one statement."""
    async with session.begin():
        await session.exec(_MARK_SENT, params={"ids": list(mail_ids)})  # type: ignore[call-overload]


async def release(session: AsyncSession, mails: Sequence[ClaimedMail]) -> int:
    """Gives back claims whose mails were never handed to the server: due again at once,
    their attempt not counted. Returns how many rows were still these claims' to give back."""
    params = {"ids": [mail.id for mail in mails], "attempts": [mail.attempts for mail in mails]}
    async with session.begin():
        result = await session.exec(_RELEASE, params=params)  # type: ignore[call-overload]
    return int(result.rowcount)


async def record_failure(
    session: AsyncSession,
    mail: ClaimedMail,
    error: str,
    *,
    retry_at: datetime | None,
) -> bool:
    """Schedules the next attempt at `retry_at`, or gives the mail up (None).

    Returns whether the row was still this attempt's to write.
    """
    params = {
        "id": mail.id,
        "attempts": mail.attempts,
        "status": (MailStatus.PENDING if retry_at is not None else MailStatus.FAILED).value,
        "last_error": error[:LAST_ERROR_LENGTH],
        "next_attempt_at": retry_at,
    }
    async with session.begin():
        result = await session.exec(_RECORD_FAILURE, params=params)  # type: ignore[call-overload]
    return bool(result.rowcount)


async def list_notifications(
    session: AsyncSession,
    *,
    status: MailStatus | None = None,
    bid_id: int | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Sequence[Notification]:
    """Newest first; `before_id` continues after the last row of the previous page."""
    query = select(Notification).order_by(col(Notification.id).desc()).limit(limit)
    if status is not None:
        query = query.where(Notification.status == status.value)
    if bid_id is not None:
        query = query.where(Notification.bid_id == bid_id)
    if before_id is not None:
        query = query.where(col(Notification.id) < before_id)
    return (await session.exec(query)).all()
