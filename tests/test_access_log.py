"""No card number or CVC reaches a log line of a real ``kassa serve`` — whatever way a client
sends one.

The server runs as its own process (as an operator starts it), with standard output and
error captured; the test sends the card in a GET's query string (refused with 405), in a
POST's variables and in its query text, as a JSON number (an error quoting the value), in a
body that does not parse, in a body nested too deeply, in headers and in the path.  Then
every line the process wrote is searched for the card's digits and the CVC.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from billing.db import Database
from settings import Settings
from tests.graphql_support import api_key
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
#: The simulator's approving card and a CVC for it.
CARD = "4242424242424242"
CVC = "731"
#: What a line may hold that is not the client's: its time and a request's duration.
NOT_THE_CLIENTS = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d[.,]\d+(?:\+00:00)?|\d+\.\dms")
ADD_CARD = (
    'mutation { addPaymentMethod(input: {customerId: "%s", cardNumber: "%s", expMonth: 12, '
    'expYear: 2035, cvc: "%s"}) { paymentMethod { last4 } errors { code } } }'
)
ADD_CARD_WITH_VARIABLES = (
    "mutation($input: AddPaymentMethodInput!) { addPaymentMethod(input: $input) "
    "{ paymentMethod { last4 } errors { code } } }"
)


async def _api_key(settings: Settings) -> str:
    """A partner key, made on this test's own event loop (the test is synchronous)."""
    database = Database(settings)
    try:
        return await api_key(database)
    finally:
        await database.dispose()


def _serve(
    settings: Settings, log_format: str, output: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """``kassa serve`` on a free port with its output going to ``output``; returns the
    process and its address once ``/healthz`` answers."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KASSA_DATABASE_URL": settings.database_url,
        "KASSA_ENV": "production",
        "KASSA_SECRET_KEY": "s" * 40,
        "KASSA_ENCRYPTION_KEY": "e" * 40,
        "KASSA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "KASSA_RUN_WORKER": "0",
        "KASSA_LOG_FORMAT": log_format,
    }
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", "from cli import app; app()", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, output.read_text()
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"kassa serve did not start:\n{output.read_text()}")


def _send_the_card_every_way(base: str, token: str) -> None:
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
        created = client.post(
            "/graphql",
            json={
                "query": 'mutation { createCustomer(input: {name: "Ada", currency: "USD", '
                'timeZone: "Europe/London"}) { customer { id } errors { code } } }'
            },
        ).json()
        customer = created["data"]["createCustomer"]["customer"]["id"]
        in_text = ADD_CARD % (customer, CARD, CVC)
        card_input = {
            "customerId": customer,
            "cardNumber": CARD,
            "expMonth": 12,
            "expYear": 2035,
            "cvc": CVC,
        }
        # A mutation in a GET's query string: refused, and its URL must not be logged.
        assert client.get("/graphql", params={"query": in_text}).status_code == 405
        # In the query text, and in variables: stored (last 4 digits only).
        stored = client.post("/graphql", json={"query": in_text}).json()
        assert stored["data"]["addPaymentMethod"]["paymentMethod"] == {"last4": "4242"}, stored
        with_variables = {"query": ADD_CARD_WITH_VARIABLES, "variables": {"input": card_input}}
        assert client.post("/graphql", json=with_variables).status_code == 200
        # As a JSON number: GraphQL's coercion error quotes the value.
        as_number = {**card_input, "cardNumber": int(CARD), "cvc": int(CVC)}
        refused = client.post(
            "/graphql", json={"query": ADD_CARD_WITH_VARIABLES, "variables": {"input": as_number}}
        )
        assert "errors" in refused.json()
        # Bodies kassa cannot read: broken JSON, JSON nested too deeply.
        broken = json.dumps(with_variables)[:-3]
        assert (
            client.post(
                "/graphql", content=broken, headers={"content-type": "application/json"}
            ).status_code
            == 400
        )
        nested = "[" * 5000 + "]" * 5000
        deep = f'{{"cardNumber": "{CARD}", "cvc": "{CVC}", "x": {nested}}}'
        assert (
            client.post(
                "/graphql", content=deep, headers={"content-type": "application/json"}
            ).status_code
            == 400
        )
        # Headers, a made-up request id, the path, a form post, and a portal page.
        client.get(
            "/graphql",
            params={"query": "{ viewer { authenticated } }", "cardNumber": CARD, "cvc": CVC},
            headers={"x-card": CARD, "x-request-id": CARD, "referer": f"https://x/?cvc={CVC}"},
        )
        # A path is logged (without its query string): a card number in it is recognised and
        # redacted; a CVC only where a field names it, as in the query string above.
        client.get(f"/pay/{CARD}")
        client.post(
            "/graphql",
            content=f"cardNumber={CARD}&cvc={CVC}",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        client.post("/portal/cards", data={"card_number": CARD, "cvc": CVC})


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_card_number_or_cvc_reaches_the_server_output(
    settings: Settings, db: Database, tmp_path: Path, log_format: str
) -> None:
    token = asyncio.run(_api_key(settings))
    output = tmp_path / "kassa-serve.log"
    process, base = _serve(settings, log_format, output)
    try:
        _send_the_card_every_way(base, token)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    lines = output.read_text().splitlines()
    access = [line for line in lines if "kassa.access" in line]
    assert len(access) >= 10, lines  # the requests were logged, so the search means something
    if log_format == "json":
        logged = [json.loads(line) for line in lines if line.startswith("{")]
        assert {"time", "level", "logger", "message", "request_id"} <= set(logged[0])
    for line in lines:
        digits = re.sub(r"[ -]", "", line)
        assert CARD not in digits, line
        assert CVC not in re.findall(r"[0-9A-Za-z]+", NOT_THE_CLIENTS.sub("", line)), line
        assert "?" not in line.split("kassa.access", 1)[-1], line  # no query strings
