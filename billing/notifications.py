"""Customer e-mails: what happened is turned into outbox rows, and the outbox is sent.

Two singleton jobs, kept apart so that a slow or absent SMTP server never holds up (or
loses) what the billing side decided to tell a customer:

* :data:`COMPOSE_JOB` reads what happened since its last run — invoices issued (or
  approved), payments completed, card attempts declined, invoices overdue, customers
  suspended — and writes one :class:`~billing.models.OutboxMessage` per event for
  customers with an e-mail address.  It reads the records the billing code writes anyway
  (``status_changes``, ``payments``, ``collection_attempts``), so no billing path needs a
  hook.  Each message has a ``dedupe_key`` naming its event (``invoice-issued:<invoice>``,
  ``receipt:<payment>``, ``attempt-failed:<attempt>``, ``overdue:<invoice>``,
  ``suspended:<status change>``) under a unique constraint, so the scan may overlap the
  previous one, or run twice, and still writes each message once.  It polls every minute
  (daily while the test clock is frozen, so moving it a month on is 30 runs, not 43,200).
* :data:`SEND_JOB` hands unsent messages to the SMTP server (:mod:`billing.mailer`).
  A message is marked sent only after the server accepted it; a failure counts an attempt,
  keeps the error and tries again later with backoff, for ever — nothing is dropped.  It
  runs *detached*: no database transaction (on SQLite, the write lock) is held while
  talking to the server, and a batch is leased (``next_attempt_at`` moved on) before it is
  sent so two workers never send the same message.  Delivery is at least once: a crash
  between the server's "250 OK" and the commit sends that message again.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiosmtplib
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, invoice_pdfs, jobs, mailer
from billing.db import Database
from billing.models import (
    AttemptStatus,
    CollectionAttempt,
    Customer,
    CustomerStatus,
    Invoice,
    InvoiceStatus,
    OutboxMessage,
    Payment,
    PaymentStatus,
    StatusChange,
    StatusSubject,
)
from billing.money import format_amount
from billing.periods import local_date
from billing.status_changes import Cause
from settings import Settings

COMPOSE_JOB = "compose_notifications"
SEND_JOB = "send_outbox"
POLL = timedelta(minutes=1)
#: The poll while the test clock is frozen: each poll is a step of ``advance_clock``.
POLL_FROZEN = timedelta(days=1)
#: Events older than this are not mailed (a first run after an upgrade must not send the
#: whole history).
MAX_AGE = timedelta(days=7)
#: Ids re-read below the last watermark: a transaction that committed late with a lower id
#: is still seen; the dedupe keys make the re-reading harmless.
ID_OVERLAP = 500
#: Failed attempts are found by their finish time, looked back this far past the last run.
TIME_OVERLAP = timedelta(hours=1)
SEND_BATCH = 50
#: How long a claimed batch is left alone by other workers (a dead worker's batch returns).
SEND_LEASE = timedelta(minutes=10)
MAX_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Draft:
    """A message before it is written to the outbox."""

    dedupe_key: str
    #: None for mail to someone other than a customer (a distributor's accounting address).
    customer_id: int | None
    to: str
    subject: str
    body: str
    attachment_name: str | None = None
    attachment: bytes | None = None


# --- starting -----------------------------------------------------------------------------


async def start(session: AsyncSession, now: datetime) -> None:
    """Make sure both jobs are pending (a worker calls this when it starts; idempotent)."""
    await jobs.schedule(session, COMPOSE_JOB, now, unique_key=COMPOSE_JOB)
    await jobs.schedule(session, SEND_JOB, now, unique_key=SEND_JOB)


async def start_jobs(db: Database) -> None:
    """:func:`start` in a transaction of its own."""
    async with db.transaction() as session:
        await start(session, await clock.now(session))


# --- composing ----------------------------------------------------------------------------


def _greeting(name: str) -> str:
    return f"Dear {name},\n\n"


def _money(amount: int, currency: str) -> str:
    return f"{format_amount(amount, currency)} {currency}"


async def _customers(session: AsyncSession, ids: set[int]) -> dict[int, Customer]:
    """The customers among ``ids`` that have an e-mail address."""
    if not ids:
        return {}
    rows = await session.scalars(
        select(Customer).where(
            Customer.id.in_(ids), Customer.email.is_not(None), Customer.email != ""
        )
    )
    return {c.id: c for c in rows.all()}


async def _invoices(session: AsyncSession, ids: set[int]) -> dict[int, Invoice]:
    if not ids:
        return {}
    rows = await session.scalars(
        select(Invoice).where(Invoice.id.in_(ids)).execution_options(populate_existing=True)
    )
    return {i.id: i for i in rows.all()}


async def _pdf(session: AsyncSession, invoice_id: int, now: datetime) -> bytes:
    """The invoice's current PDF, rendered (and kept) now if the render job has not yet."""

    current = await invoice_pdfs.current_pdf(session, invoice_id)
    if current is None:
        current = await invoice_pdfs.render_pdf_now(session, invoice_id, now)
    assert current is not None
    return current.content


