"""Bill-run benchmark: N customers with C uninvoiced charges each, invoiced in one run.

    .venv/bin/python -m bench.billrun --customers 100000 --charges 10 [--database-url URL]

Seeding is bulk Core inserts through the bulk factories of ``tests/factories.py`` (it is not
what is measured); the figure is the wall time of ``run_bill_run`` closing every customer's
period, on a freshly migrated database.  The charges are seeded without their ledger
entries: the bill run does not read the ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bench.scratch import fresh_database
from billing import billrun
from billing.db import Database
from billing.models import (
    Account,
    Charge,
    ChargeKind,
    Invoice,
    InvoiceLine,
    LedgerTransaction,
    TransactionKind,
)
from settings import Settings, normalise_database_url, sqlite_url
from tests.factories import BULK_CHUNK, insert_customers, insert_rows

PERIOD_START = date(2026, 10, 1)
PERIOD_END_UTC = datetime(2026, 11, 1, tzinfo=UTC)


async def seed(db: Database, customers: int, charges: int) -> None:
    created = datetime(2026, 10, 1, tzinfo=UTC)
    ids = range(1, customers + 1)
    await insert_customers(
        db, ids, PERIOD_START, PERIOD_END_UTC, created, email=lambda i: f"c{i}@example.com"
    )
    await insert_rows(
        db,
        Account,
        [
            {
                "id": i,
                "customer_id": i,
                "number": f"+1555{i:07d}",
                "product": "Mobile",
                "status": "ACTIVE",
                "created_at": created,
            }
            for i in ids
        ],
    )
    await insert_rows(
        db,
        LedgerTransaction,
        [
            {
                "id": 1,
                "kind": TransactionKind.CHARGE,
                "description": "bench seed",
                "created_at": created,
            }
        ],
    )
    rows = []
    for customer in ids:
        for n in range(charges):
            rows.append(
                {
                    "customer_id": customer,
                    "account_id": customer,
                    "kind": ChargeKind.USAGE,
                    "description": f"Usage {n}",
                    "amount": 100 + n,
                    "currency": "USD",
                    "service_at": created + timedelta(days=n % 28, hours=n),
                    "posted_at": created,
                    "status": "POSTED",
                    "transaction_id": 1,
                }
            )
        if len(rows) >= BULK_CHUNK * 4:
            await insert_rows(db, Charge, rows)
            rows = []
    await insert_rows(db, Charge, rows)
    if db.engine.dialect.name == "postgresql":
        async with db.engine.begin() as conn:
            for table in ("ledger_accounts", "customers", "accounts", "ledger_transactions"):
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            await conn.exec_driver_sql("ANALYZE")


async def main(database_url: str, customers: int, charges: int) -> None:
    await fresh_database(database_url)
    db = Database(Settings(database_url=database_url, run_worker=False))
    started = time.perf_counter()
    await seed(db, customers, charges)
    seeded = time.perf_counter() - started
    started = time.perf_counter()
    async with db.transaction() as session:
        invoices = await billrun.run_bill_run(session, PERIOD_END_UTC + timedelta(minutes=1))
    elapsed = time.perf_counter() - started
    async with db.session() as session:
        made = await session.scalar(select(func.count()).select_from(Invoice))
        lines = await session.scalar(select(func.count()).select_from(InvoiceLine))
    await db.dispose()
    backend = db.engine.dialect.name
    print(
        f"bill run [{backend}]: {customers} customers x {charges} charges "
        f"(seeded in {seeded:.1f} s)"
    )
    print(f"  invoices {made} (reported {invoices}), lines {lines}")
    print(
        f"  elapsed {elapsed:.1f} s = {customers / elapsed:,.0f} customers/s, "
        f"{customers * charges / elapsed:,.0f} charges/s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--charges", type=int, default=10)
    parser.add_argument("--database-url", default=os.environ.get("KASSA_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    url = args.database_url or sqlite_url(Path(tempfile.mkdtemp()) / "bench.db")
    asyncio.run(main(normalise_database_url(url), args.customers, args.charges))
