"""Invoice PDF benchmark: how many invoices one core draws per second.

    .venv/bin/python -m bench.pdf [--invoices 500] [--lines 20]
    .venv/bin/python -m bench.pdf --after-bill-run [--database-url URL]   # a scratch database!

Renders realistic invoices (a provider's letterhead with address, contact and payment
instructions, a customer with an address and a name in one of several scripts, ``--lines``
charges of varied descriptions, every figure and a status) with :func:`render_invoice_pdf` in this one
process, one after another, and prints PDFs per second of wall time and of CPU time (the
latter is the per-core figure: rendering is pure Python, so one process uses one core).

``--after-bill-run`` measures what the render job does instead: a bill run (seeded as in
``bench/billrun.py``) issues the invoices, then batches of :data:`RENDER_BATCH` are gathered
from the database, drawn and stored, one transaction each, until none is stale.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from bench import billrun as billrun_bench
from bench.scratch import fresh_database
from billing import billrun, invoice_pdfs
from billing.db import Database
from billing.invoice_pdf_layout import DocumentLine, InvoiceDocument, render_invoice_pdf
from billing.invoice_pdfs import RENDER_BATCH, render_and_store
from billing.letterheads import LetterheadDetails
from billing.models import InvoiceKind, InvoiceStatus
from settings import Settings, normalise_database_url, sqlite_url

NAMES = (
    "Chinua Achebe",
    "Zoë Brontë",
    "Łukasz Kowalski",
    "Ngozi Okonjo-Iweala",
    "Ada Lovelace",
    "Nguyễn Văn An",
    "Олена Коваленко",
    "Adébáyọ̀ Ọláńrewájú",
    "Ελένη Παπαδοπούλου",
)
LETTERHEAD = LetterheadDetails(
    reseller_id=None,
    name="Lagos Fibre & Mobile",
    address="14 Adeola Odeku Street\nVictoria Island\nLagos",
    tax_id="12345678-0001",
    email="billing@lagosfibre.example",
    phone="+234 1 234 5678",
    website="lagosfibre.example",
    payment_instructions="Pay by bank transfer to Lagos Fibre & Mobile Ltd, "
    "account 0123456789, Example Bank, quoting the invoice number.",
    revision=1,
)
DESCRIPTIONS = (
    "Calls to mobiles",
    "Data bundle 5 GB",
    "International calls to Ghana",
    "SMS bundle",
    "Fibre 100 Mbit/s monthly subscription",
    "Roaming data (EU zone)",
)
STATUSES = (InvoiceStatus.UNPAID, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID)


def document(n: int, lines: int) -> InvoiceDocument:
    """The ``n``-th benchmark invoice, different enough from its neighbours to be honest."""
    start = date(2026, 3, 1)
    charges = tuple(
        DocumentLine(
            f"+23480{n % 1000:04d}{k:03d}",
            f"{DESCRIPTIONS[(n + k) % 6]} #{k}",
            start + timedelta(days=k % 31),
            150 + 37 * k + n % 100,
        )
        for k in range(lines)
    )
    total = sum(line.amount for line in charges)
    status = STATUSES[n % 3]
    paid = {
        InvoiceStatus.UNPAID: 0,
        InvoiceStatus.PARTIALLY_PAID: total // 2,
        InvoiceStatus.PAID: total,
    }[status]
    return InvoiceDocument(
        invoice_id=n,
        letterhead=LETTERHEAD,
        customer_name=NAMES[n % len(NAMES)],
        customer_address=f"{n} Marina Road\nLagos Island\nLagos",
        customer_email=f"c{n}@example.com",
        number=f"INV-{n:06d}",
        kind=InvoiceKind.REGULAR,
        currency="USD",
        period_start=start,
        period_last_day=date(2026, 3, 31),
        issue_date=date(2026, 4, 1),
        due_date=date(2026, 4, 15),
        lines=charges,
        previous_balance=1200 + n,
        payments_in_period=1200,
        total=total,
        balance_due=total + n,
        amount_paid=paid,
        amount_due=total - paid,
        status=status,
    )


def render_only(invoices: int, lines: int) -> None:
    documents = [document(n, lines) for n in range(1, invoices + 1)]
    render_invoice_pdf(documents[0])  # warm-up: imports, font metrics
    wall, cpu = time.perf_counter(), time.process_time()
    sizes = [len(render_invoice_pdf(d)) for d in documents]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"{invoices} invoices x {lines} lines in {wall:.2f} s "
        f"({cpu:.2f} s CPU), {sum(sizes) / len(sizes) / 1024:.1f} KiB each"
    )
    print(
        f"{invoices / wall:.0f} PDFs/s wall, {invoices / cpu:.0f} PDFs/s per core "
        f"({1000 * cpu / invoices:.2f} ms CPU each)"
    )


async def after_bill_run(database_url: str, invoices: int, lines: int) -> None:
    await fresh_database(database_url)
    db = Database(Settings(database_url=database_url, run_worker=False))
    await billrun_bench.seed(db, invoices, lines)
    now = billrun_bench.PERIOD_END_UTC + timedelta(minutes=1)
    async with db.transaction() as session:
        await billrun.run_bill_run(session, now)
    wall, cpu, rendered = time.perf_counter(), time.process_time(), 0
    while True:
        async with db.transaction() as session:
            stale = await invoice_pdfs.stale_invoice_ids(session, RENDER_BATCH)
            rendered += len(await render_and_store(session, stale, now))
        if len(stale) < RENDER_BATCH:
            break
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await db.dispose()
    print(
        f"render job [{db.engine.dialect.name}]: {rendered} invoices x {lines} lines "
        f"after a bill run, in {wall:.2f} s ({cpu:.2f} s CPU in this process)"
    )
    print(f"{rendered / wall:.0f} PDFs/s gathered, drawn and stored")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pdf")
    parser.add_argument("--invoices", type=int, default=500)
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--after-bill-run", action="store_true")
    parser.add_argument("--database-url", default=os.environ.get("KASSA_BENCH_DATABASE_URL"))
    args = parser.parse_args(argv)
    if not args.after_bill_run:
        render_only(args.invoices, args.lines)
        return
    url = args.database_url or sqlite_url(Path(tempfile.mkdtemp()) / "bench.db")
    asyncio.run(after_bill_run(normalise_database_url(url), args.invoices, args.lines))


if __name__ == "__main__":
    main()
