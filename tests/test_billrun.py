"""The bill run closes every ended period, in each customer's own time zone, exactly once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, jobs
from billing.billrun import BATCH_SIZE, BILL_RUN_JOB, elapsed_periods, run_bill_run
from billing.db import Database
from billing.invoices import invoice_lines
from billing.models import (
    Customer,
    CustomerStatus,
    Invoice,
    InvoiceKind,
    Job,
    JobStatus,
    RunFailure,
)
from billing.periods import BillingPeriod, Period
from tests.factories import (
    T0,
    balance_of,
    freeze_clock,
    invoices_of,
    make_account,
    make_charge_at,
    make_customer,
    make_customer_class,
    new_party,
    post_usage,
)

UTC_APRIL_1 = datetime(2026, 4, 1, tzinfo=UTC)


async def _always_invoiced(session: AsyncSession) -> int:
    """A class whose periods are invoiced even with nothing on them, for tests of when
    periods close (a customer without charges gets no invoice otherwise)."""
    return (await make_customer_class(session, "Statements", issue_empty_invoices=True)).id


async def _invoice_count(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count(Invoice.id))) or 0)


def _periods(invoices: list[Invoice]) -> list[tuple[date, date]]:
    return [(i.period_start, i.period_end) for i in invoices]


def test_elapsed_periods_are_the_ended_ones_oldest_first_and_then_the_open_one() -> None:
    ended, open_period = elapsed_periods(
        BillingPeriod.MONTHLY,
        date(2026, 1, 10),
        date(2026, 1, 1),
        "UTC",
        datetime(2026, 3, 15, tzinfo=UTC),
    )
    assert ended == (
        Period(date(2026, 1, 1), date(2026, 2, 1)),
        Period(date(2026, 2, 1), date(2026, 3, 1)),
    )
    assert open_period == Period(date(2026, 3, 1), date(2026, 4, 1))


def test_a_period_ends_at_local_midnight_not_utc_midnight() -> None:
    just_before = datetime(2026, 3, 31, 10, 59, tzinfo=UTC)  # 23:59 on 31 March in Auckland
    for now, closed in ((just_before, 0), (just_before + timedelta(minutes=1), 1)):
        ended, _ = elapsed_periods(
            BillingPeriod.MONTHLY, date(2026, 3, 1), date(2026, 3, 1), "Pacific/Auckland", now
        )
        assert len(ended) == closed


async def test_running_the_bill_run_twice_at_the_same_instant_changes_nothing(
    db: Database,
) -> None:
    customer = await new_party(db)
    await post_usage(db, customer, 100, T0)
    await freeze_clock(db, UTC_APRIL_1)
    async with db.transaction() as session:
        assert await run_bill_run(session, UTC_APRIL_1) == 1
    async with db.transaction() as session:
        assert await run_bill_run(session, UTC_APRIL_1) == 0
    [invoice] = await invoices_of(db, customer.id)
    assert (invoice.period_start, invoice.kind, invoice.total) == (
        date(2026, 3, 1),
        InvoiceKind.REGULAR,
        100,
    )


async def test_test_clock_over_several_months_invoices_each_month_once(db: Database) -> None:
    await freeze_clock(db, datetime(2026, 1, 15, 12, tzinfo=UTC))
    customer = await new_party(db)
    for month in range(1, 7):  # one charge per month, each posted during its month
        await jobs.advance_clock(db, datetime(2026, month, 20, tzinfo=UTC))
        await post_usage(db, customer, 100 * month, datetime(2026, month, 20, tzinfo=UTC))
    await jobs.advance_clock(db, datetime(2026, 7, 2, tzinfo=UTC))
    await jobs.advance_clock(db, datetime(2026, 7, 3, tzinfo=UTC))  # nothing more to close

    invoices = await invoices_of(db, customer.id)
    assert _periods(invoices) == [(date(2026, m, 1), date(2026, m + 1, 1)) for m in range(1, 7)]
    assert [i.total for i in invoices] == [100 * m for m in range(1, 7)]
    assert [i.issue_date for i in invoices] == [date(2026, m + 1, 1) for m in range(1, 7)]
    async with db.session() as session:
        refreshed = await session.get(Customer, customer.id)
        assert refreshed is not None
        assert refreshed.period_start == date(2026, 7, 1)
        assert refreshed.next_bill_at == datetime(2026, 8, 1, tzinfo=UTC)
        pending = (
            await session.scalars(
                select(Job.due_at).where(Job.kind == BILL_RUN_JOB, Job.status == JobStatus.PENDING)
            )
        ).all()
        assert pending == [datetime(2026, 8, 1, tzinfo=UTC)]
        last = invoices[-1]
        assert last.balance_due == await balance_of(session, customer.id) == 2100


async def test_a_customer_several_periods_behind_gets_one_invoice_per_period(
    db: Database,
) -> None:
    customer = await new_party(db)
    for month, amount in ((3, 300), (4, 400), (5, 500), (6, 600)):
        await post_usage(db, customer, amount, datetime(2026, month, 10, tzinfo=UTC))
    # The worker was down: the clock jumps past three period ends without running jobs.
    await freeze_clock(db, datetime(2026, 6, 15, tzinfo=UTC))
    assert await jobs.run_due(db) >= 1

    invoices = await invoices_of(db, customer.id)
    assert _periods(invoices) == [(date(2026, m, 1), date(2026, m + 1, 1)) for m in (3, 4, 5)]
    assert [i.total for i in invoices] == [300, 400, 500]
    assert [i.previous_balance for i in invoices] == [0, 300, 700]
    async with db.session() as session:
        lines = await invoice_lines(session, [i.id for i in invoices])
    assert [[line.amount for line in lines[i.id]] for i in invoices] == [[300], [400], [500]]


async def test_customers_close_at_their_own_local_midnight(db: Database) -> None:
    await freeze_clock(db)
    async with db.transaction() as session:
        statements = await _always_invoiced(session)
        auckland = await make_customer(session, time_zone="Pacific/Auckland", class_id=statements)
        los_angeles = await make_customer(
            session, time_zone="America/Los_Angeles", class_id=statements
        )
    auckland_midnight = datetime(2026, 3, 31, 11, tzinfo=UTC)  # 1 April 00:00 NZDT
    los_angeles_midnight = datetime(2026, 4, 1, 7, tzinfo=UTC)  # 1 April 00:00 PDT

    await jobs.advance_clock(db, auckland_midnight - timedelta(seconds=1))
    assert await _invoice_count(db) == 0
    await jobs.advance_clock(db, auckland_midnight)
    assert len(await invoices_of(db, auckland.id)) == 1
    assert await invoices_of(db, los_angeles.id) == []
    await jobs.advance_clock(db, los_angeles_midnight - timedelta(seconds=1))
    assert await invoices_of(db, los_angeles.id) == []
    await jobs.advance_clock(db, los_angeles_midnight)
    for customer in (auckland, los_angeles):
        [invoice] = await invoices_of(db, customer.id)
        assert (invoice.period_start, invoice.period_end, invoice.issue_date) == (
            date(2026, 3, 1),
            date(2026, 4, 1),
            date(2026, 4, 1),
        )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            BillingPeriod.DAILY,
            [(date(2026, 3, d), date(2026, 3, d + 1)) for d in range(16, 30)],
        ),
        # Anchored on the sign-up weekday: Monday 16 March.
        (
            BillingPeriod.WEEKLY,
            [(date(2026, 3, 16), date(2026, 3, 23)), (date(2026, 3, 23), date(2026, 3, 30))],
        ),
        # Anchored on the sign-up day of the month, the 16th.
        (
            BillingPeriod.MONTHLY_ANNIVERSARY,
            [(date(2026, 3, 16), date(2026, 4, 16)), (date(2026, 4, 16), date(2026, 5, 16))],
        ),
    ],
)
async def test_daily_weekly_and_anniversary_periods(
    db: Database,
    kind: BillingPeriod,
    expected: list[tuple[date, date]],
) -> None:
    await freeze_clock(db)
    async with db.transaction() as session:
        customer = await make_customer(
            session, billing_period=kind, class_id=await _always_invoiced(session)
        )
    end = (
        datetime(2026, 3, 30, 12, tzinfo=UTC)
        if kind != BillingPeriod.MONTHLY_ANNIVERSARY
        else datetime(2026, 5, 20, tzinfo=UTC)
    )
    await jobs.advance_clock(db, end)
    assert _periods(await invoices_of(db, customer.id)) == expected


async def test_closed_customers_are_not_billed_but_their_periods_move_on(db: Database) -> None:
    customer = await new_party(db, status=CustomerStatus.CLOSED)
    await post_usage(db, customer, 100, T0)
    await jobs.advance_clock(db, datetime(2026, 5, 2, tzinfo=UTC))
    assert await invoices_of(db, customer.id) == []
    async with db.session() as session:
        refreshed = await session.get(Customer, customer.id)
        assert refreshed is not None
        assert refreshed.period_start == date(2026, 5, 1)


async def test_a_period_cannot_be_invoiced_twice_even_if_the_work_list_is_wrong(
    db: Database,
) -> None:
    await freeze_clock(db)
    async with db.transaction() as session:
        customer = await make_customer(session, class_id=await _always_invoiced(session))
    await jobs.advance_clock(db, UTC_APRIL_1)
    async with db.transaction() as session:
        await session.execute(  # as if the customer had never been moved on
            update(Customer)
            .where(Customer.id == customer.id)
            .values(period_start=date(2026, 3, 1), next_bill_at=UTC_APRIL_1)
        )
        assert await run_bill_run(session, UTC_APRIL_1) == 0
    assert len(await invoices_of(db, customer.id)) == 1
    async with db.session() as session:  # the unique index refused it: a run failure
        failure = (await session.scalars(select(RunFailure))).one()
    assert (failure.customer_id, failure.code) == (customer.id, "INTERNAL_ERROR")
    assert "IntegrityError" in failure.message


async def test_a_run_larger_than_one_batch_invoices_every_customer(db: Database) -> None:
    await freeze_clock(db)
    count = BATCH_SIZE + 5
    async with db.transaction() as session:
        statements = await _always_invoiced(session)
        customers = [
            await make_customer(session, name=f"C{i}", class_id=statements) for i in range(count)
        ]
        accounts = [
            await make_account(session, c, number=f"N{i}") for i, c in enumerate(customers[:3])
        ]
        for account in accounts:
            await make_charge_at(session, account, 250, T0)
        await clock.freeze(session, UTC_APRIL_1)
    async with db.transaction() as session:
        assert await run_bill_run(session, UTC_APRIL_1) == count
    async with db.session() as session:
        numbers = (await session.scalars(select(Invoice.number).order_by(Invoice.id))).all()
        assert numbers == [f"INV-{n:06d}" for n in range(1, count + 1)]
        assert await session.scalar(select(func.sum(Invoice.total))) == 750
