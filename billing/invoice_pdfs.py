"""Invoice PDFs kept in the database, and when they are (re)rendered.

Every invoice has a PDF (:mod:`billing.invoice_pdf_layout` draws it).  Drawing one costs
milliseconds of CPU, so it is done once, by the :data:`RENDER_JOB` job, and kept in
``invoice_pdfs``; a download is then a read.  What can change after an invoice is issued
is its status, the amount paid on it and its owner's letterhead
(:mod:`billing.letterheads`), so a kept PDF notes the status, amount and letterhead
revision it was drawn with and is *stale* once any differs.

The trigger is one singleton job (its ``unique_key`` is its kind): whatever issues invoices
or changes what they owe calls :func:`schedule_pdf_rendering`, which adds the job due now or
leaves the one already pending alone.  The job renders every missing or stale PDF, a batch
per run, and schedules itself again while a batch comes back full; rendering only what is
stale makes a second run a no-op.  :mod:`billing.invoices`, :mod:`billing.settlement` and
:mod:`billing.letterheads` call the hook through the module (``schedule_pdf_rendering``),
since this module reads invoice lines and letterheads through them in turn.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing import invoices, jobs, letterheads
from billing.invoice_pdf_layout import DocumentLine, InvoiceDocument, render_invoice_pdf
from billing.models import Customer, Invoice, InvoicePdf, InvoiceStatus, Letterhead
from billing.periods import local_date

#: Invoices rendered per job run: under half a second of drawing (``bench/pdf.py``: about
#: 40 ms each with the embedded font), so the job's transaction (and on SQLite the write
#: lock) is never held for long.
RENDER_BATCH = 10

#: The job that renders missing and stale invoice PDFs (also its unique key: one pending).
RENDER_JOB = "render_invoice_pdfs"


async def schedule_pdf_rendering(session: AsyncSession, now: datetime) -> None:
    """Have the PDFs of new or changed invoices rendered once this transaction commits.

    Cheap and idempotent, so callers need not know whether anything changed.
    """
    await jobs.schedule(session, RENDER_JOB, now, unique_key=RENDER_JOB)


#: The revision of an invoice's letterhead (0 while its owner has set none); select from
#: ``Invoice`` outer-joined with :data:`_LETTERHEAD_JOIN`.
_LETTERHEAD_REVISION = func.coalesce(Letterhead.revision, 0)
_LETTERHEAD_JOIN = Letterhead.owner_key == Invoice.owner_key


def _is_current() -> ColumnElement[bool]:
    """The kept PDF (joined) shows the invoice's figures and its letterhead's revision."""
    return and_(
        InvoicePdf.status_rendered == Invoice.status,
        InvoicePdf.amount_paid_rendered == Invoice.amount_paid,
        InvoicePdf.letterhead_revision_rendered == _LETTERHEAD_REVISION,
    )


async def stale_invoice_ids(session: AsyncSession, limit: int) -> list[int]:
    """Up to ``limit`` invoices (oldest first) whose PDF is missing or shows other figures."""
    rows = await session.scalars(
        select(Invoice.id)
        .outerjoin(InvoicePdf, InvoicePdf.invoice_id == Invoice.id)
        .outerjoin(Letterhead, _LETTERHEAD_JOIN)
        .where(or_(InvoicePdf.invoice_id.is_(None), ~_is_current()))
        .order_by(Invoice.id)
        .limit(limit)
    )
    return list(rows.all())


@dataclass(frozen=True, slots=True)
class RenderedPdf:
    """A freshly drawn PDF and the figures it shows that may still change."""

    invoice_id: int
    status: InvoiceStatus
    amount_paid: int
    letterhead_revision: int
    content: bytes


async def store(session: AsyncSession, rendered: Sequence[RenderedPdf], now: datetime) -> None:
    """Keep ``rendered``, replacing older PDFs of the same invoices (one upsert).

    An upsert because a download may render an invoice on demand while the job renders it
    too: both drew the same figures, so whichever writes last is right.
    """
    if not rendered:
        return
    dialect_insert = (
        postgresql_insert
        if session.bind.dialect.name == "postgresql"  # type: ignore[union-attr]
        else sqlite_insert
    )
    statement = dialect_insert(InvoicePdf)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[InvoicePdf.invoice_id],
            set_={
                column: statement.excluded[column]
                for column in (
                    "status_rendered",
                    "amount_paid_rendered",
                    "letterhead_revision_rendered",
                    "content",
                    "sha256",
                    "rendered_at",
                )
            },
        ),
        [
            {
                "invoice_id": r.invoice_id,
                "status_rendered": r.status,
                "amount_paid_rendered": r.amount_paid,
                "letterhead_revision_rendered": r.letterhead_revision,
                "content": r.content,
                "sha256": hashlib.sha256(r.content).hexdigest(),
                "rendered_at": now,
            }
            for r in rendered
        ],
    )


@dataclass(frozen=True, slots=True)
class PdfFile:
    """A kept PDF as a download serves it."""

    number: str
    content: bytes
    sha256: str


async def current_pdf(session: AsyncSession, invoice_id: int) -> PdfFile | None:
    """The kept PDF of ``invoice_id`` if it still shows the invoice's figures, else None."""
    row = (
        await session.execute(
            select(Invoice.number, InvoicePdf.content, InvoicePdf.sha256)
            .join(Invoice, Invoice.id == InvoicePdf.invoice_id)
            .outerjoin(Letterhead, _LETTERHEAD_JOIN)
            .where(InvoicePdf.invoice_id == invoice_id, _is_current())
        )
    ).one_or_none()
    return None if row is None else PdfFile(row.number, row.content, row.sha256)


