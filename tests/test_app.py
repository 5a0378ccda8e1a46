"""The web app around the schema: GraphQL over HTTP, health, the lifespan's worker (metrics,
request ids and logs: ``tests/test_observability.py``)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from app import create_app
from billing import clock, jobs
from billing.db import Database
from billing.models import Job, JobStatus
from schema.http import GRAPHQL_RESPONSE_JSON, negotiate_media_type
from settings import Settings
from tests.graphql_support import BASE_URL, Api

pytest_plugins = ["tests.graphql_fixtures"]

#: Handled by a job kind registered here, so the test does not depend on billing's jobs.
PING_JOB = "test_app_ping"
_pings: list[datetime] = []


@jobs.handler(PING_JOB)
async def _ping(session: object, payload: dict[str, object], now: datetime) -> None:
    _pings.append(now)


# --- GraphQL over HTTP ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
        (f"application/json, {GRAPHQL_RESPONSE_JSON};q=0.5", "application/json"),
        (f"{GRAPHQL_RESPONSE_JSON};q=0", "application/json"),
        ("text/html", "application/json"),
    ],
)
def test_media_type_negotiation(accept: str | None, expected: str) -> None:
    assert negotiate_media_type(accept) == expected


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("application/json", 200),
        (GRAPHQL_RESPONSE_JSON, 400),
    ],
)
@pytest.mark.parametrize(
    "query",
    [
        "query { customers(",  # does not parse
        "query { noSuchField }",  # does not validate
    ],
)
async def test_request_errors(api: Api, accept: str, status: int, query: str) -> None:
    """A request that cannot run has no ``data``; only the new media type turns it into 400."""
    response = await api.post(query, accept=accept)
    assert response.status_code == status
    assert response.headers["content-type"] == f"{accept}; charset=utf-8"
    body = response.json()
    assert "data" not in body and body["errors"][0]["message"]


@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE_JSON])
async def test_bad_variables_are_a_request_error(api: Api, accept: str) -> None:
    response = await api.post(
        "query($first: Int!) { customers(first: $first) { totalCount } }",
        {"first": "many"},
        accept=accept,
    )
    assert response.status_code == (400 if accept == GRAPHQL_RESPONSE_JSON else 200)
    assert "data" not in response.json()


@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE_JSON])
async def test_executed_requests_are_200_with_either_media_type(api: Api, accept: str) -> None:
    ok = await api.post("query { viewer { authenticated } }", accept=accept)
    assert (ok.status_code, ok.headers["content-type"]) == (200, f"{accept}; charset=utf-8")
    assert ok.json() == {"data": {"viewer": {"authenticated": True}}}
    # A field error (here: not signed in) still executed, so data is there (null) and it is 200.
    refused = await api.as_(None).post("query { customers { totalCount } }", accept=accept)
    assert refused.status_code == 200
    assert refused.json()["data"] is None


async def test_get_runs_queries_but_never_mutations(api: Api, http: httpx.AsyncClient) -> None:
    headers = {"authorization": f"Bearer {api.token}"}
    ok = await http.get(
        "/graphql", params={"query": "{ viewer { authenticated } }"}, headers=headers
    )
    assert ok.json() == {"data": {"viewer": {"authenticated": True}}}
    mutation = await http.get(
        "/graphql",
        params={"query": 'mutation { createReseller(input: {name: "X"}) { errors { code } } }'},
        headers=headers,
    )
    assert mutation.status_code == 405


async def test_other_content_types_are_refused(http: httpx.AsyncClient) -> None:
    """A plain form post (which a foreign page could make with the cookie) never runs."""
    response = await http.post(
        "/graphql",
        content="query=mutation{signOut{errors{code}}}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "content_type",
    ["Application/JSON; charset=UTF-8", "APPLICATION/JSON", " application/json ;charset=utf-8"],
)
async def test_the_json_media_type_is_read_in_any_case(
    http: httpx.AsyncClient, content_type: str
) -> None:
    """Media types are case-insensitive (RFC 9110 §8.3.1)."""
    response = await http.post(
        "/graphql",
        content='{"query": "{ viewer { authenticated } }"}',
        headers={"content-type": content_type},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"viewer": {"authenticated": False}}}


@pytest.mark.parametrize(
    ("accept", "status"), [("application/json", 200), (GRAPHQL_RESPONSE_JSON, 400)]
)
async def test_several_operations_need_an_operation_name(
    api: Api, accept: str, status: int
) -> None:
    """GraphQL's GetOperation: with several operations and no operationName nothing runs
    (it used to run the first)."""
    document = "query A { viewer { role } } mutation B { signOut { errors { code } } }"
    response = await api.post(document, accept=accept)
    assert response.status_code == status
    body = response.json()
    assert "data" not in body
    assert [error["extensions"]["code"] for error in body["errors"]] == ["OPERATION_NAME_REQUIRED"]
    named = await api.http.post(
        "/graphql",
        json={"query": document, "operationName": "A"},
        headers={"authorization": f"Bearer {api.token}"},
    )
    assert named.json() == {"data": {"viewer": {"role": "ADMIN"}}}


@pytest.mark.parametrize("graphiql", [True, False])
async def test_graphiql_only_when_configured(
    settings: Settings, db: Database, graphiql: bool
) -> None:
    app = create_app(settings.with_(graphiql=graphiql), database=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as client:
        response = await client.get("/graphql", headers={"accept": "text/html"})
        assert response.status_code == (200 if graphiql else 404)
        if not graphiql:
            return
        # Every file the page loads is served here: nothing comes from a CDN.
        assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert "/static/vendor/graphiql/graphiql.min.js" in assets
        assert "//" not in response.text  # no absolute or protocol-relative address
        for asset in assets:
            assert asset.startswith("/static/"), asset
            assert (await client.get(asset)).status_code == 200, asset
    assert "connect-src 'self'" in response.headers["content-security-policy"]


# --- health -----------------------------------------------------------------------------------


async def test_healthz_pings_the_database(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_healthz_is_503_without_a_database(settings: Settings) -> None:
    broken = Database(settings.with_(database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none"))
    app = create_app(settings, database=broken)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as client:
        response = await client.get("/healthz")
    await broken.dispose()
    assert (response.status_code, response.json()) == (503, {"status": "unavailable"})


# --- the lifespan -----------------------------------------------------------------------------


async def test_lifespan_opens_the_database_and_runs_the_worker(
    settings: Settings, db: Database
) -> None:
    at = datetime(2027, 1, 1, tzinfo=UTC)
    async with db.transaction() as session:
        await clock.freeze(session, at)
        await jobs.schedule(session, PING_JOB, at, {})
    _pings.clear()
    app = create_app(settings.with_(run_worker=True))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL
        ) as client:
            assert (await client.get("/healthz")).status_code == 200
        for _ in range(100):  # the worker polls every second
            if _pings:
                break
            await asyncio.sleep(0.05)
    assert _pings == [at]
    async with db.session() as session:
        job = await session.scalar(select(Job).where(Job.kind == PING_JOB))
        assert job is not None and job.status == JobStatus.DONE


#: A job that is still running when the server is told to stop (the handler below).
SLOW_JOB = "test_app_slow"
_slow_started = asyncio.Event()


@jobs.handler(SLOW_JOB)
async def _slow(session: object, payload: dict[str, object], now: datetime) -> None:
    _slow_started.set()
    await asyncio.sleep(0.3)


async def test_shutdown_lets_the_job_in_hand_finish(settings: Settings, db: Database) -> None:
    """Stopping the server ends the worker between jobs: the job it is running commits (a
    cancelled one would be rolled back, and on SQLite could leave its connection holding the
    write lock past the pool's disposal), the next due job waits for the next worker."""
    at = datetime(2027, 1, 1, tzinfo=UTC)
    async with db.transaction() as session:
        await clock.freeze(session, at)
        for key in ("first", "second"):
            await jobs.schedule(session, SLOW_JOB, at, {}, unique_key=key)
    _slow_started.clear()
    app = create_app(settings.with_(run_worker=True))
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(_slow_started.wait(), 30)
    async with db.session() as session:
        statuses = (await session.scalars(select(Job.status).where(Job.kind == SLOW_JOB))).all()
    assert sorted(statuses) == sorted([JobStatus.DONE, JobStatus.PENDING])


async def test_no_worker_unless_configured(settings: Settings, db: Database) -> None:
    at = datetime(2027, 1, 1, tzinfo=UTC)
    async with db.transaction() as session:
        await clock.freeze(session, at)
        await jobs.schedule(session, PING_JOB, at, {})
    _pings.clear()
    app = create_app(settings.with_(run_worker=False))
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.2)
    assert _pings == []


def test_create_app_registers_the_billing_job_handlers(settings: Settings) -> None:
    create_app(settings)
    assert {"bill_run", "invoice_overdue"} <= set(jobs._handlers)
    assert {"collection_run", "card_charge_janitor"} <= set(jobs._detached)
