"""Dunning: suspending customers whose invoices stay unpaid past the grace period, and
making them active again once nothing is overdue.

An invoice's grace period comes from its class's settings for its kind
(:func:`billing.collection.resolve_policy`).  On the local day after ``due date +
grace`` (from local midnight in the customer's zone) an ACTIVE customer with that invoice
still unpaid becomes SUSPENDED — the singleton ``customer_suspension`` job does this, set-based,
at the earliest such instant.  When the last OVERDUE invoice of a customer suspended *for
that reason* is settled (paid, credited or voided), :func:`reinstate_if_settled` makes it
ACTIVE again in the same transaction.  A customer suspended by hand (cause STAFF) is never
reinstated automatically, and CLOSED customers are left alone.

Both transitions are recorded in ``status_changes`` (causes GRACE_PERIOD_EXCEEDED and
NOTHING_OVERDUE), which is where the overdue and suspension e-mails find them
(:mod:`billing.notifications`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import jobs, status_changes
from billing.collection import resolve_policy, settings_join
from billing.models import (
    CollectionSettings,
    Customer,
    CustomerClass,
    CustomerStatus,
    Invoice,
    InvoiceStatus,
    StatusSubject,
    table_of,
)
from billing.periods import local_midnight_utc
from billing.status_changes import Cause, Change

SUSPENSION_JOB = "customer_suspension"
#: Invoices with money outstanding that can hold a customer's suspension.
_OPEN = (InvoiceStatus.UNPAID, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.OVERDUE)
_IDS_PER_STATEMENT = 1000


def suspended_from(due_date: Any, grace_period_days: int, time_zone: str) -> datetime:
    """The instant a customer is suspended for an invoice left unpaid: local midnight after
    the last day of grace (due date + grace period)."""
    return local_midnight_utc(due_date + timedelta(days=grace_period_days + 1), time_zone)


def _candidates() -> Any:
    """Open invoices of ACTIVE customers with the grace period that applies to each."""
    return (
        select(
            Invoice.id,
            Invoice.customer_id,
            Invoice.due_date,
            Customer.time_zone,
            CustomerClass.payment_terms_days,
            CustomerClass.grace_period_days,
            CollectionSettings,
        )
        .join(Customer, Customer.id == Invoice.customer_id)
        .outerjoin(CustomerClass, CustomerClass.id == Customer.class_id)
        .outerjoin(CollectionSettings, settings_join(Invoice.kind))
        .where(
            Customer.status == CustomerStatus.ACTIVE,
            Invoice.status.in_(_OPEN),
            Invoice.amount_paid < Invoice.total,
        )
    )


def _grace(row: Any) -> int:
    return resolve_policy(
        row.payment_terms_days, row.grace_period_days, row.CollectionSettings
    ).grace_period_days


async def suspend_overdue_customers(session: AsyncSession, now: datetime) -> list[int]:
    """Suspend every ACTIVE customer with an invoice unpaid past its grace period.

    Idempotent: a suspended customer is no longer a candidate.  Returns the customers
    suspended, each recorded with the (oldest) invoice that did it.
    """
    rows = (
        await session.execute(
            # Local dates run at most a day ahead of UTC's, so later due dates cannot qualify.
            _candidates()
            .where(Invoice.due_date <= now.date())
            .order_by(Invoice.customer_id, Invoice.due_date, Invoice.id)
        )
    ).all()
    culprits: dict[int, int] = {}
    for row in rows:
        if row.customer_id in culprits:
            continue
        if suspended_from(row.due_date, _grace(row), row.time_zone) <= now:
            culprits[row.customer_id] = row.id
    customers = table_of(Customer)
    ids = sorted(culprits)
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        await session.execute(
            update(customers)
            .where(
                customers.c.id.in_(ids[start : start + _IDS_PER_STATEMENT]),
                customers.c.status == CustomerStatus.ACTIVE,
            )
            .values(status=CustomerStatus.SUSPENDED, updated_at=now)
        )
    await status_changes.record_many(
        session,
        [
            Change(
                StatusSubject.CUSTOMER,
                customer_id,
                customer_id,
                CustomerStatus.ACTIVE.value,
                CustomerStatus.SUSPENDED.value,
                Cause.GRACE_PERIOD_EXCEEDED,
                f"invoice:{invoice_id}",
            )
            for customer_id, invoice_id in sorted(culprits.items())
        ],
        now,
    )
    return ids


async def schedule_suspension_check(session: AsyncSession) -> None:
    """Wake the suspension job when the earliest open invoice's grace period runs out."""
    rows = (
        await session.execute(
            _candidates()
            .with_only_columns(
                func.min(Invoice.due_date).label("due_date"),
                Customer.time_zone,
                CustomerClass.payment_terms_days,
                CustomerClass.grace_period_days,
                CollectionSettings,
            )
            .group_by(
                Customer.time_zone,
                CustomerClass.payment_terms_days,
                CustomerClass.grace_period_days,
                CollectionSettings.id,
            )
        )
    ).all()
    if rows:
        first = min(suspended_from(row.due_date, _grace(row), row.time_zone) for row in rows)
        await jobs.schedule(session, SUSPENSION_JOB, first, unique_key=SUSPENSION_JOB)


@jobs.handler(SUSPENSION_JOB)
async def suspension_job(session: AsyncSession, payload: dict[str, Any], now: datetime) -> None:
    """Idempotent: suspends whoever is past grace now, then waits for the next one."""
    await suspend_overdue_customers(session, now)
    await schedule_suspension_check(session)


async def reinstate_if_settled(session: AsyncSession, customer: Customer, now: datetime) -> bool:
    """Make a customer suspended for overdue invoices ACTIVE once none is overdue.

    Called wherever invoices get settled (:func:`billing.settlement.apply_credit`), in
    that transaction.  Cheap for everyone else: it looks at the loaded status first.
    """
    if customer.status != CustomerStatus.SUSPENDED:
        return False
    await session.flush()
    overdue = await session.scalar(
        select(func.count(Invoice.id)).where(
            Invoice.customer_id == customer.id, Invoice.status == InvoiceStatus.OVERDUE
        )
    )
    if overdue:
        return False
    last = await status_changes.latest(session, StatusSubject.CUSTOMER, customer.id)
    if (
        last is None
        or last.to_status != CustomerStatus.SUSPENDED.value
        or last.cause != Cause.GRACE_PERIOD_EXCEEDED.value
    ):
        return False
    customer.status = CustomerStatus.ACTIVE
    customer.updated_at = now
    await status_changes.record(
        session,
        Change(
            StatusSubject.CUSTOMER,
            customer.id,
            customer.id,
            CustomerStatus.SUSPENDED.value,
            CustomerStatus.ACTIVE.value,
            Cause.NOTHING_OVERDUE,
        ),
        now,
    )
    await session.flush()
    return True
