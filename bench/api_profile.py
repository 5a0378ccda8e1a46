"""In-process CPU cost of one dashboard request, kassa's GraphQL and the hand-written one,
and optionally a profile of kassa's.

    .venv/bin/python -m bench.api_profile [--requests 500] [--profile] [--database-url URL]

Run it after ``bench.api``, against the database that left (its demo and customers; a new
API key is made here).  Each app answers ``--requests`` requests one after another through
``httpx.ASGITransport`` — no network, no load generator — after 50 to warm up, and the
figure is the process's CPU time per request (``time.process_time``): what the request
costs the server's Python, the database's work excluded.  ``--profile`` runs kassa's under
cProfile and prints the functions that take the most time, by own time and by cumulative
time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import time

import httpx
from sqlalchemy import select

from bench.api import DASHBOARD, DATABASE_URL
from billing.api_keys import create_api_key
from billing.db import Database
from billing.models import ApiKeyScope, Customer
from schema.relay import encode_id
from settings import Settings, normalise_database_url

WARM_UP = 50


async def cpu_per_request(client: httpx.AsyncClient, request: httpx.Request, count: int) -> float:
    """Milliseconds of this process's CPU per request, over ``count`` requests."""
    for _ in range(WARM_UP):
        (await client.send(request)).raise_for_status()
    started = time.process_time()
    for _ in range(count):
        response = await client.send(request)
        response.raise_for_status()
    return 1000 * (time.process_time() - started) / count


async def run(database_url: str, count: int, profile: bool) -> None:
    os.environ["KASSA_DATABASE_URL"] = database_url
    from bench import api_server  # reads the URL above

    db = Database(Settings(database_url=database_url, run_worker=False))
    async with db.transaction() as session:
        _, token = await create_api_key(session, "bench profile", ApiKeyScope.READ_WRITE)
        customer_id = await session.scalar(select(Customer.id).order_by(Customer.id).limit(1))
    await db.dispose()
    assert customer_id is not None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = json.dumps({"query": DASHBOARD, "variables": {"id": encode_id("Customer", customer_id)}})
    base = "http://bench"
    apps = {
        "hand-written": (api_server.plain_app(), "GET", f"/dashboard/{customer_id}", None),
        "kassa GraphQL": (api_server.kassa_app(), "POST", "/graphql", body),
    }
    for name, (app, method, path, content) in apps.items():
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url=base) as client,
        ):
            request = client.build_request(method, path, content=content, headers=headers)
            answer = (await client.send(request)).json()
            assert "errors" not in answer and "error" not in answer, answer
            cpu = await cpu_per_request(client, request, count)
            print(f"{name:<14} {cpu:6.2f} ms CPU per request (in-process, {count} requests)")
            if profile and name == "kassa GraphQL":
                profiler = cProfile.Profile(time.process_time)
                profiler.enable()
                await cpu_per_request(client, request, count)
                profiler.disable()
                stats = pstats.Stats(profiler)
                stats.sort_stats("tottime").print_stats(30)
                stats.sort_stats("cumulative").print_stats(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(normalise_database_url(args.database_url), args.requests, args.profile))


if __name__ == "__main__":
    main()
