"""Bill-run benchmark: N customers with C uninvoiced charges each, invoiced by W workers.

    .venv/bin/python -m bench.billrun --customers 100000 --charges 10 --workers 1 2 \\
        --rounds 3 [--database-url URL] [--batch-size 1000]

The database is seeded once (bulk inserts; the charges in one INSERT … SELECT per chunk of
customers, without their ledger entries: the bill run does not read the ledger) and copied
afresh for every measurement — a PostgreSQL database made from it as a template, an SQLite
file copied — so each run starts from the same state.  Rounds alternate the order of the
worker counts, so 1 and 2 workers see the same machine.

A measurement freezes the clock just after the customers' periods end, schedules the
``bill_run`` job and starts W worker processes, each importing everything and connecting
before the start signal; each then runs due jobs (:func:`billing.jobs.run_due`, what
``kassa worker`` runs every second), looking again every 10 ms when nothing is due — all but
rendering the invoices' PDFs, which they leave for later (``bench.pdf`` measures it; it
would queue behind the batches all the same, its job being scheduled after them).  The
figure is the wall time from the start signal until the last job of the run finished, as
the workers note it; the benchmark looks whether every batch is done five times a second
(its own queries kept off the cores it measures), then stops the workers.  It prints the CPU
seconds the workers and, on PostgreSQL, the database's server processes spent (``/proc``:
the database must run on this machine), so a run says which of the two bounds it.  Every
customer must have been invoiced exactly once, every charge put on an invoice.  On
PostgreSQL the database size (``pg_database_size``) is reported after the run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, literal, select, text, true, union_all
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench.scratch import fresh_database
from billing import billrun, clock, invoice_pdfs, jobs, worker
from billing.db import Database
from billing.models import (
    Account,
    Charge,
    ChargeKind,
    ChargeStatus,
    Customer,
    Invoice,
    Job,
    JobStatus,
    LedgerTransaction,
    TransactionKind,
    UTCDateTime,
    table_of,
)
from settings import Settings, normalise_database_url, sqlite_url
from tests.factories import insert_customers, insert_rows

PERIOD_START = date(2026, 10, 1)
PERIOD_END_UTC = datetime(2026, 11, 1, tzinfo=UTC)
#: The instant every measured run happens at: just after the periods end.
RUN_AT = PERIOD_END_UTC + timedelta(minutes=1)
#: Customers seeded per chunk (each chunk its own transactions).
SEED_CHUNK = 50_000
#: How often a worker with nothing to claim looks again while batches are still pending.
WORKER_POLL_SECONDS = 0.01
#: How often the benchmark asks whether the run is done.  The run's end is when the last
#: job finished, as the workers note it, so this only says how soon the benchmark notices;
#: asking less often keeps the benchmark's own queries off the cores it measures.
DONE_POLL_SECONDS = 0.2


async def _seed_charges(db: Database, first: int, last: int, charges: int) -> None:
    """``charges`` usage charges for each customer ``first``..``last``, in one statement."""
    created = datetime(2026, 10, 1, tzinfo=UTC)
    per_customer = union_all(  # a VALUES list SQLite can name the columns of
        *(
            select(
                literal(f"Usage {n}").label("description"),
                literal(100 + n).label("amount"),
                literal(created + timedelta(days=n % 28, hours=n), UTCDateTime()).label(
                    "service_at"
                ),
            )
            for n in range(charges)
        )
    ).subquery("per_customer")
    customers = table_of(Customer)
    accounts = table_of(Account)
    charge_table = table_of(Charge)
    async with db.transaction() as session:
        await session.execute(
            insert(charge_table).from_select(
                [
                    "customer_id",
                    "account_id",
                    "account_number",
                    "kind",
                    "description",
                    "amount",
                    "currency",
                    "service_at",
                    "posted_at",
                    "status",
                    "transaction_id",
                ],
                select(
                    customers.c.id,
                    accounts.c.id,
                    accounts.c.number,
                    literal(ChargeKind.USAGE, charge_table.c.kind.type),
                    per_customer.c.description,
                    per_customer.c.amount,
                    literal("USD"),
                    per_customer.c.service_at,
                    literal(created, UTCDateTime()),
                    literal(ChargeStatus.POSTED, charge_table.c.status.type),
                    literal(1),
                )
                .select_from(
                    customers.join(accounts, accounts.c.id == customers.c.id).join(
                        per_customer, true()
                    )
                )
                .where(customers.c.id.between(first, last))
                .order_by(customers.c.id),
            )
        )


async def seed(db: Database, customers: int, charges: int) -> None:
    """Monthly UTC customers ``1..customers``, one account each (same id) and ``charges``
    uninvoiced charges each, all due at :data:`PERIOD_END_UTC`."""
    created = datetime(2026, 10, 1, tzinfo=UTC)
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
    for first in range(1, customers + 1, SEED_CHUNK):
        ids = range(first, min(first + SEED_CHUNK, customers + 1))
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
        await _seed_charges(db, ids[0], ids[-1], charges)
    if db.engine.dialect.name == "postgresql":
        async with db.engine.begin() as conn:
            for table in ("ledger_accounts", "customers", "accounts", "ledger_transactions"):
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("ANALYZE" if db.is_sqlite else "VACUUM ANALYZE")


async def _seeded(database_url: str, customers: int, charges: int) -> str:
    """Make the database to copy for each run; returns its backend's name."""
    await fresh_database(database_url)
    db = Database(Settings(database_url=database_url, run_worker=False))
    await seed(db, customers, charges)
    await db.dispose()
    return db.engine.dialect.name


