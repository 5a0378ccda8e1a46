"""The bill run: close every billing period that has ended, in each customer's time zone, once.

The work list is ``customers.next_bill_at <= now`` (the UTC instant the open period ends in
the customer's zone).  The run is split into batch jobs that any number of workers share:

* The singleton :data:`BILL_RUN_JOB` plans a run: one query cuts the work list into ranges
  of :data:`BATCH_SIZE` customer ids (a window function, so a million customers cost one
  statement) and one insert schedules a :data:`BATCH_JOB` per range, due now.  It schedules
  itself again at the same instant, after the batches (jobs run in due-time, then id
  order), to plan the next wake-up once they are done.  While batches are still pending it
  plans nothing — a range is never worked twice at once — and looks again later.
* Each :data:`BATCH_JOB` closes its range in the job's own transaction (:mod:`billing.jobs`):
  the range's due customers are locked, their elapsed periods worked out in Python, all their
  invoices made by the set-based :func:`billing.invoices.issue_invoices`, and one statement
  moves them on to their open period.  Workers claim batches with ``FOR UPDATE SKIP
  LOCKED`` on PostgreSQL (on SQLite one worker runs), so no lock is held across the run, a
  batch that fails as a whole is retried alone, and a worker that dies mid-batch leaves its
  batch pending — its transaction rolled back — for the next worker: the run resumes where
  it stopped.

Exactly once: a customer's ``period_start``/``next_bill_at`` move in the same transaction as
its invoices and the batch job's completion, so a batch run again finds nothing to do, and
the unique index ``uq_invoices_regular_period`` refuses a second REGULAR invoice for a
period outright.

A customer several periods behind (the job was late, the test clock jumped) gets one invoice
per elapsed period, each with its own period's charges.  CLOSED customers get no invoices,
but their periods still move on so they leave the work list; a charge posted to a closed
customer is invoiced out of turn (the final invoice) or by the first regular invoice after the
customer is reopened.

One customer never stops the run (:mod:`billing.run_failures`): a batch that fails is split
until the failing customer is alone, and that customer is skipped — its period not closed,
so it stays on the work list — and recorded for the administrators; the run goes on with
the others and tries it again after a backoff, waking for that retry if nothing else is due.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, Date, Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import bulk, invoices, jobs, run_failures
from billing.models import (
    Customer,
    CustomerStatus,
    InvoiceKind,
    Job,
    JobStatus,
    RunKind,
    UTCDateTime,
    table_of,
)
from billing.periods import BillingPeriod, Period, next_period, period_containing

log = logging.getLogger("kassa.billing.billrun")

#: The singleton job that plans the bill run (its handler is :func:`bill_run_job`).
BILL_RUN_JOB = "bill_run"
#: The job that closes one range of customers (:func:`bill_run_batch_job`).
BATCH_JOB = "bill_run_batch"
#: Customers per batch: large enough to amortise each statement, small enough for the locks,
#: the bind-parameter limits and the work a failed batch redoes.  A ``bill_run`` job's
#: payload may ask for another size (``batch_size``).
BATCH_SIZE = 1000
#: How soon the planner looks again while another worker is still running a batch.
RUN_POLL = timedelta(seconds=5)


@lru_cache(maxsize=4096)
def elapsed_periods(
    kind: BillingPeriod, anchor: date, period_start: date, time_zone: str, now: datetime
) -> tuple[tuple[Period, ...], Period]:
    """The periods from ``period_start`` that have ended by ``now`` (oldest first), and the
    period that is open at ``now``.

    A period ends at local midnight of its end date in ``time_zone``, so two customers with
    the same dates in Auckland and Los Angeles close almost a day apart.  Cached: the
    customers of a bill-run batch mostly share their period, zone and run instant.
    """
    period = period_containing(kind, period_start, anchor)
    ended = []
    while period.end_utc(time_zone) <= now:
        ended.append(period)
        period = next_period(kind, period, anchor)
    return tuple(ended), period


def _due(now: datetime) -> Any:
    """Customers whose open period has ended, but not those whose last failure waits for
    its retry."""
    return (Customer.next_bill_at <= now) & ~run_failures.waiting(
        RunKind.BILL_RUN, now, Customer.id
    )


async def _due_ranges(
    session: AsyncSession, now: datetime, batch_size: int
) -> list[tuple[int, int]]:
    """The work list cut into ranges of ``batch_size`` due customers, as (first id, last id),
    in one statement."""
    numbered = (
        select(
            Customer.id,
            ((func.row_number().over(order_by=Customer.id) - 1) // batch_size).label("batch"),
        )
        .where(_due(now))
        .subquery()
    )
    rows = await session.execute(
        select(func.min(numbered.c.id), func.max(numbered.c.id))
        .group_by(numbered.c.batch)
        .order_by(numbered.c.batch)
    )
    return [(int(first), int(last)) for first, last in rows.all()]


async def _due_customers(
    session: AsyncSession, now: datetime, first: int, last: int
) -> list[Row[Any]]:
    """The range's customers whose open period has ended, locked against other writers."""
    query = (
        invoices.billee_query()
        .add_columns(
            Customer.status, Customer.billing_period, Customer.billing_anchor, Customer.period_start
        )
        .where(Customer.id.between(first, last), _due(now))
        .order_by(Customer.id)
    )
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        query = query.with_for_update(of=Customer)
    return list((await session.execute(query)).all())


