"""The bill run: close every billing period that has ended, in each customer's time zone, once.

The work list is ``customers.next_bill_at <= now`` (the UTC instant the open period ends in
the customer's zone).  Customers are taken in batches of :data:`BATCH_SIZE`, in id order and
locked; for each batch the elapsed periods are worked out in Python, all their invoices are
made by the set-based :func:`billing.invoices.issue_invoices`, and one executemany moves
the customers on to their open period.

Exactly once: a customer's ``period_start``/``next_bill_at`` move in the same transaction as
its invoices, so a second run at the same instant finds nothing to do, and the unique index
``uq_invoices_regular_period`` refuses a second REGULAR invoice for a period outright.

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
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import invoices, jobs, run_failures
from billing.models import Customer, CustomerStatus, InvoiceKind, RunKind, table_of
from billing.periods import BillingPeriod, Period, next_period, period_containing

log = logging.getLogger("kassa.billing.billrun")

#: The singleton job that runs the bill run (its handler is :func:`bill_run_job`).
BILL_RUN_JOB = "bill_run"
#: Customers per batch: large enough to amortise each statement, small enough for the locks
#: and the bind-parameter limits.
BATCH_SIZE = 1000


def elapsed_periods(
    kind: BillingPeriod, anchor: date, period_start: date, time_zone: str, now: datetime
) -> tuple[list[Period], Period]:
    """The periods from ``period_start`` that have ended by ``now`` (oldest first), and the
    period that is open at ``now``.

    A period ends at local midnight of its end date in ``time_zone``, so two customers with
    the same dates in Auckland and Los Angeles close almost a day apart.
    """
    period = period_containing(kind, period_start, anchor)
    ended = []
    while period.end_utc(time_zone) <= now:
        ended.append(period)
        period = next_period(kind, period, anchor)
    return ended, period


def _not_waiting(now: datetime) -> Any:
    """Customers that are not waiting for the retry of an earlier failure."""
    return ~run_failures.waiting(RunKind.BILL_RUN, now, Customer.id)


async def _due_customers(session: AsyncSession, now: datetime, after_id: int) -> list[Row[Any]]:
    """The next batch of customers whose open period has ended, locked against other writers
    (those whose last failure waits for its retry are passed over)."""
    query = (
        invoices.billee_query()
        .add_columns(
            Customer.status, Customer.billing_period, Customer.billing_anchor, Customer.period_start
        )
        .where(Customer.next_bill_at <= now, Customer.id > after_id, _not_waiting(now))
        .order_by(Customer.id)
        .limit(BATCH_SIZE)
    )
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        query = query.with_for_update(of=Customer)
    return list((await session.execute(query)).all())


async def _move_on(session: AsyncSession, moves: list[dict[str, Any]], now: datetime) -> None:
    """Set each customer's open period (first day, end instant) in one executemany."""
    customers = table_of(Customer)
    await session.execute(
        update(customers)
        .where(customers.c.id == bindparam("b_id"))
        .values(
            period_start=bindparam("b_start"), next_bill_at=bindparam("b_ends"), updated_at=now
        ),
        moves,
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
        moves.append(
            {
                "b_id": row.id,
                "b_start": open_period.start,
                "b_ends": open_period.end_utc(row.time_zone),
            }
        )
    issued = await invoices.issue_invoices(session, closings, now)
    await _move_on(session, moves, now)
    return len(issued)


async def wake_at(session: AsyncSession, at: datetime) -> None:
    """Have the bill run wake by ``at`` (a customer's open period ends then); a wake-up
    already planned earlier stays."""
    await jobs.schedule(session, BILL_RUN_JOB, at, unique_key=BILL_RUN_JOB)


async def _schedule_next_run(session: AsyncSession, now: datetime) -> None:
    """Wake the bill run again when the earliest open period ends, or for the first retry
    of a customer that failed, whichever comes first."""
    first = await session.scalar(select(func.min(Customer.next_bill_at)).where(_not_waiting(now)))
    retry = await run_failures.next_retry_at(session, RunKind.BILL_RUN, now)
    wake = min((at for at in (first, retry) if at is not None), default=None)
    if wake is not None:
        await wake_at(session, wake)


async def run_bill_run(session: AsyncSession, now: datetime) -> int:
    """Close every period that has ended by ``now``; returns how many invoices were made.

    A customer whose closing fails is skipped and recorded (see the module docstring)."""
    issued = 0
    after_id = 0
    while rows := await _due_customers(session, now, after_id):
        after_id = rows[-1].id
        closed = await run_failures.isolate(
            session,
            RunKind.BILL_RUN,
            rows,
            lambda row: run_failures.Subject(row.id),
            lambda chunk: _close_batch(session, chunk, now),
            now,
            log,
        )
        issued += sum(closed.results)
    await _schedule_next_run(session, now)
    return issued


@jobs.handler(BILL_RUN_JOB)
async def bill_run_job(session: AsyncSession, payload: dict[str, Any], now: datetime) -> None:
    """The singleton ``bill_run`` job: idempotent, since closed periods leave the work list."""
    await run_bill_run(session, now)
