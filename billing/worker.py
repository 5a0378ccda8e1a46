"""The job worker: the one loop that runs due jobs, for ``kassa serve`` (beside the web
server, when ``settings.run_worker`` is on) and ``kassa worker`` (alone; ``--once`` for one
round).

A failing job is recorded and retried by :mod:`billing.jobs` itself.  What the loop catches
is a round that failed as a whole — the database going away — which must not end a worker
for good: it logs it and tries again after the interval.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import suppress

from billing import jobs, notifications
from billing.db import Database

log = logging.getLogger("kassa.worker")

INTERVAL_SECONDS = 1.0


def freeze_startup_objects() -> None:
    """Put what start-up made — modules, mappers, the schema, templates — out of the garbage
    collector's sight.

    It lives as long as the process, yet every full collection, which a request's or a
    bill-run batch's garbage sets off, would walk all of it again: a sixth of a dashboard
    request's CPU under load, and of a batch's (docs/benchmarks.md).  For a process's entry
    point (``kassa serve``'s lifespan, ``kassa worker``), once start-up is done.
    """
    gc.collect()
    gc.freeze()


async def run_once(database: Database, stop: asyncio.Event | None = None) -> int:
    """Run every job due now (and those they make due); returns how many ran.

    The e-mail jobs poll the outbox by rescheduling themselves: they are started here first,
    so a fresh database sends mail without anyone scheduling them.
    """
    await notifications.start_jobs(database)
    return await jobs.run_due(database, stop=stop)


async def run_forever(
    database: Database, interval: float = INTERVAL_SECONDS, stop: asyncio.Event | None = None
) -> None:
    """Run due jobs every ``interval`` seconds until cancelled, or until ``stop`` is set.

    ``stop`` ends the loop between rounds, never inside one: a server shutting down lets the
    job in hand commit instead of cancelling it half-way, which could leave its connection
    holding SQLite's write lock after the pool was disposed.
    """
    stop = stop or asyncio.Event()
    started = False
    while not stop.is_set():
        try:
            ran = await (jobs.run_due(database, stop=stop) if started else run_once(database, stop))
            started = True
            if ran:
                log.info("ran %d job(s)", ran)
        except Exception:
            log.exception("job worker round failed")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
