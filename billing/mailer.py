"""Outgoing e-mail, handed to the SMTP server in the settings (aiosmtplib).

:func:`send_soon` sends in the background so that the request that caused a mail answers at
once and in the same time whether or not a mail goes out: "forgot my password" must not
reveal by its delay which addresses have an account, nor hang while the mail server is slow.
A mail that cannot be delivered is logged (without its body, which may hold a secret link)
and dropped; the person can simply ask again.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage

import aiosmtplib

from settings import Settings

log = logging.getLogger("kassa.billing.mailer")

SMTP_TIMEOUT_SECONDS = 30

#: Mails still being sent; holding the tasks keeps them from being garbage-collected.
_sending: set[asyncio.Task[None]] = set()


def compose(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


async def send(settings: Settings, message: EmailMessage) -> None:
    """Deliver ``message`` to the SMTP server now (STARTTLS when the server offers it)."""
    await aiosmtplib.send(
        message, hostname=settings.smtp_host, port=settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS
    )


async def _send_or_log(settings: Settings, message: EmailMessage) -> None:
    try:
        await send(settings, message)
    except (aiosmtplib.SMTPException, OSError) as error:
        log.warning(
            "could not mail %r to %s:%s: %s",
            message["Subject"],
            settings.smtp_host,
            settings.smtp_port,
            error,
        )


def send_soon(settings: Settings, message: EmailMessage) -> None:
    """Send ``message`` in the background (see the module docstring)."""
    task = asyncio.get_running_loop().create_task(_send_or_log(settings, message))
    _sending.add(task)
    task.add_done_callback(_sending.discard)


async def drain() -> None:
    """Wait until every mail handed to :func:`send_soon` so far is sent or given up.

    For a clean shutdown, and for tests that look for the mail right after the request.
    """
    while _sending:
        await asyncio.gather(*list(_sending))
