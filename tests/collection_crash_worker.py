"""Card charges in a process of their own, for ``tests/test_collection_crash.py`` to kill.

    python -m tests.collection_crash_worker DATABASE_URL STATE_FILE LATENCY_MS collect
    python -m tests.collection_crash_worker DATABASE_URL STATE_FILE LATENCY_MS pay OPS_JSON
    python -m tests.collection_crash_worker DATABASE_URL STATE_FILE LATENCY_MS janitor AT

``collect`` runs the collection; ``pay`` sends the ``payInvoice``/``topUp`` mutations listed
in ``OPS_JSON`` through the GraphQL schema, one after the other, each with its idempotency
key (a restarted worker sends them all again, as a client retrying would); ``janitor`` runs
the card-charge janitor at the instant ``AT`` (ISO 8601).  The simulator keeps its charges
in ``STATE_FILE`` (an SQLite file) so they outlive this process: after a SIGKILL the test
still knows every charge the "card network" saw.  Prints ``ready`` once connected (the
test's kill timer starts then) and ``done`` at the end.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path

from billing import clock
from billing.access import Viewer
from billing.card_charges import run_janitor
from billing.collection_run import run_collection
from billing.db import Database
from billing.models import Role
from processors import registry
from resolvers.context import Context
from schema import schema
from settings import Settings

#: Small batches and few calls at once, so a run takes long enough to be killed mid-way.
BATCH_SIZE = 6
CONCURRENCY = 3

PAY_INVOICE = """
mutation($input: PayInvoiceInput!) { payInvoice(input: $input) { payment { status } } }
"""
TOP_UP = "mutation($input: TopUpInput!) { topUp(input: $input) { payment { status } } }"


async def pay(db: Database, settings: Settings, ops: list[dict[str, str]]) -> str:
    """Send each operation as the provider's administrator would, over the schema."""
    statuses = []
    for op in ops:
        async with db.session() as session:
            context = Context(settings, db, session, Viewer(role=Role.ADMIN))
            query = PAY_INVOICE if op["kind"] == "payInvoice" else TOP_UP
            result = await schema.execute(
                query, variable_values={"input": op["input"]}, context_value=context
            )
            await context.settle()
        assert result.errors is None, result.errors
        assert result.data is not None
        statuses.append(result.data[op["kind"]]["payment"]["status"])
    return " ".join(statuses)


async def main(database_url: str, state_file: str, latency_ms: int, mode: str, arg: str) -> None:
    registry.configure("simulator", state_file=state_file, latency_ms=latency_ms)
    registry.serve_billing()
    settings = Settings(database_url=database_url)
    db = Database(settings)
    try:
        async with db.session() as session:
            now = await clock.now(session)
        print("ready", flush=True)
        if mode == "collect":
            report = await run_collection(db, now, batch_size=BATCH_SIZE, concurrency=CONCURRENCY)
            print(f"done {report.succeeded} {report.failed} {report.unknown}", flush=True)
        elif mode == "pay":
            print(f"done {await pay(db, settings, json.loads(Path(arg).read_text()))}", flush=True)
        else:
            settled = await run_janitor(db, datetime.fromisoformat(arg), batch_size=BATCH_SIZE)
            print(f"done {settled.settled} {settled.still_open}", flush=True)
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], "".join(sys.argv[5:]))
    )