async def _status_change_drafts(
    session: AsyncSession,
    after_id: int,
    oldest: datetime,
    now: datetime,
) -> tuple[list[Draft], int]:
    """Issued, overdue and suspended mails from ``status_changes`` rows after ``after_id``."""
    changes = list(
        (
            await session.scalars(
                select(StatusChange)
                .where(StatusChange.id > after_id, StatusChange.at >= oldest)
                .order_by(StatusChange.id)
            )
        ).all()
    )
    watermark = max([after_id, *(c.id for c in changes)])
    wanted: list[tuple[str, StatusChange]] = []
    for change in changes:
        if change.subject == StatusSubject.INVOICE:
            issued = change.cause == Cause.APPROVED or (
                change.cause == Cause.ISSUED and change.to_status != InvoiceStatus.PENDING_REVIEW
            )
            if issued:
                wanted.append((f"invoice-issued:{change.subject_id}", change))
            elif change.to_status == InvoiceStatus.OVERDUE:
                wanted.append((f"overdue:{change.subject_id}", change))
        elif change.to_status == CustomerStatus.SUSPENDED:
            wanted.append((f"suspended:{change.id}", change))
    wanted = list(dict(wanted).items())  # an invoice overdue twice in one scan: one mail
    existing = await _existing(session, wanted)
    wanted = [(key, c) for key, c in wanted if key not in existing]
    customers = await _customers(session, {c.customer_id for _, c in wanted})
    invoices = await _invoices(
        session, {c.subject_id for _, c in wanted if c.subject == StatusSubject.INVOICE}
    )
    drafts: list[Draft] = []
    for key, change in wanted:
        customer = customers.get(change.customer_id)
        if customer is None or customer.email is None:
            continue
        if key.startswith("suspended:"):
            why = (
                "because an invoice is unpaid past its due date and grace period. It is "
                "restored as soon as the overdue invoices are paid."
                if change.cause == Cause.GRACE_PERIOD_EXCEEDED
                else "by our staff. Please contact us about it."
            )
            drafts.append(
                Draft(
                    key,
                    customer.id,
                    customer.email,
                    "Your service is suspended",
                    _greeting(customer.name) + f"your service has been suspended {why}\n",
                )
            )
            continue
        invoice = invoices[change.subject_id]
        if invoice.status in (InvoiceStatus.VOID, InvoiceStatus.PENDING_REVIEW) or (
            key.startswith("overdue:") and invoice.status != InvoiceStatus.OVERDUE
        ):
            continue  # voided, or paid before the mail was written: nothing to tell
        due = _money(invoice.outstanding, invoice.currency)
        if key.startswith("overdue:"):
            drafts.append(
                Draft(
                    key,
                    customer.id,
                    customer.email,
                    f"Invoice {invoice.number} is overdue",
                    _greeting(customer.name) + f"invoice {invoice.number} was due on "
                    f"{invoice.due_date.isoformat()} and {due} is still outstanding. Please pay "
                    "it to avoid suspension of your service.\n",
                )
            )
        else:
            drafts.append(
                Draft(
                    key,
                    customer.id,
                    customer.email,
                    f"Your invoice {invoice.number}",
                    _greeting(customer.name) + f"your invoice {invoice.number} for "
                    f"{_money(invoice.total, invoice.currency)} is attached. It is due on "
                    f"{invoice.due_date.isoformat()}.\n",
                    f"invoice-{invoice.number}.pdf",
                    await _pdf(session, invoice.id, now),
                )
            )
    return drafts, watermark


