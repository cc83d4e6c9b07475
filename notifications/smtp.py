"""Sending messages over SMTP with aiosmtplib, configured by the SMTP_* settings.

A session is one connection reused for several messages: connect, TLS and login once, then
an envelope and data per message, and QUIT at the end. Every way a send can fail becomes
`SendFailed`, which says whether trying again could help. Each message's send (the connect,
TLS and login too when it opens the connection) is bounded by SMTP_TIMEOUT_SECONDS, which is
what the dispatcher's lease is sized on.

A connection is kept after a failure only when the server answered and aiosmtplib reset the
envelope (RSET): a refused recipient, sender or message. After anything else (a timeout, a
dropped connection, a failed login, an error we did not expect) the connection is closed, and
the session's next message opens a fresh one, so one bad connection fails one message.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from email import policy
from email.message import EmailMessage
from types import TracebackType
from typing import Self

import aiosmtplib

from domain.mail_delivery import is_permanent_refusal
from infra.settings import Settings
from notifications.render import envelope_sender

# Headers are not folded below RFC 5322's 998 characters: a folded Message-ID is valid, yet
# some systems that compare Message-IDs read the fold as part of it, and ours must name the
# same message on every copy. Cloned once: a clone per message was measurable.
_WIRE_POLICY = policy.SMTP.clone(max_line_length=998)
_WIRE_POLICY_UTF8 = policy.SMTPUTF8.clone(max_line_length=998)

# QUIT only says goodbye once every message has its answer: not worth waiting long for.
_QUIT_SECONDS = 2.0


class SendFailed(Exception):
    def __init__(self, detail: str, *, permanent: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent


class SmtpSender:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sender = envelope_sender(settings.mail_from)
        self._local_hostname: str | None = None

    @property
    def timeout_seconds(self) -> float:
        return self._settings.smtp_timeout_seconds

    def session(self) -> SmtpSession:
        """`async with sender.session() as smtp: await smtp.send(message, recipient)`: the
        connection opens with the first send and closes when the block ends."""
        return SmtpSession(self._settings, self._sender, self._hostname)

    async def send(self, message: EmailMessage, recipient: str) -> None:
        """One message on a connection of its own."""
        async with self.session() as smtp:
            await smtp.send(message, recipient)

    async def _hostname(self) -> str:
        # What EHLO names us: aiosmtplib would look it up on a thread for every connection.
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname


class SmtpSession:
    """One SMTP connection, opened when the first message needs it and again after a failure
    closed it; messages are sent one at a time."""

    def __init__(
        self, settings: Settings, sender: str, hostname: Callable[[], Awaitable[str]]
    ) -> None:
        self._settings = settings
        self._sender = sender
        self._hostname = hostname
        self._smtp: aiosmtplib.SMTP | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        try:
            if error is None:
                async with asyncio.timeout(min(_QUIT_SECONDS, self._settings.smtp_timeout_seconds)):
                    await smtp.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass  # every message already has its answer
        finally:
            smtp.close()

    async def send(self, message: EmailMessage, recipient: str) -> None:
        settings = self._settings
        international = not (self._sender + recipient).isascii()
        data = wire_bytes(message, utf8=international)
        try:
            async with asyncio.timeout(settings.smtp_timeout_seconds):
                smtp = await self._connected()
                await smtp.sendmail(
                    self._sender,
                    [recipient],
                    data,
                    mail_options=["SMTPUTF8"] if international else [],
                    timeout=settings.smtp_timeout_seconds,
                )
        except BaseException as error:
            if not _connection_survives(error):
                self._close()
            failed = send_failed(error, settings)
            if failed is None:
                raise
            raise failed from None

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        settings = self._settings
        smtp = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            local_hostname=await self._hostname(),
            username=settings.smtp_username,
            password=settings.smtp_password,
            # False never upgrades (a local sink); True requires TLS or fails.
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )
        self._smtp = smtp  # before connecting: a timeout while it connects closes it too
        await smtp.connect()
        return smtp

    def _close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


def _connection_survives(error: BaseException) -> bool:
    """Whether the connection is still fit for the next message after `error`: only after
    the server refused this envelope or message, which aiosmtplib answers with RSET (it
    closes the connection itself when the server says 421 or hangs up meanwhile)."""
    return isinstance(
        error,
        aiosmtplib.SMTPRecipientsRefused
        | aiosmtplib.SMTPRecipientRefused
        | aiosmtplib.SMTPSenderRefused
        | aiosmtplib.SMTPDataError,
    )


def send_failed(error: BaseException, settings: Settings) -> SendFailed | None:
    """What a send's error means for the message: `SendFailed`, permanent or not, or None for
    what is no SMTP failure (a cancellation, a bug) and must go on as it is."""
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [recipient.code for recipient in error.recipients]
        permanent = all(is_permanent_refusal(code, stage="recipient") for code in codes)
        answers = "; ".join(f"{r.code} {r.message}" for r in error.recipients)
        return SendFailed(f"recipient refused: {answers}", permanent=permanent)
    if isinstance(error, aiosmtplib.SMTPRecipientRefused):
        permanent = is_permanent_refusal(error.code, stage="recipient")
        return SendFailed(f"recipient refused: {error.code} {error.message}", permanent=permanent)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return SendFailed(f"{_stage(error)}: {error.code} {error.message}")
    if isinstance(error, TimeoutError):
        return SendFailed(f"no answer within {settings.smtp_timeout_seconds:g} s from {where}")
    if isinstance(error, aiosmtplib.SMTPException | OSError):
        return SendFailed(f"{type(error).__name__} at {where}: {error}")
    return None


def wire_bytes(message: EmailMessage, *, utf8: bool = False) -> bytes:
    """The message as sent (see `_WIRE_POLICY` for why its headers are not folded)."""
    return message.as_bytes(policy=_WIRE_POLICY_UTF8 if utf8 else _WIRE_POLICY)


def _stage(answered: aiosmtplib.SMTPResponseException) -> str:
    if isinstance(answered, aiosmtplib.SMTPSenderRefused):
        return "sender refused"
    if isinstance(answered, aiosmtplib.SMTPDataError):
        return "message refused"
    if isinstance(answered, aiosmtplib.SMTPAuthenticationError):
        return "login refused"
    return "server answered"
