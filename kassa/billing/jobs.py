"""Scheduled work as rows in the ``jobs`` table.

A job is a kind, a JSON payload and a due time.  Workers claim due rows one at a time —
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so any number of workers can share a database; on
SQLite a single worker runs — and run the handler in the same transaction that marks the row
done, so a crash leaves the job pending and a second run changes nothing (handlers are
idempotent).  A failing handler is retried with backoff and parked as FAILED after
:data:`MAX_ATTEMPTS`.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kassa.billing import clock
from kassa.billing.models import Job, JobStatus
from kassa.db import Database

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, dict[str, Any], datetime], Awaitable[None]]

MAX_ATTEMPTS = 8
_handlers: dict[str, Handler] = {}

#: The modules whose import registers job handlers: listed here so a reader finds them all.
HANDLER_MODULES = ("kassa.billing.billrun", "kassa.billing.invoices", "kassa.billing.payments")


def load_handlers() -> None:
    """Import every module that registers a handler (cheap after the first call)."""
    for module in HANDLER_MODULES:
        importlib.import_module(module)


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that runs jobs of ``kind``."""

    def register(fn: Handler) -> Handler:
        _handlers[kind] = fn
        return fn

    return register


async def schedule(
    session: AsyncSession,
    kind: str,
    due_at: datetime,
    payload: dict[str, Any] | None = None,
    unique_key: str | None = None,
) -> None:
    """Add a job.  With ``unique_key``, a pending job of that key is moved earlier instead."""
    if unique_key is not None:
        existing = await session.scalar(
            select(Job).where(Job.unique_key == unique_key, Job.status == JobStatus.PENDING)
        )
        if existing is not None:
            if due_at < existing.due_at:
                existing.due_at = due_at
            return
    try:
        async with session.begin_nested():
            session.add(Job(kind=kind, payload=json.dumps(payload or {}), due_at=due_at,
                            unique_key=unique_key, status=JobStatus.PENDING))
    except IntegrityError:
        # Another transaction scheduled the same unique job first: that one will do.
        pass


async def next_due_at(session: AsyncSession) -> datetime | None:
    return await session.scalar(
        select(func.min(Job.due_at)).where(Job.status == JobStatus.PENDING)
    )


async def _claim(session: AsyncSession, now: datetime) -> Job | None:
    query = (
        select(Job)
        .where(Job.status == JobStatus.PENDING, Job.due_at <= now)
        .order_by(Job.due_at, Job.id)
        .limit(1)
    )
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        query = query.with_for_update(skip_locked=True)
    return await session.scalar(query)


async def run_one(db: Database) -> bool:
    """Claim and run one due job.  Returns False when nothing is due."""
    async with db.transaction() as session:
        now = await clock.now(session)
        job = await _claim(session, now)
        if job is None:
            return False
        job.attempts += 1
        # Done before the handler runs, so the handler may schedule its own successor under
        # the same unique key (a pending job holds the key); a failure sets it back below.
        job.status = JobStatus.DONE
        job.finished_at = now
        await session.flush()
        run = _handlers.get(job.kind)
        try:
            if run is None:
                raise LookupError(f"no handler for job kind {job.kind!r}")
            # A savepoint: a failing handler's writes roll back, the failure record stays.
            async with session.begin_nested():
                await run(session, json.loads(job.payload), now)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            log.exception("job %s (%s) failed", job.id, job.kind)
            job.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            job.due_at = now + timedelta(minutes=2 ** min(job.attempts, 10))
            job.status = JobStatus.FAILED if job.attempts >= MAX_ATTEMPTS else JobStatus.PENDING
            job.finished_at = None
        return True


async def run_due(db: Database, limit: int = 100_000) -> int:
    """Run jobs until none is due (handlers may schedule more for now).  Returns the count."""
    load_handlers()
    count = 0
    while count < limit and await run_one(db):
        count += 1
    return count


async def advance_clock(db: Database, target: datetime) -> int:
    """Move the test clock to ``target``, stopping at each due time on the way to run its jobs.

    Jobs therefore run in time order, each seeing "now" equal to its own due time, exactly as
    they would have had the time passed for real.
    """
    ran = 0
    while True:
        async with db.transaction() as session:
            current = await clock.now(session)
            due = await next_due_at(session)
            step = target if due is None or due > target else max(due, current)
            await clock.freeze(session, max(step, current))
        ran += await run_due(db)
        if step >= target:
            return ran
