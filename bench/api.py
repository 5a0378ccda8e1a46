"""API benchmark: the customer-dashboard GraphQL query under 50 concurrent clients.

    .venv/bin/python -m bench.api [--database-url postgresql://postgres@127.0.0.1/kassa_bench]

It loads the demo into a scratch database (dropped and re-made: never point it at real
data), then drives each server with ``wrk`` (Debian package; installed if missing) for
``--duration`` seconds after a warm-up: first the plain Starlette endpoint running the same
SQL (the baseline), then kassa's /graphql.  Both run under uvicorn with the same number of
worker processes.  Figures: requests/s, median and p99 latency, and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from bench.scratch import fresh_database
from billing.db import Database
from billing.demo import load_demo
from billing.models import Customer
from schema.relay import encode_id
from settings import Settings, normalise_database_url

DASHBOARD = """
query Dashboard($id: ID!) {
  customer(id: $id) {
    id name status
    balance { amount currency }
    availableFunds { amount currency }
    accounts { id number product status }
    invoices(first: 10) { id number status total { amount currency }
                          outstanding { amount currency } dueDate }
    payments(first: 10) { id amount { amount currency } method status receivedAt }
  }
}
"""

WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""


async def prepare(database_url: str) -> tuple[str, int]:
    """A fresh database with the demo in it; returns an API key and the busiest customer."""
    await fresh_database(database_url)
    db = Database(Settings(database_url=database_url, run_worker=False))
    token = (await load_demo(db)).api_key
    async with db.session() as session:
        customer_id = await session.scalar(select(Customer.id).order_by(Customer.id).limit(1))
    await db.dispose()
    assert customer_id is not None
    return token, customer_id


def start_server(
    factory: str, port: int, workers: int, database_url: str
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KASSA_DATABASE_URL": database_url}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        f"bench.api_server:{factory}",
        "--factory",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    # Its stderr is dropped: wrk closing connections mid-request at the end of a run makes
    # uvicorn log ClientDisconnect tracebacks that say nothing about the figures.
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"{factory} did not start")


def wrk(url: str, script: str, connections: int, seconds: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    output = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            lua.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(lua.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def latency(percent: str) -> float:
        value, unit = re.search(rf"\s{percent}%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": rps,
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def measure(
    factory: str,
    url_path: str,
    method: str,
    body: str,
    token: str,
    port: int,
    args: argparse.Namespace,
    database_url: str,
) -> dict[str, float]:
    server = start_server(factory, port, args.workers, database_url)
    try:
        script = WRK_SCRIPT.format(method=method, body=json.dumps(body), token=token)
        url = f"http://127.0.0.1:{port}{url_path}"
        check = httpx.request(
            method,
            url,
            content=body or None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        check.raise_for_status()
        assert "errors" not in check.json(), check.text
        wrk(url, script, args.connections, 2)  # warm-up: pools, caches, JIT-free but still
        return wrk(url, script, args.connections, args.duration)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "KASSA_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/kassa_bench"
        ),
    )
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
    database_url = normalise_database_url(args.database_url)
    token, customer_id = asyncio.run(prepare(database_url))
    body = json.dumps({"query": DASHBOARD, "variables": {"id": encode_id("Customer", customer_id)}})
    plain = measure(
        "plain_app", f"/dashboard/{customer_id}", "GET", "", token, 8765, args, database_url
    )
    graphql = measure("kassa_app", "/graphql", "POST", body, token, 8766, args, database_url)
    print(
        f"API dashboard benchmark: {args.connections} connections, {args.duration} s, "
        f"{args.workers} uvicorn workers, {database_url.split('@')[-1]}"
    )
    for name, figures in (("plain Starlette + same SQL", plain), ("kassa GraphQL", graphql)):
        print(
            f"  {name:<28} {figures['rps']:8.0f} req/s   p50 {figures['p50']:6.1f} ms   "
            f"p99 {figures['p99']:6.1f} ms   non-2xx {figures['errors']:.0f}"
        )
    print(f"  ratio GraphQL / plain: {graphql['rps'] / plain['rps']:.2f}")


if __name__ == "__main__":
    main()
