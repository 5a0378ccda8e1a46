"""A bill run survives SIGKILL: after a worker is killed mid-run and started again, every
customer is invoiced exactly once (issue 15, item 2).

Real ``kassa worker`` processes run the bill run's batch jobs against this test's database —
two on PostgreSQL, where they share the batches (SKIP LOCKED), one on SQLite.  Once a few
batches have committed, the first worker is killed with SIGKILL; it spends nearly all its
time inside a batch's transaction, which dies with it.  No batch is half-written (the
invoices come in whole batches), the other worker goes on, a worker started again takes
up what is left, and in the end each customer has one invoice, numbered without a gap, and
has moved on to its next period.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select

from billing import jobs
from billing.billrun import BATCH_JOB, BILL_RUN_JOB
from billing.db import Database
from billing.models import (
    Charge,
    Customer,
    Invoice,
    Job,
    JobStatus,
    LedgerAccount,
    RunFailure,
)
from settings import Settings
from tests.factories import (
    T0,
    freeze_clock,
    insert_customers,
    make_customer_class,
    new_party,
    post_usage,
)

#: Customers and the batch size of the run: enough batches that the kill lands mid-run.
CUSTOMERS = 1200
BATCH = 20
#: Customers with a real charge each (the others' class issues empty invoices).
CHARGED = 3
UTC_APRIL_1 = datetime(2026, 4, 1, tzinfo=UTC)
KASSA = Path(sys.executable).parent / "kassa"
#: How long the test waits for the workers at most.
PATIENCE_SECONDS = 240


async def _seed(db: Database) -> list[int]:
    """:data:`CUSTOMERS` monthly customers due on 1 April; returns the charged ones' ids."""
    charged = []
    for n in range(CHARGED):
        party = await new_party(db, account_number=f"+1555000{n}")
        await post_usage(db, party, 100 * (n + 1), T0)
        charged.append(party.id)
    async with db.transaction() as session:
        statements = (
            await make_customer_class(session, "Statements", issue_empty_invoices=True)
        ).id
        first = 1 + max(
            await session.scalar(select(func.max(Customer.id))) or 0,
            await session.scalar(select(func.max(LedgerAccount.id))) or 0,
        )
    await insert_customers(
        db,
        range(first, first + CUSTOMERS - CHARGED),
        UTC_APRIL_1.date().replace(month=3),
        UTC_APRIL_1,
        T0,
        class_id=statements,
    )
    return charged


async def _start_run(db: Database) -> None:
    """Freeze the clock after the periods end and schedule the run in small batches."""
    await freeze_clock(db, UTC_APRIL_1 + timedelta(minutes=1))
    async with db.transaction() as session:
        await session.execute(delete(Job))  # the wake-ups the customers' creation planned
        await jobs.schedule(
            session,
            BILL_RUN_JOB,
            UTC_APRIL_1 + timedelta(minutes=1),
            {"batch_size": BATCH},
            unique_key=BILL_RUN_JOB,
        )


async def _worker(settings: Settings) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(KASSA),
        "worker",
        env={**os.environ, "KASSA_DATABASE_URL": settings.database_url},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _invoiced(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count(Invoice.id))) or 0)


async def _run_finished(db: Database) -> bool:
    """Whether every batch is done and the planner has looked again after them."""
    async with db.session() as session:
        left = await session.scalar(
            select(func.count(Job.id)).where(
                Job.status == JobStatus.PENDING,
                (Job.kind == BATCH_JOB)
                | ((Job.kind == BILL_RUN_JOB) & (Job.due_at <= UTC_APRIL_1 + timedelta(minutes=1))),
            )
        )
    return not left


async def _invoiced_at_least(db: Database, count: int) -> bool:
    return await _invoiced(db) >= count


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(PATIENCE_SECONDS * 50):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"gave up waiting until {what}")


async def _stop(workers: list[asyncio.subprocess.Process]) -> None:
    for worker in workers:
        if worker.returncode is None:
            worker.terminate()
        await worker.wait()


async def test_a_worker_killed_mid_run_leaves_every_customer_invoiced_exactly_once(
    db: Database, settings: Settings
) -> None:
    charged = await _seed(db)
    await _start_run(db)
    workers = [await _worker(settings) for _ in range(1 if db.is_sqlite else 2)]
    try:
        await _until(lambda: _invoiced_at_least(db, 3 * BATCH), "a few batches committed")
        os.kill(workers[0].pid, signal.SIGKILL)
        assert await workers[0].wait() == -signal.SIGKILL
        at_kill = await _invoiced(db)
        assert 0 < at_kill < CUSTOMERS, "the run was not killed mid-way"
        assert at_kill % BATCH == 0  # whole batches only: the killed one left nothing
        workers[0] = await _worker(settings)  # started again
        await _until(lambda: _run_finished(db), "the run finished")
    finally:
        await _stop(workers)

    async with db.session() as session:
        per_customer = (
            await session.execute(
                select(Invoice.customer_id, func.count()).group_by(Invoice.customer_id)
            )
        ).all()
        assert len(per_customer) == CUSTOMERS
        assert {count for _, count in per_customer} == {1}
        numbers = (await session.scalars(select(Invoice.number).order_by(Invoice.number))).all()
        assert numbers == [f"INV-{n:06d}" for n in range(1, CUSTOMERS + 1)]
        lines = (
            await session.execute(
                select(Charge.customer_id, func.count(Charge.id))
                .where(Charge.invoice_id.is_not(None))
                .group_by(Charge.customer_id)
            )
        ).all()
        assert sorted(lines) == [(customer, 1) for customer in charged]
        moved_on = await session.scalars(select(Customer.next_bill_at).distinct())
        assert moved_on.all() == [datetime(2026, 5, 1, tzinfo=UTC)]
        assert (await session.scalars(select(RunFailure))).all() == []
        batches = (await session.scalars(select(Job.status).where(Job.kind == BATCH_JOB))).all()
        assert batches == [JobStatus.DONE] * (CUSTOMERS // BATCH)
