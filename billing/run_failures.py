"""One customer never stops a batch run: each customer's work is isolated, and what fails is
recorded for the administrators and tried again later.

The bill run and the collection run work set-based, a batch of customers per statement.
:func:`isolate` runs a batch's work in a savepoint; when it raises, the savepoint rolls back
and the batch is split in halves, each tried again in its own savepoint, down to the single
customer (or invoice) that fails — whatever the cause: a domain error (a balance out of
range), a bad value in the database, a bug.  A batch that goes through costs what it always
did; one failing customer in a thousand costs about twenty more savepoints, not a thousand.

A failing item is logged with its traceback (``kassa.billing.<run>``) and written as a
:class:`~billing.models.RunFailure`, one open row per (run, customer, invoice) whose
``attempts`` counts the runs it failed in.  The row keeps only the error's code and plain
words: a :class:`~billing.errors.UserError`'s own, or ``INTERNAL_ERROR`` and the
exception's class for a bug — never its message (it could quote anything, a card number
included) nor a stack trace.  The item is left as it was (its period not closed, its attempt
still planned), so it stays in the run's work list; the runs pass it over until
``next_retry_at`` (:func:`waiting`, a backoff from :data:`RETRY_FIRST` doubling up to
:data:`RETRY_MAX`), so a customer that always fails cannot keep a run busy, and the run
wakes for the retry (:func:`next_retry_at`).  The first run that gets the item through
marks its row resolved (:func:`resolve`).

Administrators see the rows of the customers and distributors in their scope
(:func:`failure_query`); a distributor's (distributor billing) are also their
distributor's ``billingFailure``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Select, exists, func, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from billing import bulk
from billing.access import Viewer, require_staff, scope_customers, scope_distributors
from billing.errors import UserError
from billing.models import Customer, Distributor, RunFailure, RunKind, table_of

#: The first retry of a failing item, and the longest wait between two (the wait doubles).
RETRY_FIRST = timedelta(minutes=15)
RETRY_MAX = timedelta(days=1)
#: The code a bug is recorded under (its details are in the server log only).
INTERNAL_ERROR = "INTERNAL_ERROR"

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


class Subject(NamedTuple):
    """Whose work an item is: a customer, and the invoice when the work is about one; or,
    for distributor billing, a distributor (and no customer)."""

    customer_id: int | None
    invoice_id: int | None = None
    distributor_id: int | None = None

    def __str__(self) -> str:
        if self.distributor_id is not None:
            return f"distributor {self.distributor_id}"
        return f"customer {self.customer_id} (invoice {self.invoice_id})"


@dataclass
class Isolated(Generic[_Item, _Result]):
    """What :func:`isolate` got through: each successful chunk's result, and the items that
    failed alone (already recorded)."""

    results: list[_Result] = field(default_factory=list)
    failed: list[_Item] = field(default_factory=list)


def retry_delay(attempts: int) -> timedelta:
    """How long a run waits before trying an item that has failed ``attempts`` times."""
    return min(RETRY_FIRST * (1 << min(attempts - 1, 16)), RETRY_MAX)


def error_words(exc: Exception) -> tuple[str, str]:
    """The code and message recorded for ``exc``: a domain error's own, or for a bug only
    its class (the message of an arbitrary exception may hold anything)."""
    if isinstance(exc, UserError):
        return exc.code[:64], exc.message[:500]
    return INTERNAL_ERROR, f"An internal error ({type(exc).__name__}); the server log has details."


async def isolate(
    session: AsyncSession,
    kind: RunKind,
    items: Sequence[_Item],
    subject_of: Callable[[_Item], Subject],
    work: Callable[[Sequence[_Item]], Awaitable[_Result]],
    now: datetime,
    log: logging.Logger,
) -> Isolated[_Item, _Result]:
    """Run ``work`` over ``items``, isolating each item's failure (see the module docstring).

    The failures are recorded and the items that went through have their failures resolved,
    both in ``session``'s transaction.  A lost database connection is not one customer's
    fault: it is raised, as is anything :func:`work` raises that is not an ``Exception``.
    """
    outcome: Isolated[_Item, _Result] = Isolated()
    done: list[_Item] = []
    failures: list[tuple[Subject, Exception]] = []

    async def attempt(chunk: Sequence[_Item]) -> None:
        try:
            async with session.begin_nested():
                result = await work(chunk)
        except Exception as exc:
            if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                raise
            if len(chunk) == 1:
                subject = subject_of(chunk[0])
                log.exception(
                    "%s: %s failed; the others go on, it is retried later", kind.value, subject
                )
                outcome.failed.append(chunk[0])
                failures.append((subject, exc))
                return
        else:
            outcome.results.append(result)
            done.extend(chunk)
            return
        # Outside the handler, so a failure found in a half is not chained to this one.
        middle = len(chunk) // 2
        await attempt(chunk[:middle])
        await attempt(chunk[middle:])

    if items:
        await attempt(items)
    await _record(session, kind, failures, now)
    await resolve(session, kind, [subject_of(item) for item in done], now)
    return outcome


async def _open_failures(
    session: AsyncSession, kind: RunKind, subjects: Iterable[Subject]
) -> dict[Subject, RunFailure]:
    """The open failures of ``kind`` of these subjects' customers or distributors, by subject."""
    subjects = list(subjects)
    customers = sorted({s.customer_id for s in subjects if s.customer_id is not None})
    distributors = sorted({s.distributor_id for s in subjects if s.distributor_id is not None})
    if not customers and not distributors:
        return {}
    rows = await session.scalars(
        select(RunFailure).where(
            RunFailure.kind == kind,
            RunFailure.resolved_at.is_(None),
            or_(
                bulk.among(session, RunFailure.customer_id, customers),
                bulk.among(session, RunFailure.distributor_id, distributors),
            ),
        )
    )
    return {Subject(row.customer_id, row.invoice_id, row.distributor_id): row for row in rows}