async def _copy(seed_url: str, run_url: str) -> None:
    """Make ``run_url`` a fresh copy of the seeded database."""
    seed, run = make_url(seed_url), make_url(run_url)
    if seed.get_backend_name() != "postgresql":
        assert seed.database and run.database
        shutil.copyfile(seed.database, run.database)
        return
    server = create_async_engine(seed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with server.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{run.database}"'))
            await conn.execute(text(f'CREATE DATABASE "{run.database}" TEMPLATE "{seed.database}"'))
    finally:
        await server.dispose()


@dataclass(frozen=True)
class _Signals:
    """What one worker process tells the benchmark, in shared memory."""

    #: When its last round that ran jobs ended (``time.monotonic``: one clock for every
    #: process).
    finished: Synchronized[float]
    #: 1 while it is inside a round: it may be running the run's last job, so the queue
    #: being empty does not yet mean the run is over.
    busy: Synchronized[int]


async def _render_later(session: AsyncSession, payload: dict[str, Any], now: datetime) -> None:
    """The invoices' PDFs are left for later: ``bench.pdf`` measures their rendering."""


async def _work(database_url: str, start: Event, signals: _Signals) -> None:
    """A worker: run due jobs, looking again every few milliseconds, until stopped."""
    db = Database(Settings(database_url=database_url, run_worker=False))
    jobs.load_handlers()
    jobs.handler(invoice_pdfs.RENDER_JOB)(_render_later)
    worker.freeze_startup_objects()  # as ``kassa worker`` does
    async with db.session() as session:  # connected before the start signal
        await session.execute(select(1))
    start.wait()
    while True:
        signals.busy.value = 1
        ran = await jobs.run_due(db)
        if ran:
            signals.finished.value = time.monotonic()
        signals.busy.value = 0
        if not ran:
            await asyncio.sleep(WORKER_POLL_SECONDS)


def _worker_process(database_url: str, start: Event, signals: _Signals) -> None:
    asyncio.run(_work(database_url, start, signals))


async def _wait_for_the_run(database_url: str, signals: list[_Signals]) -> None:
    """Return once the run is planned, its every batch done and every worker out of its
    round (a worker notes when it finished only then)."""
    db = Database(Settings(database_url=database_url, run_worker=False))
    left = select(func.count(Job.id)).where(
        Job.status == JobStatus.PENDING,
        (
            (Job.kind == billrun.BATCH_JOB)
            | ((Job.kind == billrun.BILL_RUN_JOB) & (Job.due_at <= RUN_AT))
        ),
    )
    while True:
        async with db.session() as session:
            if not await session.scalar(left) and not any(s.busy.value for s in signals):
                break
        await asyncio.sleep(DONE_POLL_SECONDS)
    await db.dispose()


async def _prepare_run(database_url: str, batch_size: int) -> None:
    db = Database(Settings(database_url=database_url, run_worker=False))
    async with db.transaction() as session:
        await clock.freeze(session, RUN_AT)
        await jobs.schedule(
            session,
            billrun.BILL_RUN_JOB,
            RUN_AT,
            {"batch_size": batch_size},
            unique_key=billrun.BILL_RUN_JOB,
        )
    await db.dispose()


async def _check(database_url: str, customers: int, charges: int) -> int | None:
    """Assert the run invoiced every customer once; the database size on PostgreSQL."""
    db = Database(Settings(database_url=database_url, run_worker=False))
    async with db.session() as session:
        made = await session.scalar(select(func.count()).select_from(Invoice))
        per_customer = await session.scalar(select(func.count(func.distinct(Invoice.customer_id))))
        lines = await session.scalar(
            select(func.count()).select_from(Charge).where(Charge.invoice_id.is_not(None))
        )
        size = (
            await session.scalar(text("SELECT pg_database_size(current_database())"))
            if not db.is_sqlite
            else None
        )
    await db.dispose()
    assert made == per_customer == customers, (made, per_customer, customers)
    assert lines == customers * charges, (lines, customers * charges)
    return size


def _cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time so far (``/proc``); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _backend_pids(database_url: str) -> list[int]:
    """The PostgreSQL server processes serving ``database_url`` (the workers' connections)."""
    db = Database(Settings(database_url=database_url, run_worker=False))
    async with db.session() as session:
        pids = await session.scalars(
            text(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        found = [int(pid) for pid in pids.all()]
    await db.dispose()
    return found


@dataclass(frozen=True)
class Measurement:
    """One run: its wall time, and the CPU seconds its workers and (on PostgreSQL) the
    database's server processes spent — which of the two bounds the run."""

    elapsed: float
    workers_cpu: float
    database_cpu: float | None


def measure(database_url: str, workers: int, batch_size: int) -> Measurement:
    """One run by ``workers`` processes."""
    asyncio.run(_prepare_run(database_url, batch_size))
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Event()
    signals = [_Signals(spawn.Value("d", 0.0), spawn.Value("b", 0)) for _ in range(workers)]
    processes = [
        spawn.Process(target=_worker_process, args=(database_url, start, own)) for own in signals
    ]
    for process in processes:
        process.start()
    time.sleep(3)  # every worker imported and connected
    on_postgresql = make_url(database_url).get_backend_name() == "postgresql"
    backends = asyncio.run(_backend_pids(database_url)) if on_postgresql else []
    for _ in range(60):  # more workers than cores take longer to start
        if not on_postgresql or len(backends) >= workers:
            break
        time.sleep(1)
        backends = asyncio.run(_backend_pids(database_url))
    before = {pid: _cpu_seconds(pid) for pid in [p.pid for p in processes if p.pid] + backends}
    started = time.monotonic()
    start.set()
    asyncio.run(_wait_for_the_run(database_url, signals))
    spent = {pid: _cpu_seconds(pid) - cpu for pid, cpu in before.items()}
    elapsed = max(own.finished.value for own in signals) - started
    for process in processes:
        process.terminate()
        process.join()
    return Measurement(
        elapsed,
        sum(spent[p.pid] for p in processes if p.pid),
        sum(spent[pid] for pid in backends) if on_postgresql else None,
    )


def _urls(database_url: str | None) -> tuple[str, str]:
    """The seeded database's URL and the measured copy's."""
    if database_url is None:
        folder = Path(tempfile.mkdtemp())
        return sqlite_url(folder / "seed.db"), sqlite_url(folder / "run.db")
    url = make_url(normalise_database_url(database_url))
    if url.get_backend_name() == "postgresql":
        seed = url.set(database=f"{url.database}_seed")
        return seed.render_as_string(hide_password=False), url.render_as_string(hide_password=False)
    assert url.database
    return str(url.set(database=url.database + ".seed")), str(url)


def main(args: argparse.Namespace) -> None:
    seed_url, run_url = _urls(args.database_url)
    started = time.perf_counter()
    backend = asyncio.run(_seeded(seed_url, args.customers, args.charges))
    print(
        f"bill run [{backend}]: {args.customers:,} customers x {args.charges} charges, "
        f"batches of {args.batch_size} (seeded in {time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    timings: dict[int, list[float]] = {w: [] for w in args.workers}
    for round_ in range(args.rounds):
        order = args.workers if round_ % 2 == 0 else list(reversed(args.workers))
        for workers in order:
            asyncio.run(_copy(seed_url, run_url))
            run = measure(run_url, workers, args.batch_size)
            size = asyncio.run(_check(run_url, args.customers, args.charges))
            timings[workers].append(run.elapsed)
            grown = f", database {size / 2**30:.2f} GiB after the run" if size else ""
            database_cpu = (
                f", PostgreSQL {run.database_cpu:.1f} s" if run.database_cpu is not None else ""
            )
            print(
                f"  round {round_ + 1}, {workers} worker(s): {run.elapsed:.1f} s = "
                f"{args.customers / run.elapsed:,.0f} customers/s{grown}; CPU: workers "
                f"{run.workers_cpu:.1f} s{database_cpu}",
                flush=True,
            )
    medians = {w: statistics.median(t) for w, t in timings.items()}
    for workers, median in medians.items():
        print(
            f"  median of {args.rounds}, {workers} worker(s): {median:.1f} s = "
            f"{args.customers / median:,.0f} customers/s, "
            f"{args.customers * args.charges / median:,.0f} charges/s"
        )
    if len(medians) > 1:
        fewest, most = min(medians), max(medians)
        print(
            f"  speed-up {fewest} -> {most} workers: {medians[fewest] / medians[most]:.2f}x "
            f"(median of the per-round ratios: "
            f"{statistics.median(a / b for a, b in zip(timings[fewest], timings[most], strict=True)):.2f}x)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--charges", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=billrun.BATCH_SIZE)
    parser.add_argument("--database-url", default=os.environ.get("KASSA_BENCH_DATABASE_URL"))
    main(parser.parse_args())
