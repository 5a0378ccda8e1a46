"""API benchmark: kassa's GraphQL against the best hand-written endpoints, side by side.

    .venv/bin/python -m bench.api [--rounds 3] [--duration 15] [--scenarios dashboard,...]
        [--database-url postgresql://postgres@127.0.0.1:5432/kassa_bench]

It loads the demo into a scratch database (dropped and re-made: never point it at real
data) plus :data:`WRITE_CUSTOMERS` customers with one account each, starts both servers
under uvicorn with the same number of worker processes (``bench.api_server``: kassa's app,
and the hand-written ``plain_app``), and drives them with ``wrk`` (Debian package; installed
if missing) — alternately, round after round, so both see the same machine.  Scenarios:

* ``dashboard``: the customer-dashboard query (:data:`DASHBOARD`) against ``GET
  /dashboard/{id}``;
* ``charge``: ``postCharge`` from every connection, round-robin over the accounts of
  :data:`WRITE_CUSTOMERS` customers (concurrent requests almost never share a customer),
  against the hand-written ``POST /accounts/{id}/charges``;
* ``hot-charge``: the same on one account, so every request waits for the customer's lock.

Figures per server: requests/s, p50 and p99 latency (wrk's), and the server processes' CPU
per request (their user + system time from ``/proc`` over the run, divided by the requests
wrk completed), each the median of the rounds; then kassa's ratios to the hand-written one.
After the write scenarios the ledger's cached balances are checked against their entries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import select

from bench.demo_load import load_demo_with_fakes
from bench.scratch import fresh_database
from billing import accounts, customers, ledger
from billing.db import Database
from billing.demo import ADMIN
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

POST_CHARGE = """
mutation Charge($input: PostChargeInput!) {
  postCharge(input: $input) { charge { id amount { amount currency } } errors { code message } }
}
"""

#: The scratch database (dropped and re-made by bench.api).
DATABASE_URL = os.environ.get(
    "KASSA_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/kassa_bench"
)

#: Customers (one account each) the ``charge`` scenario spreads its requests over.
WRITE_CUSTOMERS = 500

#: A wrk script sending one request over and over.
FIXED_REQUEST = """
wrk.method = "{method}"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""

#: A wrk script posting charges: each request takes the next account (round-robin, the two
#: threads interleaved) and an idempotency key never used before.
CHARGE_REQUESTS = """
local counter = 0
local accounts = {{ {accounts} }}
local template = {template}
local headers = {{
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer {token}",
}}
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function request()
  counter = counter + 1
  local account = accounts[((counter * 2 + id) % #accounts) + 1]
  local key = "{run}-" .. id .. "-" .. counter
  local body = template:gsub("@ACCOUNT@", account):gsub("@KEY@", key)
  return wrk.format("POST", ({path}):gsub("@ACCOUNT@", account), headers, body)
end
"""


@dataclass(frozen=True)
class BenchData:
    token: str
    customer_id: int
    #: The write scenarios' accounts, one per customer.
    account_ids: list[int]


@dataclass(frozen=True)
class Figures:
    rps: float
    p50: float
    p99: float
    cpu_ms: float
    errors: float


async def prepare(database_url: str) -> BenchData:
    """A fresh database with the demo in it and the write scenarios' customers."""
    await fresh_database(database_url)
    db = Database(Settings(database_url=database_url, run_worker=False))
    try:
        token = (await load_demo_with_fakes(db)).api_key
        async with db.session() as session:
            customer_id = await session.scalar(select(Customer.id).order_by(Customer.id).limit(1))
        assert customer_id is not None
        account_ids = []
        async with db.transaction() as session:
            for number in range(WRITE_CUSTOMERS):
                customer = await customers.create_customer(
                    session,
                    ADMIN,
                    customers.CustomerInput(name=f"Bench customer {number}", currency="USD"),
                )
                account = await accounts.create_account(
                    session, ADMIN, customer.id, f"BENCH-{number:05d}", "Bench line"
                )
                account_ids.append(account.id)
        return BenchData(token, customer_id, account_ids)
    finally:
        await db.dispose()


async def ledger_problems(database_url: str) -> int:
    """How many books' cached balances differ from their entries (``kassa check``'s test)."""
    db = Database(Settings(database_url=database_url, run_worker=False))
    try:
        async with db.session() as session:
            return len(await ledger.verify_balances(session))
    finally:
        await db.dispose()