async def _record(
    session: AsyncSession, kind: RunKind, failures: list[tuple[Subject, Exception]], now: datetime
) -> None:
    """Open a failure row per subject, or count one more attempt on the row already open."""
    known = await _open_failures(session, kind, (subject for subject, _ in failures))
    for subject, exc in failures:
        code, message = error_words(exc)
        row = known.get(subject)
        if row is None:
            row = RunFailure(
                kind=kind,
                customer_id=subject.customer_id,
                invoice_id=subject.invoice_id,
                distributor_id=subject.distributor_id,
                attempts=0,
                first_seen_at=now,
            )
            session.add(row)
            known[subject] = row
        row.attempts += 1
        row.code, row.message = code, message
        row.last_seen_at = now
        row.next_retry_at = now + retry_delay(row.attempts)
    await session.flush()


async def resolve(
    session: AsyncSession, kind: RunKind, subjects: Sequence[Subject], now: datetime
) -> None:
    """Mark the open failures of ``subjects`` resolved: their work has gone through.

    One read of the customers' open failures (nearly always none), then one update."""
    known = await _open_failures(session, kind, subjects)
    resolved = [known[subject].id for subject in set(subjects) if subject in known]
    if resolved:
        failures = table_of(RunFailure)
        await session.execute(
            update(failures).where(failures.c.id.in_(resolved)).values(resolved_at=now)
        )


#: The column of a run failure that names the subject each run passes over while it waits.
_KEYS = {
    RunKind.BILL_RUN: RunFailure.customer_id,
    RunKind.COLLECTION: RunFailure.invoice_id,
    RunKind.DISTRIBUTOR_BILLING: RunFailure.distributor_id,
    RunKind.BITCOIN: RunFailure.customer_id,
}


def waiting(
    kind: RunKind, now: datetime, subject: InstrumentedAttribute[int]
) -> ColumnElement[bool]:
    """Whether ``subject`` (a customer id column for the bill run, an invoice id column for
    collection, a distributor id column for distributor billing) has an open failure of
    ``kind`` not yet due for a retry: runs pass it over."""
    key = _KEYS[kind]
    return exists().where(
        RunFailure.kind == kind,
        key == subject,
        RunFailure.resolved_at.is_(None),
        RunFailure.next_retry_at > now,
    )


async def next_retry_at(session: AsyncSession, kind: RunKind, now: datetime) -> datetime | None:
    """When the first failure of ``kind`` still ahead falls due for a retry: the run wakes
    then.  A retry time already past is not counted, so a run that has nothing to retry does
    not wake again at once."""
    return await session.scalar(
        select(func.min(RunFailure.next_retry_at)).where(
            RunFailure.kind == kind,
            RunFailure.resolved_at.is_(None),
            RunFailure.next_retry_at > now,
        )
    )


def failure_query(
    viewer: Viewer,
    *,
    customer_id: int | None = None,
    include_resolved: bool = False,
) -> Select[RunFailure]:
    """The run failures of the customers and distributors in the viewer's scope, for staff
    only; callers order and page it.  Open ones only unless ``include_resolved``; only one
    customer's with ``customer_id``.

    A failure names a customer or (distributor billing) a distributor, never both, so it is
    in scope when the one it names is.
    """
    require_staff(viewer)
    customers = scope_customers(select(Customer.id), viewer)
    distributors = scope_distributors(select(Distributor.id), viewer)
    query = select(RunFailure).where(
        or_(RunFailure.customer_id.in_(customers), RunFailure.distributor_id.in_(distributors))
    )
    if customer_id is not None:
        query = query.where(RunFailure.customer_id == customer_id)
    if not include_resolved:
        query = query.where(RunFailure.resolved_at.is_(None))
    return query