# --- what an invoice's PDF shows ----------------------------------------------------------


def amount_due(invoice: Invoice) -> int:
    """The invoice's outstanding amount, and zero once it is settled (PAID) or cancelled."""
    return 0 if invoice.status == InvoiceStatus.PAID else invoice.outstanding


async def invoice_documents_for(
    session: AsyncSession, invoice_ids: Sequence[int]
) -> list[InvoiceDocument]:
    """The documents of ``invoice_ids`` (those that exist): one query for the invoices with
    their customers, one for their lines, two for their owners' letterheads.

    The letterhead is that of the invoice's owner (``Invoice.owner_key``: the reseller for
    a reseller's customers, else the provider), as :func:`stale_invoice_ids` compares it.
    """
    if not invoice_ids:
        return []
    rows = (
        await session.execute(
            select(
                Invoice,
                Customer.name,
                Customer.address,
                Customer.email,
                Customer.time_zone,
            )
            .join(Customer, Customer.id == Invoice.customer_id)
            .where(Invoice.id.in_(invoice_ids))
            .order_by(Invoice.id)
            # Bulk UPDATEs (overdue marking) bypass the identity map: read the rows afresh.
            .execution_options(populate_existing=True)
        )
    ).all()
    lines = await invoices.invoice_lines(session, [row[0].id for row in rows])
    owners = await letterheads.letterheads_of(
        session, {letterheads.owner_of_key(row[0].owner_key) for row in rows}
    )
    return [
        InvoiceDocument(
            invoice_id=invoice.id,
            letterhead=owners[letterheads.owner_of_key(invoice.owner_key)],
            customer_name=name,
            customer_address=address,
            customer_email=email,
            number=invoice.number,
            kind=invoice.kind,
            currency=invoice.currency,
            period_start=invoice.period_start,
            period_last_day=invoice.period_end - timedelta(days=1),
            issue_date=invoice.issue_date,
            due_date=invoice.due_date,
            lines=tuple(
                DocumentLine(
                    line.account_number,
                    line.description,
                    local_date(line.service_at, time_zone),
                    line.amount,
                )
                for line in lines[invoice.id]
            ),
            previous_balance=invoice.previous_balance,
            payments_in_period=invoice.payments_in_period,
            total=invoice.total,
            balance_due=invoice.balance_due,
            amount_paid=invoice.amount_paid,
            amount_due=amount_due(invoice),
            status=invoice.status,
            void_reason=invoice.void_reason,
            voided_on=None
            if invoice.voided_at is None
            else local_date(invoice.voided_at, time_zone),
        )
        for invoice, name, address, email, time_zone in rows
    ]


async def invoice_document(session: AsyncSession, invoice_id: int) -> InvoiceDocument:
    """The document of one invoice (which must exist; callers have authorised it)."""
    [document] = await invoice_documents_for(session, [invoice_id])
    return document


# --- rendering and keeping (the job) ----------------------------------------------------------------


def _render_all(documents: Sequence[InvoiceDocument]) -> list[RenderedPdf]:
    return [
        RenderedPdf(
            d.invoice_id, d.status, d.amount_paid, d.letterhead.revision, render_invoice_pdf(d)
        )
        for d in documents
    ]


async def render_and_store(
    session: AsyncSession, invoice_ids: Sequence[int], now: datetime
) -> list[RenderedPdf]:
    """Render the PDFs of ``invoice_ids`` and keep them; returns what was rendered.

    Drawing is CPU work, done in a thread so a worker sharing the event loop with the web
    server (``kassa serve``) does not stall its requests for the whole batch.
    """
    documents = await invoice_documents_for(session, invoice_ids)
    rendered = await asyncio.to_thread(_render_all, documents)
    await store(session, rendered, now)
    return rendered


async def render_pdf_now(session: AsyncSession, invoice_id: int, now: datetime) -> PdfFile | None:
    """Render and keep one invoice's PDF at once (a download found none current).

    None when there is no such invoice.
    """
    await render_and_store(session, [invoice_id], now)
    return await current_pdf(session, invoice_id)


@jobs.handler(RENDER_JOB)
async def render_invoice_pdfs(
    session: AsyncSession, payload: dict[str, Any], now: datetime
) -> None:
    """Render a batch of missing or stale PDFs; come back at once while there are more.

    Idempotent: a PDF that already shows its invoice's figures is not stale, so a second run
    renders nothing.
    """
    stale = await stale_invoice_ids(session, RENDER_BATCH)
    await render_and_store(session, stale, now)
    if len(stale) == RENDER_BATCH:
        await schedule_pdf_rendering(session, now)
