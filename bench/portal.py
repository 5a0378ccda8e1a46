"""Portal benchmark: how long the server takes to render a page, median and p99.

    .venv/bin/python -m bench.portal [--requests 500] [--database-url URL]

It loads the demo into a scratch database (by default a new SQLite file in a temporary
folder; a URL given is dropped and re-made: never point it at real data), signs in the demo
customer and the demo administrator through the sign-in form, and renders each page
``--requests`` times in-process through ``httpx.ASGITransport`` after a warm-up:

* ``GET /portal``, the customer's dashboard (the goal: median ≤ 30 ms);
* ``GET /admin/customers/{id}``, the administrator's page of that same customer.

Why in-process: the figure is the server's own cost of a page — the session check, the
GraphQL operations against the database, the template — without a network, a browser or a
load generator sharing the two cores, so it moves only when kassa's code does.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import secrets
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from app import create_app
from bench.demo_load import load_demo_with_fakes
from bench.scratch import fresh_database
from billing.db import Database
from billing.demo import ADMIN_LOGIN, CUSTOMER_PASSWORD, PEOPLE
from settings import Settings, normalise_database_url, sqlite_url
from tests.portal_support import Browser

#: https, because outside development the session cookie is Secure.
BASE_URL = "https://kassa.bench"
WARM_UP = 50
CUSTOMER_EMAIL = PEOPLE[0][1]
FIND_CUSTOMER = """
query($email: String!) { customers(email: $email, first: 1) { edges { node { id } } } }
"""


@dataclass(frozen=True)
class Figures:
    """Render times of one page, in milliseconds."""

    path: str
    median: float
    p99: float
    requests: int


def percentile(samples: list[float], percent: float) -> float:
    """The nearest-rank percentile: the value below which ``percent`` of samples fall."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


async def sign_in(client: httpx.AsyncClient, email: str, password: str, lands_on: str) -> None:
    """Sign in as a person does (the tests' :class:`~tests.portal_support.Browser`: the form,
    its CSRF token, the session cookie it sets), landing on ``lands_on``."""
    response = await Browser(client).sign_in(email, password)
    assert response.url.path == lands_on, response.text


async def measure(client: httpx.AsyncClient, path: str, requests: int) -> Figures:
    """Render ``path`` ``requests`` times after :data:`WARM_UP` unmeasured renders."""
    samples: list[float] = []
    for number in range(WARM_UP + requests):
        started = time.perf_counter()
        response = await client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        if number >= WARM_UP:
            samples.append(elapsed)
    return Figures(path, statistics.median(samples), percentile(samples, 99), len(samples))


async def run(database_url: str, requests: int) -> list[Figures]:
    await fresh_database(database_url)
    settings = Settings(
        database_url=database_url,
        environment="production",
        run_worker=False,
        graphiql=False,
        secret_key="bench",
        # Production wants its own key to seal the demo's processor credentials with: one
        # for this run, whose database is thrown away after it.
        encryption_key=secrets.token_urlsafe(32),
    )
    db = Database(settings)
    try:
        await load_demo_with_fakes(db)
        app = create_app(settings, database=db)
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as customer,
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as admin,
        ):
            await sign_in(customer, CUSTOMER_EMAIL, CUSTOMER_PASSWORD, "/portal")
            await sign_in(admin, *ADMIN_LOGIN, "/admin")
            found = await admin.post(
                "/graphql", json={"query": FIND_CUSTOMER, "variables": {"email": CUSTOMER_EMAIL}}
            )
            customer_id = found.json()["data"]["customers"]["edges"][0]["node"]["id"]
            return [
                await measure(customer, "/portal", requests),
                await measure(admin, f"/admin/customers/{customer_id}", requests),
            ]
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", help="a scratch database (default: a temporary SQLite file)"
    )
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kassa-bench-") as folder:
        database_url = (
            normalise_database_url(args.database_url)
            if args.database_url
            else sqlite_url(Path(folder) / "portal.db")
        )
        results = asyncio.run(run(database_url, args.requests))
    database = "SQLite" if database_url.startswith("sqlite") else database_url.split("@")[-1]
    print(
        f"Portal render time, in-process, {database}, {args.requests} requests per page "
        f"after {WARM_UP} to warm up"
    )
    for figures in results:
        print(f"  {figures.path:<52} median {figures.median:6.1f} ms   p99 {figures.p99:6.1f} ms")


if __name__ == "__main__":
    main()
