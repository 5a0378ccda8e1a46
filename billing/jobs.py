"""Scheduled work as rows in the ``jobs`` table.

A job is a kind, a JSON payload and a due time.  Workers claim due rows one at a time —
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so any number of workers can share a database; on
SQLite a single worker runs — and run the handler in the same transaction that marks the row
done, so a crash leaves the job pending and a second run changes nothing (handlers are
idempotent).  A failing handler is retried with backoff and parked as FAILED after
:data:`MAX_ATTEMPTS`.

A *detached* handler (:func:`detached_handler`) runs outside the job's transaction and gets
the :class:`~billing.db.Database`, for work that must commit as it goes — the collection run
commits each attempt as in flight before calling the card processor.  Its job is marked done
when claimed and a successor under the same unique key is scheduled :data:`DETACHED_LEASE`
later, so a worker that dies mid-run leaves work that another worker takes over; the
handler sets that successor's due time itself when it finishes (:func:`reschedule`).

A job scheduled while a request is served carries that request's id in its payload
(:data:`REQUEST_ID_KEY`); the worker runs it under the same id, so its log lines join the
request's (:mod:`billing.logs`).  Each run is counted and timed by kind
(:mod:`billing.metrics`), which is how bill runs and collection runs are watched.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, logs, metrics
from billing.db import Database
from billing.models import Job, JobStatus, table_of

log = logging.getLogger("kassa.billing.jobs")

Handler = Callable[[AsyncSession, dict[str, Any], datetime], Awaitable[None]]
DetachedHandler = Callable[[Database, dict[str, Any], datetime], Awaitable[None]]

MAX_ATTEMPTS = 8
_handlers: dict[str, Handler] = {}
_detached: dict[str, DetachedHandler] = {}
#: When the successor of a detached job falls due if its run never finishes (a crash).
DETACHED_LEASE = timedelta(minutes=10)
#: How soon a failed detached job is tried again.
DETACHED_RETRY = timedelta(minutes=2)

#: Where a job's payload keeps the id of the request that scheduled it.
REQUEST_ID_KEY = "request_id"

#: The modules whose import registers job handlers: listed here so a reader finds them all.
HANDLER_MODULES = (
    "billing.billrun",
    "billing.distributor_billing",
    "billing.invoices",
    "billing.card_charges",
    "billing.redirect_payments",
    "billing.invoice_pdfs",
    "billing.collection_run",
    "billing.dunning",
    "billing.notifications",
    "billing.bitcoin_payments",
    "billing.bitcoin_prices",
    "billing.gateway_billing",
)


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


def detached_handler(kind: str) -> Callable[[DetachedHandler], DetachedHandler]:
    """Register a handler for ``kind`` that runs outside the job's transaction (see above)."""

    def register(fn: DetachedHandler) -> DetachedHandler:
        _detached[kind] = fn
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
    payload = dict(payload or {})
    request_id = logs.request_id.get()
    if request_id is not None:
        payload.setdefault(REQUEST_ID_KEY, request_id)
    try:
        async with session.begin_nested():
            session.add(
                Job(
                    kind=kind,
                    payload=json.dumps(payload),
                    due_at=due_at,
                    unique_key=unique_key,
                    status=JobStatus.PENDING,
                )
            )
    except IntegrityError:
        # Another transaction scheduled the same unique job first: that one will do.
        pass


async def schedule_many(
    session: AsyncSession, kind: str, due_at: datetime, payloads: list[dict[str, Any]]
) -> None:
    """Add one job of ``kind`` per payload, all due at ``due_at``, in one insert (a run's
    batches); they run in the order given."""
    request_id = logs.request_id.get()
    extra = {} if request_id is None else {REQUEST_ID_KEY: request_id}
    await session.execute(
        insert(table_of(Job)),
        [
            {
                "kind": kind,
                "payload": json.dumps({**extra, **payload}),
                "due_at": due_at,
                "status": JobStatus.PENDING,
            }
            for payload in payloads
        ],
    )


async def reschedule(
    session: AsyncSession,
    kind: str,
    unique_key: str,
    next_due: Callable[[AsyncSession], Awaitable[datetime | None]],
) -> datetime | None:
    """Set the pending ``unique_key`` job to fall due exactly at ``await next_due(session)``
    (later as well as earlier), or retire it when that is None; returns the time set.

    The pending row is locked before ``next_due`` looks at the work, so a writer adding work
    concurrently either is seen by ``next_due`` or moves the job earlier after this commits
    (:func:`schedule`); a wake-up is never lost.
    """
    query = select(Job).where(Job.unique_key == unique_key, Job.status == JobStatus.PENDING)
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        query = query.with_for_update()
    existing = await session.scalar(query)
    due_at = await next_due(session)
    if existing is not None and due_at is None:
        existing.status = JobStatus.DONE
        existing.finished_at = await clock.now(session)
    elif existing is not None and due_at is not None:
        existing.due_at = due_at
    elif due_at is not None:
        await schedule(session, kind, due_at, unique_key=unique_key)
    await session.flush()
    return due_at


