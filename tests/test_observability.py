"""What an operator sees: ``/metrics`` (behind a token outside development), request ids that
follow a request into the jobs it schedules, redacted and structured log lines, and the
400 a deeply nested request body gets.

The real server's own output is checked in ``tests/test_access_log.py``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from app import create_app, metrics_allowed
from billing import clock, jobs, logs
from billing.db import Database
from billing.models import Job
from schema.http import GRAPHQL_RESPONSE_JSON, MAX_JSON_DEPTH, json_depth
from settings import Settings
from tests.factories import APPROVE
from tests.graphql_support import BASE_URL, Api, add_card, api_key, create_customer

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-for-the-tests"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def http(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The app as production runs it: /metrics behind a bearer token."""
    app = create_app(settings.with_(metrics_token=TOKEN), database=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as client:
        yield client


@pytest.fixture
async def api(http: httpx.AsyncClient, db: Database) -> Api:
    return Api(http, await api_key(db))


async def scrape(http: httpx.AsyncClient) -> Samples:
    """Every sample of a ``/metrics`` answer, by name and sorted labels."""
    response = await http.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def added(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much a series grew between two scrapes (counters live as long as the process)."""
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0) - before.get(key, 0)


# --- /metrics -------------------------------------------------------------------------------


async def test_metrics_count_requests_operations_and_jobs(
    api: Api, http: httpx.AsyncClient
) -> None:
    before = await scrape(http)
    await create_customer(api)  # schedules the bill run for the end of its period
    await api.post("query { nope }")
    await http.get("/nowhere")
    await http.get("/admin/customers/12345")
    after = await scrape(http)

    requests = "kassa_http_requests_total"
    assert added(before, after, requests, method="POST", route="/graphql", status="200") == 2
    assert added(before, after, requests, method="GET", route="unmatched", status="404") == 1
    assert added(before, after, "kassa_http_request_duration_seconds_count", method="POST",
                 route="/graphql") == 2  # fmt: skip
    # The route's template labels the series, never the id in the path.
    routes = {dict(labels).get("route") for _, labels in after}
    assert "/admin/customers/{id}" in routes
    assert not any("12345" in (route or "") for route in routes)

    operations = "kassa_graphql_operations_total"
    assert added(before, after, operations, operation="mutation", field="createCustomer") == 1
    assert added(before, after, operations, operation="query", field="unknown") == 1
    errors = "kassa_graphql_errors_total"
    assert added(before, after, errors, code="GRAPHQL_VALIDATION_FAILED") == 1

    assert after[("kassa_jobs_pending", ())] == 1
    assert after[("kassa_jobs_due", ())] == 0
    assert after[("kassa_jobs_failed", ())] == 0
    assert after[("kassa_jobs_oldest_due_age_seconds", ())] == 0


async def test_metrics_count_user_errors_payments_and_card_charges(
    api: Api, http: httpx.AsyncClient
) -> None:
    before = await scrape(http)
    customer = await create_customer(api)
    await add_card(api, customer["id"], APPROVE, make_default=True)
    refused = await api.mutate("createCustomer", {"name": "", "currency": "USD"}, "customer { id }")
    assert refused["errors"]
    paid = await api.mutate(
        "topUp",
        {"customerId": customer["id"], "amount": "5.00", "idempotencyKey": "metrics-top-up"},
        "payment { status }",
    )
    assert paid["payment"] == {"status": "COMPLETED"}, paid
    after = await scrape(http)

    code = refused["errors"][0]["code"]
    assert added(before, after, "kassa_graphql_user_errors_total", code=code) == 1
    assert added(before, after, "kassa_payments_total", channel="CARD", outcome="completed") == 1
    charges = "kassa_card_charge_attempts_total"
    assert added(before, after, charges, processor="simulator", outcome="succeeded") == 1


async def test_job_runs_are_counted_and_timed_by_kind(
    api: Api, http: httpx.AsyncClient, db: Database
) -> None:
    await create_customer(api)
    before = await scrape(http)
    async with db.transaction() as session:
        await session.execute(update(Job).values(due_at=await clock.now(session)))
    assert await jobs.run_due(db) >= 1
    after = await scrape(http)
    assert added(before, after, "kassa_job_runs_total", kind="bill_run", outcome="done") == 1
    assert added(before, after, "kassa_job_duration_seconds_count", kind="bill_run") == 1


@pytest.mark.parametrize(
    ("environment", "token", "authorization", "allowed"),
    [
        ("development", None, None, True),  # open on a developer's machine
        ("production", None, None, None),  # served to nobody: 404
        ("production", None, f"Bearer {TOKEN}", None),
        ("production", TOKEN, None, False),  # 401
        ("production", TOKEN, "Bearer wrong", False),
        ("production", TOKEN, f"Basic {TOKEN}", False),
        ("production", TOKEN, f"Bearer {TOKEN}", True),
        ("production", TOKEN, f"bearer {TOKEN}", True),
        ("development", TOKEN, None, False),  # a configured token is asked for everywhere
    ],
)
def test_who_may_read_metrics(
    environment: str, token: str | None, authorization: str | None, allowed: bool | None
) -> None:
    settings = Settings(environment=environment, metrics_token=token)
    assert metrics_allowed(settings, authorization) is allowed


async def test_metrics_refusals(settings: Settings, db: Database) -> None:
    for configured, status in ((None, 404), (TOKEN, 401)):
        app = create_app(settings.with_(metrics_token=configured), database=db)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL
        ) as client:
            response = await client.get("/metrics", headers={"authorization": "Bearer guess"})
        assert response.status_code == status
        assert "kassa_" not in response.text


def test_workers_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    """Two processes count into PROMETHEUS_MULTIPROC_DIR; a third reports their sum."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    count = (
        "from billing import metrics; metrics.HTTP_REQUESTS.labels('GET', '/healthz', 200).inc()"
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True, cwd=ROOT)
    report = (
        "from billing import jobs, metrics; "
        "print(metrics.exposition(jobs.QueueState(0, 0, 0, 0.0)).decode())"
    )
    shown = subprocess.run(
        [sys.executable, "-c", report], env=env, check=True, cwd=ROOT, capture_output=True
    ).stdout.decode()
    assert (
        'kassa_http_requests_total{method="GET",route="/healthz",status="200"} 2.0'
        in shown.splitlines()
    )
    assert "kassa_jobs_pending 0.0" in shown.splitlines()


# --- request ids ----------------------------------------------------------------------------


class Captured(logging.Handler):
    """Records with their request id, as the real handler sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(logs.RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    kassa = logging.getLogger("kassa")
    kassa.addHandler(handler)
    previous = kassa.level
    kassa.setLevel(logging.INFO)
    yield handler
    kassa.removeHandler(handler)
    kassa.setLevel(previous)


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("edge-7f3a:01.2_b", True),
        ("x" * 128, True),
        ("x" * 129, False),  # too long
        ("a b", False),
        ("id\r\nX-Injected: 1", False),
        ("", False),
        ("4242424242424242", False),  # it would be stored in the jobs it schedules
    ],
)
def test_an_incoming_request_id_is_kept_only_when_sane(incoming: str, kept: bool) -> None:
    chosen = logs.accepted_request_id(incoming)
    assert (chosen == incoming) is kept
    assert len(chosen) <= 128


async def test_a_request_id_follows_the_request_into_its_jobs(
    api: Api, http: httpx.AsyncClient, db: Database, captured: Captured
) -> None:
    api.http.headers["x-request-id"] = "from-the-edge-42"
    response = await api.post(
        'mutation { createCustomer(input: {name: "Ada", currency: "USD", '
        'timeZone: "Europe/London"}) { errors { code } } }'
    )
    assert response.headers["x-request-id"] == "from-the-edge-42"
    async with db.transaction() as session:
        [job] = (await session.scalars(select(Job))).all()
        assert json.loads(job.payload)[jobs.REQUEST_ID_KEY] == "from-the-edge-42"
        await session.execute(update(Job).values(due_at=await clock.now(session)))
    await jobs.run_due(db)
    ran = [r for r in captured.records if r.getMessage().startswith(f"job {job.id} (bill_run)")]
    assert [getattr(r, "request_id", None) for r in ran] == ["from-the-edge-42"]
    access = [r for r in captured.records if r.name == "kassa.access"]
    assert access and access[0].getMessage().startswith("POST /graphql 200 ")
    assert getattr(access[0], "request_id", None) == "from-the-edge-42"

    del http.headers["x-request-id"]
    fresh = await http.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 32  # made up when none came


# --- log lines ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        'mutation { addPaymentMethod(input: {cardNumber: "4242424242424242", cvc: "123"}) }',
        '{"cardNumber":"4242 4242 4242 4242","cvc":"1234"}',
        '{\\"cardNumber\\":\\"4242-4242-4242-4242\\",\\"cvc\\":\\"123\\"}',
        "GET /graphql?query=x&card_number=4242424242424242&cvv=123 HTTP/1.1",
        "CardDetails(number=4242424242424242, CVC=123)",
        "declined: 4000000000000002",
    ],
)
def test_card_numbers_and_cvcs_are_redacted(line: str) -> None:
    redacted = logs.redact(line)
    digits = "".join(ch for ch in redacted if ch.isdigit())
    assert "4242" not in digits and "0000" not in digits, redacted
    assert "123" not in redacted, redacted
    assert logs.REDACTED in redacted


def test_redaction_leaves_ordinary_numbers_alone() -> None:
    line = "POST /graphql 200 12.5ms: job 123 (bill_run) span: 3, company=7"
    assert logs.redact(line) == line


def test_json_lines() -> None:
    record = logging.LogRecord(
        "kassa.test", logging.WARNING, __file__, 1, "card %s cvc=%s", ("4242424242424242", "999"),
        None,
    )  # fmt: skip
    logs.RequestIdFilter().filter(record)
    token = logs.request_id.set("rid-1")
    try:
        logs.RequestIdFilter().filter(record)
    finally:
        logs.request_id.reset(token)
    entry: dict[str, Any] = json.loads(logs.JsonFormatter().format(record))
    assert set(entry) == {"time", "level", "logger", "message", "request_id"}
    assert (entry["level"], entry["logger"], entry["request_id"]) == (
        "WARNING",
        "kassa.test",
        "rid-1",
    )
    assert "4242" not in entry["message"] and "999" not in entry["message"]


# --- deeply nested JSON -----------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE_JSON])
async def test_deeply_nested_json_is_a_400_with_a_graphql_error(
    http: httpx.AsyncClient, depth: int, accept: str
) -> None:
    nested = "[" * depth + "]" * depth
    bodies = [
        nested,
        '{"query": "{ viewer { authenticated } }", "variables": {"a": ' + nested + "}}",
    ]
    for body in bodies:
        response = await http.post(
            "/graphql", content=body, headers={"content-type": "application/json", "accept": accept}
        )
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith(accept)
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "BAD_REQUEST"
        assert f"deeper than {MAX_JSON_DEPTH} levels" in error["message"]


async def test_nested_variables_in_a_get_are_refused_too(http: httpx.AsyncClient) -> None:
    nested = "[" * 2000 + "]" * 2000
    response = await http.get(
        "/graphql", params={"query": "{ viewer { authenticated } }", "variables": nested}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_json_within_the_limit_still_runs(http: httpx.AsyncClient) -> None:
    nested: object = 1
    for _ in range(MAX_JSON_DEPTH - 2):
        nested = [nested]
    response = await http.post(
        "/graphql",
        json={"query": "{ viewer { authenticated } }", "variables": {"unused": nested}},
    )
    assert json_depth({"variables": {"unused": nested}}) == MAX_JSON_DEPTH
    assert response.json() == {"data": {"viewer": {"authenticated": False}}}