async def _move_on(
    session: AsyncSession, moves: list[tuple[int, date, datetime]], now: datetime
) -> None:
    """Set each customer's open period (id, first day, end instant) in one UPDATE."""
    customers = table_of(Customer)
    move = bulk.rows_table(
        session, "move", [("id", BigInteger()), ("start", Date()), ("ends", UTCDateTime())], moves
    )
    await session.execute(
        update(customers)
        .where(bulk.matching(customers.c.id, move.c.id, [m[0] for m in moves]))
        .values(period_start=move.c.start, next_bill_at=move.c.ends, updated_at=now)
    )


async def _close_batch(session: AsyncSession, rows: Sequence[Row[Any]], now: datetime) -> int:
    """Invoice the batch's elapsed periods and move each customer on to its open period."""
    closings = []
    moves = []
    for row in rows:
        ended, open_period = elapsed_periods(
            row.billing_period, row.billing_anchor, row.period_start, row.time_zone, now
        )
        if row.status != CustomerStatus.CLOSED:
            billee = invoices.billee_from_row(row)
            closings += [invoices.Closing(billee, period, InvoiceKind.REGULAR) for period in ended]
        moves.append((row.id, open_period.start, open_period.end_utc(row.time_zone)))
    await _move_on(session, moves, now)
    # Last, as it numbers the invoices: the number sequence stays locked until the commit.
    return len(await invoices.issue_invoices(session, closings, now))


async def close_range(session: AsyncSession, first: int, last: int, now: datetime) -> int:
    """Close the ended periods of the due customers with ids ``first`` to ``last``; returns
    how many invoices were made.  A customer whose closing fails is skipped and recorded (see
    the module docstring)."""
    closed = await run_failures.isolate(
        session,
        RunKind.BILL_RUN,
        await _due_customers(session, now, first, last),
        lambda row: run_failures.Subject(row.id),
        lambda chunk: _close_batch(session, chunk, now),
        now,
        log,
    )
    return sum(closed.results)


async def wake_at(session: AsyncSession, at: datetime) -> None:
    """Have the bill run wake by ``at`` (a customer's open period ends then); a wake-up
    already planned earlier stays."""
    await jobs.schedule(session, BILL_RUN_JOB, at, unique_key=BILL_RUN_JOB)


async def _schedule_next_run(session: AsyncSession, now: datetime) -> None:
    """Wake the bill run again when the earliest open period ends, or for the first retry
    of a customer that failed, whichever comes first."""
    first = await session.scalar(
        select(func.min(Customer.next_bill_at)).where(
            ~run_failures.waiting(RunKind.BILL_RUN, now, Customer.id)
        )
    )
    retry = await run_failures.next_retry_at(session, RunKind.BILL_RUN, now)
    wake = min((at for at in (first, retry) if at is not None), default=None)
    if wake is not None:
        await wake_at(session, wake)


async def run_bill_run(session: AsyncSession, now: datetime, batch_size: int = BATCH_SIZE) -> int:
    """The whole run in the caller's transaction, batch after batch (tests and benchmarks;
    the worker runs it as jobs): close every period that has ended by ``now``; returns how
    many invoices were made."""
    issued = 0
    for first, last in await _due_ranges(session, now, batch_size):
        issued += await close_range(session, first, last, now)
    await _schedule_next_run(session, now)
    return issued


async def _first_pending_batch(session: AsyncSession) -> datetime | None:
    """When the earliest batch still to run falls due (it may be running now), if any."""
    return await session.scalar(
        select(func.min(Job.due_at)).where(Job.status == JobStatus.PENDING, Job.kind == BATCH_JOB)
    )


@jobs.handler(BILL_RUN_JOB)
async def bill_run_job(session: AsyncSession, payload: dict[str, Any], now: datetime) -> None:
    """The singleton ``bill_run`` job: plan the run's batches, or once they are done, the next
    wake-up.  Idempotent, since closed periods leave the work list."""
    pending = await _first_pending_batch(session)
    if pending is not None:  # a run is under way: look again once its batches may be done
        await wake_at(session, max(pending, now + RUN_POLL))
        return
    ranges = await _due_ranges(session, now, int(payload.get("batch_size", BATCH_SIZE)))
    if not ranges:
        await _schedule_next_run(session, now)
        return
    await jobs.schedule_many(
        session, BATCH_JOB, now, [{"first": first, "last": last} for first, last in ranges]
    )
    await wake_at(session, now)  # after the batches: they were scheduled first
    log.info("bill run planned: %d batch(es)", len(ranges))


@jobs.handler(BATCH_JOB)
async def bill_run_batch_job(session: AsyncSession, payload: dict[str, Any], now: datetime) -> None:
    """One batch of the bill run: idempotent, since closed periods leave the work list."""
    await close_range(session, int(payload["first"]), int(payload["last"]), now)