async def next_due_at(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(func.min(Job.due_at)).where(Job.status == JobStatus.PENDING))


@dataclass(frozen=True)
class QueueState:
    """How far behind the workers are, for ``/metrics``."""

    pending: int
    due: int
    failed: int
    #: How long the longest-waiting due job has been due; 0 when none is.
    oldest_due_age_seconds: float


async def queue_state(session: AsyncSession) -> QueueState:
    """The jobs table's state now (on the clock's "now")."""
    now = await clock.now(session)
    pending = select(func.count(Job.id)).where(Job.status == JobStatus.PENDING)
    oldest = await session.scalar(
        select(func.min(Job.due_at)).where(Job.status == JobStatus.PENDING, Job.due_at <= now)
    )
    failed = select(func.count(Job.id)).where(Job.status == JobStatus.FAILED)
    return QueueState(
        pending=int(await session.scalar(pending) or 0),
        due=int(await session.scalar(pending.where(Job.due_at <= now)) or 0),
        failed=int(await session.scalar(failed) or 0),
        oldest_due_age_seconds=(now - oldest).total_seconds() if oldest else 0.0,
    )


@contextmanager
def _observed(job_id: int, kind: str, payload: dict[str, Any]) -> Iterator[None]:
    """Run a job's body under the id of the request that scheduled it; count and time it by
    kind, and log how it went (a failure with its traceback, then raised on)."""
    token = logs.request_id.set(payload.get(REQUEST_ID_KEY))
    started = time.perf_counter()
    outcome = "failed"
    try:
        yield
        outcome = "done"
    except Exception:
        log.exception("job %s (%s) failed", job_id, kind)
        raise
    finally:
        seconds = time.perf_counter() - started
        metrics.JOB_RUNS.labels(kind, outcome).inc()
        metrics.JOB_DURATION.labels(kind).observe(seconds)
        log.info("job %s (%s) %s in %.3fs", job_id, kind, outcome, seconds)
        logs.request_id.reset(token)


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
        detached = _detached.get(job.kind)
        if detached is not None:
            if job.unique_key is not None:
                await schedule(
                    session,
                    job.kind,
                    now + DETACHED_LEASE,
                    json.loads(job.payload),
                    unique_key=job.unique_key,
                )
            claimed = (job.id, job.kind, json.loads(job.payload), job.unique_key)
        else:
            run = _handlers.get(job.kind)
            payload = json.loads(job.payload)
            try:
                with _observed(job.id, job.kind, payload):
                    if run is None:
                        raise LookupError(f"no handler for job kind {job.kind!r}")
                    # A savepoint: a failing handler's writes roll back, the failure record
                    # stays.
                    async with session.begin_nested():
                        await run(session, payload, now)
            except Exception as exc:
                job.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                job.due_at = now + timedelta(minutes=2 ** min(job.attempts, 10))
                job.status = JobStatus.FAILED if job.attempts >= MAX_ATTEMPTS else JobStatus.PENDING
                job.finished_at = None
            return True
    await _run_detached(db, detached, *claimed, now)
    return True


async def _run_detached(
    db: Database,
    run: DetachedHandler,
    job_id: int,
    kind: str,
    payload: dict[str, Any],
    unique_key: str | None,
    now: datetime,
) -> None:
    """Run a claimed detached job; on failure note the error and have it retried soon."""
    try:
        with _observed(job_id, kind, payload):
            await run(db, payload, now)
    except Exception as exc:
        async with db.transaction() as session:
            job = await session.get(Job, job_id)
            assert job is not None
            job.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            job.status = JobStatus.FAILED
            if unique_key is not None:
                await schedule(session, kind, now + DETACHED_RETRY, payload, unique_key=unique_key)


async def run_due(db: Database, limit: int = 100_000, stop: asyncio.Event | None = None) -> int:
    """Run jobs until none is due (handlers may schedule more for now), or until ``stop`` is
    set — checked between jobs, so a stopping worker ends with the job in hand done.  Returns
    the count."""
    load_handlers()
    count = 0
    while count < limit and not (stop and stop.is_set()) and await run_one(db):
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
