"""Sending one message over SMTP with aiosmtplib, configured by the SMTP_* settings.

Every way a send can fail becomes `SendFailed`, which says whether trying again could help.
The whole conversation (connect, TLS, login, envelope, data) is bounded by
SMTP_TIMEOUT_SECONDS, which is what the dispatcher's lease is sized on.
"""

from __future__ import annotations

import asyncio
from email import policy
from email.message import EmailMessage

import aiosmtplib

from domain.mail_delivery import is_permanent_refusal
from infra.settings import Settings
from notifications.render import envelope_sender


class SendFailed(Exception):
    def __init__(self, detail: str, *, permanent: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent


class SmtpSender:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sender = envelope_sender(settings.mail_from)

    @property
    def timeout_seconds(self) -> float:
        return self._settings.smtp_timeout_seconds

    async def send(self, message: EmailMessage, recipient: str) -> None:
        settings = self._settings
        international = not (self._sender + recipient).isascii()
        try:
            async with asyncio.timeout(settings.smtp_timeout_seconds):
                await aiosmtplib.send(
                    wire_bytes(message, utf8=international),
                    sender=self._sender,
                    recipients=[recipient],
                    mail_options=["SMTPUTF8"] if international else [],
                    hostname=settings.smtp_host,
                    port=settings.smtp_port,
                    username=settings.smtp_username,
                    password=settings.smtp_password,
                    # False never upgrades (a local sink); True requires TLS or fails.
                    start_tls=settings.smtp_starttls,
                    timeout=settings.smtp_timeout_seconds,
                )
        except aiosmtplib.SMTPRecipientsRefused as refused:
            codes = [recipient.code for recipient in refused.recipients]
            permanent = all(is_permanent_refusal(code, stage="recipient") for code in codes)
            answers = "; ".join(f"{r.code} {r.message}" for r in refused.recipients)
            raise SendFailed(f"recipient refused: {answers}", permanent=permanent) from None
        except aiosmtplib.SMTPRecipientRefused as refused:
            permanent = is_permanent_refusal(refused.code, stage="recipient")
            raise SendFailed(
                f"recipient refused: {refused.code} {refused.message}", permanent=permanent
            ) from None
        except aiosmtplib.SMTPResponseException as answered:
            raise SendFailed(f"{_stage(answered)}: {answered.code} {answered.message}") from None
        except TimeoutError:
            raise SendFailed(
                f"no answer within {settings.smtp_timeout_seconds:g} s from "
                f"{settings.smtp_host}:{settings.smtp_port}"
            ) from None
        except (aiosmtplib.SMTPException, OSError) as failed:
            where = f"{settings.smtp_host}:{settings.smtp_port}"
            raise SendFailed(f"{type(failed).__name__} at {where}: {failed}") from None


def wire_bytes(message: EmailMessage, *, utf8: bool = False) -> bytes:
    """The message as sent. Headers are not folded below RFC 5322's 998 characters: a folded
    Message-ID is valid, yet some systems that compare Message-IDs read the fold as part of
    it, and ours must name the same message on every copy."""
    wire = policy.SMTPUTF8 if utf8 else policy.SMTP
    return message.as_bytes(policy=wire.clone(max_line_length=998))


def _stage(answered: aiosmtplib.SMTPResponseException) -> str:
    if isinstance(answered, aiosmtplib.SMTPSenderRefused):
        return "sender refused"
    if isinstance(answered, aiosmtplib.SMTPDataError):
        return "message refused"
    if isinstance(answered, aiosmtplib.SMTPAuthenticationError):
        return "login refused"
    return "server answered"