async def _receipt_drafts(
    session: AsyncSession,
    after_id: int,
    oldest: datetime,
) -> tuple[list[Draft], int]:
    """Receipts for COMPLETED payments after ``after_id``.

    The watermark stops below the first payment still PENDING or UNKNOWN (a redirect or an
    unanswered charge), so that payment is looked at again until it has an outcome.
    """
    payments = list(
        (
            await session.scalars(
                select(Payment)
                .where(Payment.id > after_id, Payment.received_at >= oldest)
                .order_by(Payment.id)
            )
        ).all()
    )
    watermark = after_id
    for payment in payments:
        if payment.status in (PaymentStatus.PENDING, PaymentStatus.UNKNOWN):
            break
        watermark = payment.id
    completed = [
        (f"receipt:{p.id}", p)
        for p in payments
        if p.status
        in (PaymentStatus.COMPLETED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)
    ]
    existing = await _existing(session, completed)
    completed = [(key, p) for key, p in completed if key not in existing]
    customers = await _customers(session, {p.customer_id for _, p in completed})
    drafts = []
    for key, payment in completed:
        customer = customers.get(payment.customer_id)
        if customer is None or customer.email is None:
            continue
        drafts.append(
            Draft(
                key,
                customer.id,
                customer.email,
                "Payment received",
                _greeting(customer.name) + f"we received your payment of "
                f"{_money(payment.amount, payment.currency)} ({payment.method.value.lower()}) on "
                f"{local_date(payment.received_at, customer.time_zone).isoformat()}. Thank you.\n",
            )
        )
    return drafts, watermark


async def _failed_attempt_drafts(session: AsyncSession, since: datetime) -> list[Draft]:
    """ "Your card was declined" for attempts FAILED since ``since``, with the next attempt."""
    attempts = list(
        (
            await session.scalars(
                select(CollectionAttempt)
                .where(
                    CollectionAttempt.status == AttemptStatus.FAILED,
                    CollectionAttempt.finished_at >= since,
                )
                .order_by(CollectionAttempt.id)
            )
        ).all()
    )
    wanted = [(f"attempt-failed:{a.id}", a) for a in attempts]
    existing = await _existing(session, wanted)
    wanted = [(key, a) for key, a in wanted if key not in existing]
    customers = await _customers(session, {a.customer_id for _, a in wanted})
    invoices = await _invoices(session, {a.invoice_id for _, a in wanted})
    drafts = []
    for key, attempt in wanted:
        customer = customers.get(attempt.customer_id)
        if customer is None or customer.email is None:
            continue
        invoice = invoices[attempt.invoice_id]
        next_day = await session.scalar(
            select(func.min(CollectionAttempt.scheduled_for)).where(
                CollectionAttempt.invoice_id == attempt.invoice_id,
                CollectionAttempt.status == AttemptStatus.SCHEDULED,
            )
        )
        retry = (
            f"We will try again on {next_day.isoformat()}."
            if next_day is not None
            else "We will not try this card again for this invoice; please pay it another way."
        )
        amount = _money(attempt.amount or invoice.outstanding, attempt.currency)
        drafts.append(
            Draft(
                key,
                customer.id,
                customer.email,
                f"Payment failed for invoice {invoice.number}",
                _greeting(customer.name) + f"charging {amount} to your card for invoice "
                f"{invoice.number} failed: {attempt.message or attempt.decline_code or 'declined'}."
                f" {retry}\n",
            )
        )
    return drafts


async def _existing(session: AsyncSession, wanted: Sequence[tuple[str, Any]]) -> set[str]:
    """The dedupe keys among ``wanted`` that the outbox has already (so nothing is redrawn)."""
    keys = [key for key, _ in wanted]
    found: set[str] = set()
    for start in range(0, len(keys), 1000):
        found.update(
            await session.scalars(
                select(OutboxMessage.dedupe_key).where(
                    OutboxMessage.dedupe_key.in_(keys[start : start + 1000])
                )
            )
        )
    return found


async def write_outbox(session: AsyncSession, drafts: list[Draft], now: datetime) -> int:
    """Insert ``drafts``, skipping any whose dedupe key is there already; returns the count."""
    if not drafts:
        return 0
    dialect_insert = (
        postgresql_insert
        if session.bind.dialect.name == "postgresql"  # type: ignore[union-attr]
        else sqlite_insert
    )
    result = await session.execute(
        dialect_insert(OutboxMessage)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(OutboxMessage.id),
        [
            {
                "dedupe_key": d.dedupe_key,
                "customer_id": d.customer_id,
                "to": d.to,
                "subject": d.subject,
                "body": d.body,
                "attachment_name": d.attachment_name,
                "attachment": d.attachment,
                "created_at": now,
                "next_attempt_at": now,
                "attempts": 0,
            }
            for d in drafts
        ],
    )
    return len(result.all())


