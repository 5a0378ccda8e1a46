"""Where a bill-run batch spends its time: each statement's wall time, and Python's share.

    .venv/bin/python -m bench.billrun_profile [--batches 5] [--profile] \\
        --database-url postgresql://postgres@127.0.0.1:5432/kassa_bench_br

Run it after ``bench.billrun`` with the same ``--database-url``: it copies the seeded
database that left, then closes the first ``--batches`` ranges of customers one after another
in this process, each in its own transaction as a worker would, timing every statement the
batch sends (grouped by its first words) and the process's CPU time.  ``--profile`` adds a
cProfile of the batches, by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import re
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import event

from bench.billrun import RUN_AT, _copy, _urls
from billing import billrun, clock
from billing.db import Database
from settings import Settings


def _statement_key(statement: str) -> str:
    """A statement's first words and the table it names: enough to tell them apart."""
    words = re.sub(r"\s+", " ", statement).strip()
    table = re.search(r"\b(?:INTO|UPDATE|FROM) (\w+)", words, re.IGNORECASE)
    return f"{words.split(' ')[0]} {table.group(1)}" if table else words[:40]


async def run(database_url: str, batches: int, profile: bool) -> None:
    seed_url, run_url = _urls(database_url)
    await _copy(seed_url, run_url)
    db = Database(Settings(database_url=run_url, run_worker=False))
    timings: dict[str, list[float]] = defaultdict(list)

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["started"] = time.perf_counter()

    @event.listens_for(db.engine.sync_engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        timings[_statement_key(statement)].append(time.perf_counter() - conn.info["started"])

    async with db.transaction() as session:
        await clock.freeze(session, RUN_AT)
        ranges = await billrun._due_ranges(session, RUN_AT, billrun.BATCH_SIZE)
    timings.clear()
    profiler = cProfile.Profile() if profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    for first, last in ranges[:batches]:
        async with db.transaction() as session:
            await billrun.close_range(session, first, last, RUN_AT)
    if profiler:
        profiler.disable()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    await db.dispose()
    done = min(batches, len(ranges))
    in_statements = sum(sum(t) for t in timings.values())
    print(
        f"{done} batch(es): {1000 * wall / done:.0f} ms wall and {1000 * cpu / done:.0f} ms CPU each"
    )
    print(
        f"  in statements (wall, incl. the driver): {1000 * in_statements / done:.0f} ms per batch"
    )
    for key, spent in sorted(timings.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {1000 * sum(spent) / done:7.1f} ms  x{len(spent) / done:5.1f}  {key}")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(
            "billing|sqlalchemy/(orm|engine)/(session|default|base)", 40
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--database-url", default=os.environ.get("KASSA_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    asyncio.run(run(args.database_url, args.batches, args.profile))
