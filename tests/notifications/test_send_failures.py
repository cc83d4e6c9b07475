"""What each way a send fails means for its mail: the `last_error` operators read, and whether
the mail is tried again."""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest

from notifications.smtp import send_failed
from tests.notifications.helpers import mail_settings

SETTINGS = mail_settings("postgresql://u:p@127.0.0.1:5432/unused", 2525, smtp_timeout_seconds=5)


def refused(code: int) -> aiosmtplib.SMTPRecipientRefused:
    return aiosmtplib.SMTPRecipientRefused(code, "no such mailbox", "gone@example.com")


@pytest.mark.parametrize(
    ("error", "detail", "permanent"),
    [
        (refused(550), "recipient refused: 550 no such mailbox", True),
        (refused(450), "recipient refused: 450 no such mailbox", False),
        (
            aiosmtplib.SMTPRecipientsRefused([refused(550), refused(451)]),
            "recipient refused: 550 no such mailbox; 451 no such mailbox",
            False,
        ),
        (aiosmtplib.SMTPDataError(554, "spam"), "message refused: 554 spam", False),
        (
            aiosmtplib.SMTPSenderRefused(553, "not yours", "payments@auction.localhost"),
            "sender refused: 553 not yours",
            False,
        ),
        (aiosmtplib.SMTPAuthenticationError(535, "bad"), "login refused: 535 bad", False),
        (
            aiosmtplib.SMTPReadTimeoutError("slow"),
            "no answer within 5 s from 127.0.0.1:2525",
            False,
        ),
        (TimeoutError(), "no answer within 5 s from 127.0.0.1:2525", False),
        (
            aiosmtplib.SMTPServerDisconnected("Connection lost"),
            "SMTPServerDisconnected at 127.0.0.1:2525: Connection lost",
            False,
        ),
        (
            ConnectionRefusedError(111, "Connection refused"),
            "ConnectionRefusedError at 127.0.0.1:2525: [Errno 111] Connection refused",
            False,
        ),
    ],
)
def test_each_smtp_failure_says_what_happened_and_whether_to_retry(
    error: BaseException, detail: str, permanent: bool
) -> None:
    failed = send_failed(error, SETTINGS)
    assert failed is not None
    assert (failed.detail, failed.permanent) == (detail, permanent)


@pytest.mark.parametrize("error", [asyncio.CancelledError(), KeyError("a bug")])
def test_what_is_no_smtp_failure_goes_on_as_it_is(error: BaseException) -> None:
    assert send_failed(error, SETTINGS) is None
