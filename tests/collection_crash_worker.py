"""One collection run in a process of its own, for ``tests/test_collection_crash.py`` to kill.

    python -m tests.collection_crash_worker DATABASE_URL STATE_FILE LATENCY_MS

The simulator keeps its charges in ``STATE_FILE`` (an SQLite file) so they outlive this
process: after a SIGKILL the test still knows every charge the "card network" saw.  Prints
``ready`` once connected (the test's kill timer starts then) and ``done`` at the end.
"""

from __future__ import annotations

import asyncio
import sys

from billing import clock
from billing.collection_run import run_collection
from billing.db import Database
from processors import registry
from settings import Settings

#: Small batches and few calls at once, so a run takes long enough to be killed mid-way.
BATCH_SIZE = 6
CONCURRENCY = 3


async def main(database_url: str, state_file: str, latency_ms: int) -> None:
    registry.configure("simulator", state_file=state_file, latency_ms=latency_ms)
    registry.serve_billing()
    db = Database(Settings(database_url=database_url))
    try:
        async with db.session() as session:
            now = await clock.now(session)
        print("ready", flush=True)
        report = await run_collection(db, now, batch_size=BATCH_SIZE, concurrency=CONCURRENCY)
        print(
            f"done {report.succeeded} {report.failed} {report.unknown} {report.reconciled}",
            flush=True,
        )
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
