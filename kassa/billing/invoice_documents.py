"""Invoice PDFs kept in the database, and when they are (re)rendered.

Every invoice has a PDF (:mod:`kassa.billing.invoice_pdf` draws it).  Drawing one costs
milliseconds of CPU, so it is done once, by the :data:`RENDER_JOB` job, and kept in
``invoice_documents``; a download is then a read.  The figures that can change after an
invoice is issued are its status and the amount paid on it, so a kept PDF notes the two it
was drawn with and is *stale* once either differs.

The trigger is one singleton job (its ``unique_key`` is its kind): whatever issues invoices
or changes what they owe calls :func:`schedule_pdf_rendering`, which adds the job due now or
leaves the one already pending alone.  The job renders every missing or stale PDF, a batch
per run, and schedules itself again while a batch comes back full; rendering only what is
stale makes a second run a no-op.  This module stays free of the renderer (and of
:mod:`kassa.billing.invoices`) so that :mod:`kassa.billing.settlement`, which the invoices
module imports, can call the hook without an import cycle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from kassa.billing import jobs
from kassa.billing.models import Invoice, InvoicePdf, InvoiceStatus

#: The job that renders missing and stale invoice PDFs (also its unique key: one pending).
RENDER_JOB = "render_invoice_pdfs"


async def schedule_pdf_rendering(session: AsyncSession, now: datetime) -> None:
    """Have the PDFs of new or changed invoices rendered once this transaction commits.

    Cheap and idempotent, so callers need not know whether anything changed.
    """
    await jobs.schedule(session, RENDER_JOB, now, unique_key=RENDER_JOB)


async def stale_invoice_ids(session: AsyncSession, limit: int) -> list[int]:
    """Up to ``limit`` invoices (oldest first) whose PDF is missing or shows other figures."""
    rows = await session.scalars(
        select(Invoice.id)
        .outerjoin(InvoicePdf, InvoicePdf.invoice_id == Invoice.id)
        .where(or_(InvoicePdf.invoice_id.is_(None),
                   InvoicePdf.status_rendered != Invoice.status,
                   InvoicePdf.amount_paid_rendered != Invoice.amount_paid))
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
    content: bytes


async def store(session: AsyncSession, rendered: Sequence[RenderedPdf], now: datetime) -> None:
    """Keep ``rendered``, replacing older PDFs of the same invoices (one upsert).

    An upsert because a download may render an invoice on demand while the job renders it
    too: both drew the same figures, so whichever writes last is right.
    """
    if not rendered:
        return
    dialect_insert = (
        postgresql_insert if session.bind.dialect.name == "postgresql"  # type: ignore[union-attr]
        else sqlite_insert
    )
    statement = dialect_insert(InvoicePdf)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[InvoicePdf.invoice_id],
            set_={column: statement.excluded[column]
                  for column in ("status_rendered", "amount_paid_rendered", "content", "sha256",
                                 "rendered_at")},
        ),
        [{"invoice_id": r.invoice_id, "status_rendered": r.status,
          "amount_paid_rendered": r.amount_paid, "content": r.content,
          "sha256": hashlib.sha256(r.content).hexdigest(), "rendered_at": now}
         for r in rendered],
    )


@dataclass(frozen=True, slots=True)
class PdfFile:
    """A kept PDF as a download serves it."""

    number: str
    content: bytes
    sha256: str


async def current_pdf(session: AsyncSession, invoice_id: int) -> PdfFile | None:
    """The kept PDF of ``invoice_id`` if it still shows the invoice's figures, else None."""
    row = (await session.execute(
        select(Invoice.number, InvoicePdf.content, InvoicePdf.sha256)
        .join(Invoice, Invoice.id == InvoicePdf.invoice_id)
        .where(InvoicePdf.invoice_id == invoice_id,
               InvoicePdf.status_rendered == Invoice.status,
               InvoicePdf.amount_paid_rendered == Invoice.amount_paid)
    )).one_or_none()
    return None if row is None else PdfFile(row.number, row.content, row.sha256)