class Server:
    """One benchmarked app under uvicorn, and the CPU time its processes have used."""

    def __init__(self, factory: str, port: int, workers: int, database_url: str) -> None:
        self.factory = factory
        self.base = f"http://127.0.0.1:{port}"
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
        # Its stderr goes to a file, read only when something failed: wrk closing connections
        # mid-request at the end of a run makes uvicorn log ClientDisconnect tracebacks.
        self.log = Path(tempfile.gettempdir()) / f"kassa-bench-{factory}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, env=env, stderr=log)
        for _ in range(150):
            try:
                httpx.get(f"{self.base}/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{factory} did not start")

    def cpu_seconds(self) -> float:
        """User + system time of the uvicorn process and its workers so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        return total

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def wrk(url: str, script: str, connections: int, seconds: int) -> tuple[dict[str, float], int]:
    """wrk's figures (requests/s, p50, p99 in ms, non-2xx) and the requests it completed."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    try:
        output = subprocess.run(
            [
                *("wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency"),
                # wrk leaves a request slower than its timeout (2 s by default) out of the
                # figures altogether; a slow server must not look faster for it.
                *("--timeout", "30s"),
                *("-s", lua.name, url),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        Path(lua.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]

    def latency(percent: str) -> float:
        value, unit = re.search(rf"\s{percent}%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures = {
        "rps": rps,
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }
    return figures, requests


@dataclass(frozen=True)
class Target:
    """What one server is asked in one scenario: a URL and the wrk script asking it."""

    server: Server
    path: str
    script: str
    check: httpx.Request


def _lua_string(value: str) -> str:
    return json.dumps(value)  # ASCII only: JSON's escapes are Lua's


def dashboard_targets(plain: Server, kassa: Server, data: BenchData) -> tuple[Target, Target]:
    body = json.dumps(
        {"query": DASHBOARD, "variables": {"id": encode_id("Customer", data.customer_id)}}
    )
    headers = {"Authorization": f"Bearer {data.token}", "Content-Type": "application/json"}
    plain_path = f"/dashboard/{data.customer_id}"
    return (
        Target(
            plain,
            plain_path,
            FIXED_REQUEST.format(method="GET", body='""', token=data.token),
            httpx.Request("GET", plain.base + plain_path, headers=headers),
        ),
        Target(
            kassa,
            "/graphql",
            FIXED_REQUEST.format(method="POST", body=_lua_string(body), token=data.token),
            httpx.Request("POST", kassa.base + "/graphql", content=body, headers=headers),
        ),
    )


def charge_targets(
    plain: Server, kassa: Server, data: BenchData, account_ids: list[int]
) -> tuple[Target, Target]:
    """Both servers posting charges of 1.00 USD round-robin over ``account_ids``."""
    headers = {"Authorization": f"Bearer {data.token}", "Content-Type": "application/json"}
    charge = {"description": "Bench usage", "amount": "1.00", "currency": "USD"}
    plain_body = json.dumps({**charge, "idempotencyKey": "@KEY@"})
    kassa_body = json.dumps(
        {
            "query": POST_CHARGE,
            "variables": {"input": {**charge, "accountId": "@ACCOUNT@", "idempotencyKey": "@KEY@"}},
        }
    )

    def script(body: str, accounts: Sequence[str], path: str) -> str:
        return CHARGE_REQUESTS.format(
            accounts=", ".join(_lua_string(a) for a in accounts),
            template=_lua_string(body),
            token=data.token,
            run=uuid.uuid4().hex[:12],
            path=_lua_string(path),
        )

    def first(body: str, account: str) -> str:
        return body.replace("@ACCOUNT@", account).replace("@KEY@", uuid.uuid4().hex)

    plain_path = "/accounts/@ACCOUNT@/charges"
    kassa_accounts = [encode_id("Account", a) for a in account_ids]
    return (
        Target(
            plain,
            plain_path,
            script(plain_body, [str(a) for a in account_ids], plain_path),
            httpx.Request(
                "POST",
                plain.base + plain_path.replace("@ACCOUNT@", str(account_ids[0])),
                content=first(plain_body, ""),
                headers=headers,
            ),
        ),
        Target(
            kassa,
            "/graphql",
            script(kassa_body, kassa_accounts, "/graphql"),
            httpx.Request(
                "POST",
                kassa.base + "/graphql",
                content=first(kassa_body, kassa_accounts[0]),
                headers=headers,
            ),
        ),
    )


def measure(target: Target, args: argparse.Namespace, seconds: int) -> Figures:
    """One wrk run against ``target``, with its server's CPU per completed request."""
    cpu_before = target.server.cpu_seconds()
    figures, requests = wrk(
        target.server.base + target.path, target.script, args.connections, seconds
    )
    cpu = target.server.cpu_seconds() - cpu_before
    return Figures(
        rps=figures["rps"],
        p50=figures["p50"],
        p99=figures["p99"],
        cpu_ms=1000 * cpu / max(requests, 1),
        errors=figures["errors"],
    )


def check(target: Target) -> None:
    """One request by hand: it must succeed, with no GraphQL errors anywhere in it."""
    response = httpx.Client(timeout=30).send(target.check)
    response.raise_for_status()
    assert '"errors":[{' not in response.text.replace(" ", ""), response.text
    assert "error" not in response.json() or not response.json()["error"], response.text


def median_figures(runs: list[Figures]) -> Figures:
    return Figures(
        *(statistics.median(getattr(run, name) for run in runs) for name in Figures.__annotations__)
    )


def run_scenario(
    name: str, targets: tuple[Target, Target], args: argparse.Namespace
) -> tuple[Figures, Figures]:
    """Alternate the two servers for ``args.rounds`` rounds (each starting with the one
    that went second the round before); the medians of each."""
    for target in targets:
        check(target)
        measure(target, args, args.warm_up)
    runs: dict[str, list[Figures]] = {"plain": [], "kassa": []}
    for number in range(args.rounds):
        order = list(zip(("plain", "kassa"), targets, strict=True))
        for label, target in order if number % 2 == 0 else reversed(order):
            figures = measure(target, args, args.duration)
            runs[label].append(figures)
            print(
                f"  {name} round {number + 1} {label:<5} {figures.rps:7.0f} req/s  "
                f"p50 {figures.p50:6.1f} ms  p99 {figures.p99:6.1f} ms  "
                f"cpu {figures.cpu_ms:5.2f} ms/req  non-2xx {figures.errors:.0f}",
                flush=True,
            )
            if figures.errors:
                print(f"  (non-2xx answers: see {target.server.log})")
    return median_figures(runs["plain"]), median_figures(runs["kassa"])


SCENARIOS = ("dashboard", "charge", "hot-charge")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--warm-up", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
    database_url = normalise_database_url(args.database_url)
    data = asyncio.run(prepare(database_url))
    plain = Server("plain_app", 8765, args.workers, database_url)
    kassa = Server("kassa_app", 8766, args.workers, database_url)
    results: dict[str, tuple[Figures, Figures]] = {}
    try:
        for name in args.scenarios.split(","):
            if name == "dashboard":
                targets = dashboard_targets(plain, kassa, data)
            elif name == "charge":
                targets = charge_targets(plain, kassa, data, data.account_ids)
            elif name == "hot-charge":
                targets = charge_targets(plain, kassa, data, data.account_ids[:1])
            else:
                raise SystemExit(f"unknown scenario {name!r}: one of {', '.join(SCENARIOS)}")
            results[name] = run_scenario(name, targets, args)
    finally:
        plain.stop()
        kassa.stop()
    print(
        f"API benchmark: {args.connections} connections, {args.rounds} alternating rounds of "
        f"{args.duration} s, {args.workers} uvicorn workers each, "
        f"{database_url.split('@')[-1]}; medians"
    )
    for name, (hand, graphql) in results.items():
        for label, figures in (("hand-written", hand), ("kassa GraphQL", graphql)):
            print(
                f"  {name:<10} {label:<13} {figures.rps:7.0f} req/s  p50 {figures.p50:6.1f} ms  "
                f"p99 {figures.p99:6.1f} ms  cpu {figures.cpu_ms:5.2f} ms/req  "
                f"non-2xx {figures.errors:.0f}"
            )
        print(
            f"  {name:<10} ratio kassa/hand-written: throughput {graphql.rps / hand.rps:.2f}x, "
            f"p99 {graphql.p99 / hand.p99:.2f}x, cpu {graphql.cpu_ms / hand.cpu_ms:.2f}x"
        )
    if any(name != "dashboard" for name in results):
        problems = asyncio.run(ledger_problems(database_url))
        print(f"  ledger after the write scenarios: {problems} books out of balance")


if __name__ == "__main__":
    main()
