"""Customer e-mails: each event is put in the outbox once, and the outbox survives an SMTP
server that is down (billing.notifications)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from billing import clock, jobs, notifications, status_changes
from billing.db import Database
from billing.models import (
    AttemptStatus,
    CollectionAttempt,
    InvoiceStatus,
    Job,
    JobStatus,
    LedgerEntry,
    LedgerTransaction,
    OutboxMessage,
    StatusSubject,
)
from billing.status_changes import Cause, Change
from settings import Settings
from tests.factories import T0, insert_invoice, make_customer, pay_cash
from tests.portal_support import Mailbox
from tests.ports import free_port

pytest_plugins = ["tests.portal_fixtures"]

ADA = "ada@example.test"


async def _events(db: Database) -> dict[str, int]:
    """One of each event for a customer with an e-mail address, and a few for one without.

    Status changes are written as the billing code writes them (``status_changes.record``).
    """
    async with db.transaction() as session:
        await clock.freeze(session, T0)
        ada = await make_customer(session, email=ADA)
        silent = await make_customer(session, name="No Mail")
        issued = await insert_invoice(session, ada, 10_000, T0.date())
        late = await insert_invoice(session, ada, 2_500, T0.date() - timedelta(days=30))
        for customer, invoice in (
            (ada, issued),
            (silent, await insert_invoice(session, silent, 500, T0.date())),
        ):
            await status_changes.record(
                session,
                Change(
                    StatusSubject.INVOICE,
                    invoice.id,
                    customer.id,
                    None,
                    InvoiceStatus.UNPAID,
                    Cause.ISSUED,
                ),
                T0,
            )
        late.status = InvoiceStatus.OVERDUE
        await status_changes.record(
            session,
            Change(
                StatusSubject.INVOICE,
                late.id,
                ada.id,
                InvoiceStatus.UNPAID,
                InvoiceStatus.OVERDUE,
                Cause.DUE_DATE_PASSED,
            ),
            T0,
        )
        await status_changes.record(
            session,
            Change(
                StatusSubject.CUSTOMER,
                ada.id,
                ada.id,
                "ACTIVE",
                "SUSPENDED",
                Cause.GRACE_PERIOD_EXCEEDED,
                f"invoice:{late.id}",
            ),
            T0,
        )
        payment = await pay_cash(session, ada, 1_234)
        await pay_cash(session, silent, 100)
        failed = CollectionAttempt(
            invoice_id=issued.id,
            customer_id=ada.id,
            scheduled_for=T0.date(),
            scheduled_at=T0,
            status=AttemptStatus.FAILED,
            amount=10_000,
            currency="USD",
            decline_code="card_declined",
            message="Your card was declined.",
            attempted_at=T0,
            finished_at=T0,
            created_at=T0,
        )
        session.add_all(
            [
                failed,
                CollectionAttempt(
                    invoice_id=issued.id,
                    customer_id=ada.id,
                    scheduled_for=T0.date() + timedelta(days=3),
                    scheduled_at=T0 + timedelta(days=3),
                    status=AttemptStatus.SCHEDULED,
                    currency="USD",
                    created_at=T0,
                ),
            ]
        )
        await session.flush()
        return {
            "issued": issued.id,
            "late": late.id,
            "payment": payment.id,
            "attempt": failed.id,
            "ada": ada.id,
        }


async def _compose(db: Database) -> None:
    async with db.transaction() as session:
        await notifications.compose(session, {}, await clock.now(session))


async def _outbox(db: Database) -> list[OutboxMessage]:
    async with db.session() as session:
        return list((await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def _ledger_size(db: Database) -> tuple[int, int]:
    async with db.session() as session:
        return (
            await session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0,
            await session.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
        )


@pytest.fixture
async def mail_db(settings: Settings, db: Database, mailbox: Mailbox) -> AsyncIterator[Database]:
    """The test database, opened with settings that send mail to the ``mailbox``."""
    database = Database(
        settings.with_(
            smtp_host=mailbox.host, smtp_port=mailbox.port, smtp_from="billing@kassa.test"
        )
    )
    yield database
    await database.dispose()


async def test_each_event_is_mailed_once(db: Database) -> None:
    ids = await _events(db)
    ledger_before = await _ledger_size(db)
    await _compose(db)
    await _compose(db)  # a second run (or an overlapping scan) writes nothing more

    messages = {m.dedupe_key: m for m in await _outbox(db)}
    assert set(messages) == {
        f"invoice-issued:{ids['issued']}",
        f"receipt:{ids['payment']}",
        f"attempt-failed:{ids['attempt']}",
        f"overdue:{ids['late']}",
        *(k for k in messages if k.startswith("suspended:")),
    }
    assert len(messages) == 5
    assert {m.to for m in messages.values()} == {ADA}  # the customer without e-mail: none
    invoice_mail = messages[f"invoice-issued:{ids['issued']}"]
    assert invoice_mail.subject.startswith("Your invoice ")
    assert invoice_mail.attachment is not None and invoice_mail.attachment.startswith(b"%PDF")
    assert invoice_mail.attachment_name and invoice_mail.attachment_name.endswith(".pdf")
    assert "12.34 USD" in messages[f"receipt:{ids['payment']}"].body
    failed = messages[f"attempt-failed:{ids['attempt']}"]
    assert failed.subject.startswith("Payment failed")
    assert (T0.date() + timedelta(days=3)).isoformat() in failed.body
    assert "overdue" in messages[f"overdue:{ids['late']}"].subject
    assert [m.subject for k, m in messages.items() if k.startswith("suspended:")] == [
        "Your service is suspended"
    ]
    assert all(m.sent_at is None for m in messages.values())
    assert await _ledger_size(db) == ledger_before


async def test_the_jobs_deliver_over_smtp(mail_db: Database, mailbox: Mailbox) -> None:
    await _events(mail_db)
    ledger_before = await _ledger_size(mail_db)
    await notifications.start_jobs(mail_db)
    await jobs.run_due(mail_db)

    received = await mailbox.received()
    assert len(received) == 5
    assert {m["To"] for m in received} == {ADA}
    [invoice_mail] = [m for m in received if m["Subject"].startswith("Your invoice ")]
    [pdf] = [part for part in invoice_mail.walk() if part.get_content_type() == "application/pdf"]
    filename, content = pdf.get_filename(), pdf.get_payload(decode=True)
    assert isinstance(filename, str) and filename.endswith(".pdf")
    assert isinstance(content, bytes) and content.startswith(b"%PDF")
    assert all(m.sent_at is not None and m.attempts == 0 for m in await _outbox(mail_db))
    async with mail_db.session() as session:
        pending = set(
            await session.scalars(select(Job.kind).where(Job.status == JobStatus.PENDING))
        )
    # The composer polls; the sender sleeps until there is mail again.
    assert notifications.COMPOSE_JOB in pending and notifications.SEND_JOB not in pending
    assert await _ledger_size(mail_db) == ledger_before


async def test_nothing_is_lost_while_the_smtp_server_is_down(
    mail_db: Database, mailbox: Mailbox
) -> None:
    await _events(mail_db)
    await _compose(mail_db)
    down = Database(mail_db.settings.with_(smtp_port=free_port()))
    try:
        await notifications.start_jobs(down)
        await jobs.run_due(down)
        await jobs.run_due(down)  # the retry is not due yet: no second attempt
    finally:
        await down.dispose()
    waiting = await _outbox(mail_db)
    assert len(waiting) == 5
    assert all(m.sent_at is None and m.attempts == 1 and m.last_error for m in waiting)
    assert await mailbox.received() == []

    # The server is back; the retry falls due after the backoff and delivers everything.
    async with mail_db.transaction() as session:
        retry_at = await session.scalar(
            select(Job.due_at).where(
                Job.kind == notifications.SEND_JOB, Job.status == JobStatus.PENDING
            )
        )
    assert retry_at is not None and retry_at > T0
    await jobs.advance_clock(mail_db, retry_at)
    assert len(await mailbox.received()) == 5
    assert all(m.sent_at is not None and m.last_error is None for m in await _outbox(mail_db))