async def compose(session: AsyncSession, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Write the outbox rows for events since the run described by ``payload``; returns the
    payload for the next run."""
    oldest = now - MAX_AGE
    since = (
        datetime.fromisoformat(payload["since"]) - TIME_OVERLAP if "since" in payload else oldest
    )
    changes, change_mark = await _status_change_drafts(
        session, max(0, payload.get("status_change_id", 0) - ID_OVERLAP), oldest, now
    )
    receipts, payment_mark = await _receipt_drafts(
        session, max(0, payload.get("payment_id", 0) - ID_OVERLAP), oldest
    )
    failed = await _failed_attempt_drafts(session, max(since, oldest))
    written = await write_outbox(session, [*changes, *receipts, *failed], now)
    if written:
        await schedule_sending(session, now)
    return {"since": now.isoformat(), "status_change_id": change_mark, "payment_id": payment_mark}


async def schedule_sending(session: AsyncSession, now: datetime) -> None:
    """Have the outbox sent now: after writing rows outside :func:`compose` (a distributor's
    credit-limit warning, written with the movement that crossed the threshold)."""
    await jobs.schedule(session, SEND_JOB, now, unique_key=SEND_JOB)


@jobs.handler(COMPOSE_JOB)
async def compose_notifications(
    session: AsyncSession, payload: dict[str, Any], now: datetime
) -> None:
    """Compose, then come back in a minute carrying the watermarks in the payload."""
    following = await compose(session, payload, now)
    poll = POLL_FROZEN if await clock.is_frozen(session) else POLL
    await jobs.schedule(session, COMPOSE_JOB, now + poll, following, unique_key=COMPOSE_JOB)


# --- sending ------------------------------------------------------------------------------


def as_email(settings: Settings, message: OutboxMessage) -> EmailMessage:
    """The message as e-mail; its attachment typed by its name (an invoice's ``.pdf``, a
    distributor's transactions ``.csv``)."""
    email = mailer.compose(settings, message.to, message.subject, message.body)
    if message.attachment is not None:
        name = message.attachment_name or "attachment.pdf"
        maintype, subtype = (mimetypes.guess_type(name)[0] or "application/pdf").split("/")
        email.add_attachment(message.attachment, maintype=maintype, subtype=subtype, filename=name)
    return email


def backoff(attempts: int, frozen: bool = False) -> timedelta:
    """1, 2, 4 … minutes after each failure, at most an hour — or a day while the test clock
    is frozen, where every retry is a step of ``advance_clock`` (a demo without a mail server
    would otherwise retry hourly through every month it is moved on)."""
    return min(
        timedelta(minutes=2 ** min(attempts - 1, 11)), POLL_FROZEN if frozen else MAX_BACKOFF
    )


async def _next_send(session: AsyncSession) -> datetime | None:
    return await session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(OutboxMessage.sent_at.is_(None))
    )


async def send_batch(db: Database, settings: Settings) -> tuple[int, int]:
    """Send one batch of due messages; returns (sent, failed)."""
    async with db.transaction() as session:
        now = await clock.now(session)
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.sent_at.is_(None), OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(SEND_BATCH)
        )
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        claimed = list((await session.scalars(query)).all())
        for message in claimed:
            message.next_attempt_at = now + SEND_LEASE
        emails = {m.id: as_email(settings, m) for m in claimed}
    outcomes: dict[int, str | None] = {}
    for message_id, email in emails.items():
        try:
            await mailer.send(settings, email)
            outcomes[message_id] = None
        except (aiosmtplib.SMTPException, OSError) as error:
            outcomes[message_id] = f"{type(error).__name__}: {error}"[:2000]
    async with db.transaction() as session:
        now = await clock.now(session)
        frozen = await clock.is_frozen(session)
        for message_id, refusal in outcomes.items():
            sent = await session.get(OutboxMessage, message_id)
            assert sent is not None
            if refusal is None:
                sent.sent_at = now
                sent.last_error = None
            else:
                sent.attempts += 1
                sent.last_error = refusal
                sent.next_attempt_at = now + backoff(sent.attempts, frozen)
    failed = sum(refusal is not None for refusal in outcomes.values())
    return len(outcomes) - failed, failed


@jobs.detached_handler(SEND_JOB)
async def send_outbox(db: Database, payload: dict[str, Any], now: datetime) -> None:
    """Send due batches until none is left (or all fail), then sleep until the next retry."""
    while True:
        sent, failed = await send_batch(db, db.settings)
        if sent + failed < SEND_BATCH or sent == 0:
            break
    async with db.transaction() as session:
        await jobs.reschedule(session, SEND_JOB, SEND_JOB, _next_send)
