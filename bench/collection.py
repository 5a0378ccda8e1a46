"""Collection-run benchmark: N invoices due today, each charged once to an approving card
through the simulator with 100 ms per call.

    .venv/bin/python -m bench.collection --invoices 10000 --latency-ms 100 [--database-url URL]

Seeding is bulk Core inserts (not measured): customers on auto-payment with a default
simulator card and a ledger balance, one UNPAID invoice each and its SCHEDULED attempt due
now.  The figure is the wall time of one ``run_collection``: claiming, the processor calls
(at most ``--concurrency`` in flight), and booking every payment through the card-charge
flow (``billing.card_charges``: each charge opened as a PENDING payment before its call).
Then the card network's record (the simulator) and the payments are checked for double
charges: an invoice with more than one successful charge, or more than one payment.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func, insert, select

from bench.scratch import fresh_database
from billing import clock
from billing.collection_run import run_collection
from billing.db import Database
from billing.models import (
    AttemptStatus,
    CollectionAttempt,
    Customer,
    CustomerStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    LedgerAccount,
    LedgerAccountKind,
    Payment,
    PaymentMethod,
)
from billing.periods import BillingPeriod
from billing.processing import ChargeOutcome
from processors import registry, simulator
from settings import Settings, normalise_database_url, sqlite_url

NOW = datetime(2029, 9, 15, 9, 30, tzinfo=UTC)
DUE = date(2029, 9, 15)
CHUNK = 5000


async def _insert(db: Database, table: type, rows: list[dict]) -> None:  # type: ignore[type-arg]
    for start in range(0, len(rows), CHUNK):
        async with db.transaction() as session:
            await session.execute(insert(table), rows[start : start + CHUNK])


def _token(n: int) -> str:
    """A simulator token for the approving test card (the simulator reads its behaviour)."""
    return f"sim_tok_approve_visa_4242_122035_{n:016x}"


async def seed(db: Database, invoices: int) -> None:
    created = datetime(2029, 8, 1, tzinfo=UTC)
    ids = range(1, invoices + 1)
    total = {i: 1000 + i % 5000 for i in ids}
    await _insert(
        db,
        LedgerAccount,
        [
            {
                "id": i,
                "kind": LedgerAccountKind.CUSTOMER,
                "owner_key": f"customer:{i}",
                "currency": "USD",
                "balance": total[i],
            }
            for i in ids
        ],
    )
    await _insert(
        db,
        Customer,
        [
            {
                "id": i,
                "name": f"Customer {i}",
                "currency": "USD",
                "time_zone": "UTC",
                "billing_period": BillingPeriod.MONTHLY,
                "billing_anchor": date(2029, 8, 1),
                "period_start": date(2029, 9, 1),
                "next_bill_at": datetime(2029, 10, 1, tzinfo=UTC),
                "credit_limit": 0,
                "status": CustomerStatus.ACTIVE,
                "auto_payment": True,
                "ledger_account_id": i,
                "created_at": created,
                "updated_at": created,
            }
            for i in ids
        ],
    )
    await _insert(
        db,
        PaymentMethod,
        [
            {
                "id": i,
                "customer_id": i,
                "processor": "simulator",
                "token": _token(i),
                "brand": "visa",
                "last4": "4242",
                "exp_month": 12,
                "exp_year": 2035,
                "is_default": True,
                "created_at": created,
            }
            for i in ids
        ],
    )
    await _insert(
        db,
        Invoice,
        [
            {
                "id": i,
                "customer_id": i,
                "owner_key": "provider",
                "number": f"INV-{i:06d}",
                "kind": InvoiceKind.REGULAR,
                "currency": "USD",
                "period_start": date(2029, 8, 1),
                "period_end": date(2029, 9, 1),
                "issue_date": date(2029, 9, 1),
                "due_date": DUE,
                "previous_balance": 0,
                "payments_in_period": 0,
                "total": total[i],
                "amount_paid": 0,
                "status": InvoiceStatus.UNPAID,
                "created_at": created,
            }
            for i in ids
        ],
    )
    await _insert(
        db,
        CollectionAttempt,
        [
            {
                "id": i,
                "invoice_id": i,
                "customer_id": i,
                "scheduled_for": DUE,
                "scheduled_at": datetime(2029, 9, 15, 9, tzinfo=UTC),
                "status": AttemptStatus.SCHEDULED,
                "currency": "USD",
                "created_at": created,
            }
            for i in ids
        ],
    )
    async with db.transaction() as session:
        await clock.freeze(session, NOW)
    if db.engine.dialect.name == "postgresql":
        async with db.engine.begin() as conn:
            for table in (
                "ledger_accounts",
                "customers",
                "payment_methods",
                "invoices",
                "collection_attempts",
            ):
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            await conn.exec_driver_sql("ANALYZE")


async def main(database_url: str, invoices: int, latency_ms: int, concurrency: int) -> None:
    await fresh_database(database_url)
    db = Database(Settings(database_url=database_url, run_worker=False))
    started = time.perf_counter()
    await seed(db, invoices)
    seeded = time.perf_counter() - started
    simulator.reset()
    registry.configure("simulator", latency_ms=latency_ms)
    started = time.perf_counter()
    report = await run_collection(db, NOW, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    async with db.session() as session:
        paid = await session.scalar(
            select(func.count()).select_from(Invoice).where(Invoice.status == InvoiceStatus.PAID)
        )
        payments = Counter((await session.scalars(select(Payment.invoice_id))).all())
        attempt_invoice = dict(
            (
                await session.execute(select(CollectionAttempt.id, CollectionAttempt.invoice_id))
            ).all()
        )
    network = simulator.SimulatorProcessor().charge_log()
    charged = Counter(
        attempt_invoice[int(key.removeprefix("attempt-"))]
        for key, result in network
        if result.status == ChargeOutcome.SUCCEEDED
    )
    doubles = sum(1 for n in charged.values() if n > 1) + sum(1 for n in payments.values() if n > 1)
    await db.dispose()
    calls_floor = invoices / concurrency * latency_ms / 1000
    print(
        f"collection run [{db.engine.dialect.name}]: {invoices} invoices due, simulator "
        f"{latency_ms} ms per call, {concurrency} calls at once (seeded in {seeded:.1f} s)"
    )
    print(
        f"  succeeded {report.succeeded}, failed {report.failed}, unknown {report.unknown}; "
        f"invoices PAID {paid}; processor calls {len(network)}"
    )
    print(
        f"  elapsed {elapsed:.1f} s = {invoices / elapsed:,.0f} invoices/s "
        f"(processor calls alone: {calls_floor:.1f} s)"
    )
    print(f"  double charges: {doubles}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--database-url", default=os.environ.get("KASSA_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    url = args.database_url or sqlite_url(Path(tempfile.mkdtemp()) / "bench.db")
    asyncio.run(main(normalise_database_url(url), args.invoices, args.latency_ms, args.concurrency))
