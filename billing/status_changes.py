"""Recorded status transitions of invoices and customers: when, from what, to what, and why.

Every place that changes an invoice's or a customer's status writes a row here, in the same
transaction as the change.  The table is what other parts read to react to transitions (the
e-mails of :mod:`billing.notifications`: "your invoice is overdue", "your service is
suspended") and what the API shows as an object's history — there is no callback to register and nothing to miss.

:func:`record` is for one change made through the ORM; :func:`record_many` inserts a batch
in one statement for the set-based paths (the bill run, overdue marking, suspension).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import bulk
from billing.models import StatusChange, StatusSubject, table_of


class Cause(StrEnum):
    """Why a status changed.  ``detail`` names the object that did it, where there is one."""

    ISSUED = "ISSUED"  # the invoice was made (from_status is None)
    APPROVED = "APPROVED"  # an administrator approved an invoice waiting for review
    PAYMENT = "PAYMENT"  # money was allocated to the invoice ("payment:<id>")
    PAYMENT_RELEASED = "PAYMENT_RELEASED"  # a refund or void took money back ("payment:<id>")
    DUE_DATE_PASSED = "DUE_DATE_PASSED"
    VOIDED = "VOIDED"
    GRACE_PERIOD_EXCEEDED = "GRACE_PERIOD_EXCEEDED"  # an invoice overdue past the grace period
    NOTHING_OVERDUE = "NOTHING_OVERDUE"  # a customer suspended for that is active again
    STAFF = "STAFF"  # set by hand ("user:<id>" or "key:<id>")


@dataclass(frozen=True, slots=True)
class Change:
    """One transition, for :func:`record_many`."""

    subject: StatusSubject
    subject_id: int
    customer_id: int
    from_status: str | None
    to_status: str
    cause: Cause
    detail: str | None = None


def _row(change: Change, at: datetime) -> dict[str, object]:
    return {
        "subject": change.subject,
        "subject_id": change.subject_id,
        "customer_id": change.customer_id,
        "from_status": change.from_status,
        "to_status": change.to_status,
        "at": at,
        "cause": change.cause.value,
        "detail": None if change.detail is None else change.detail[:200],
    }


async def record(session: AsyncSession, change: Change, at: datetime) -> None:
    """Write one transition (no-op when the status did not actually change)."""
    if change.from_status != change.to_status:
        await session.execute(insert(StatusChange), [_row(change, at)])


async def record_many(session: AsyncSession, changes: Sequence[Change], at: datetime) -> None:
    """Write a batch of transitions in one INSERT (unchanged statuses are skipped)."""
    rows = [_row(c, at) for c in changes if c.from_status != c.to_status]
    if rows:
        await session.execute(bulk.insert_from_rows(session, table_of(StatusChange), rows))


async def history(
    session: AsyncSession, subject: StatusSubject, subject_ids: Sequence[int]
) -> dict[int, list[StatusChange]]:
    """The transitions of many subjects (for DataLoaders), oldest first.

    The caller has already authorised the subjects.
    """
    changes: dict[int, list[StatusChange]] = defaultdict(list)
    ids = list(subject_ids)
    for start in range(0, len(ids), 1000):
        rows = await session.scalars(
            select(StatusChange)
            .where(
                StatusChange.subject == subject,
                StatusChange.subject_id.in_(ids[start : start + 1000]),
            )
            .order_by(StatusChange.id)
        )
        for row in rows.all():
            changes[row.subject_id].append(row)
    return {subject_id: changes[subject_id] for subject_id in ids}


async def latest(
    session: AsyncSession, subject: StatusSubject, subject_id: int
) -> StatusChange | None:
    """The most recent transition of one subject, if any was recorded."""
    return await session.scalar(
        select(StatusChange)
        .where(StatusChange.subject == subject, StatusChange.subject_id == subject_id)
        .order_by(StatusChange.id.desc())
        .limit(1)
    )
