"""The API benchmark's hand-written endpoints (bench/api_server.py) keep doing kassa's job:
the dashboard answers what kassa's GraphQL answers, and a charge posted by hand is a charge
kassa would have posted (ledger balanced, the account's number kept, a replay answered
with the first charge) — a baseline that skipped work, or broke when the schema moved on,
would make every ratio in docs/benchmarks.md a lie.  PostgreSQL only, as the endpoints."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bench.api import DASHBOARD, POST_CHARGE
from billing.api_keys import create_api_key
from billing.db import Database
from billing.models import ApiKeyScope, Charge
from schema.relay import encode_id
from settings import Settings
from tests.factories import Party, new_party


@pytest.fixture
async def servers(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """The hand-written app and kassa's, as ``bench.api`` serves them, on the test database."""
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("the hand-written endpoints are PostgreSQL's")
    monkeypatch.setenv("KASSA_DATABASE_URL", settings.database_url)
    from bench import api_server

    async with AsyncExitStack() as stack:
        clients = []
        for app in (api_server.plain_app(), api_server.kassa_app()):
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://bench")
                )
            )
        yield clients[0], clients[1]


async def _key(db: Database) -> dict[str, str]:
    async with db.transaction() as session:
        _, token = await create_api_key(session, "bench", ApiKeyScope.READ_WRITE)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


async def _kassa_charge(kassa: httpx.AsyncClient, headers: dict[str, str], party: Party) -> Any:
    variables = {
        "input": {
            "accountId": encode_id("Account", party.account.id),
            "amount": "1.25",
            "currency": "USD",
            "description": "Through kassa",
            "idempotencyKey": uuid.uuid4().hex,
        }
    }
    body = json.dumps({"query": POST_CHARGE, "variables": variables})
    answer = (await kassa.post("/graphql", content=body, headers=headers)).json()
    assert answer["data"]["postCharge"]["errors"] == [], answer
    return answer


async def test_the_hand_written_endpoints_do_kassas_job(
    db: Database, servers: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    plain, kassa = servers
    party = await new_party(db, account_number="ACC-77")
    headers = await _key(db)
    await _kassa_charge(kassa, headers, party)  # kassa makes the revenue book

    charge = {"description": "By hand", "amount": "2.50", "currency": "USD"}
    body = json.dumps({**charge, "idempotencyKey": "k-1"})
    path = f"/accounts/{party.account.id}/charges"
    first = await plain.post(path, content=body, headers=headers)
    replayed = await plain.post(path, content=body, headers=headers)
    assert first.status_code == replayed.status_code == 200, first.text
    assert first.json() == replayed.json()
    async with db.session() as session:
        charges = (await session.scalars(select(Charge).order_by(Charge.id))).all()
    assert [(c.amount, c.account_number, c.description) for c in charges] == [
        (125, "ACC-77", "Through kassa"),
        (250, "ACC-77", "By hand"),
    ]  # and the db fixture proves every book equals its entries afterwards

    dashboard = json.dumps(
        {"query": DASHBOARD, "variables": {"id": encode_id("Customer", party.customer.id)}}
    )
    by_hand = await plain.get(f"/dashboard/{party.customer.id}", headers=headers)
    by_kassa = await kassa.post("/graphql", content=dashboard, headers=headers)
    assert by_hand.status_code == 200, by_hand.text
    assert by_hand.json() == by_kassa.json()
    assert by_hand.json()["data"]["customer"]["balance"]["amount"] == "3.75"


async def test_the_hand_written_charge_refuses_what_kassa_refuses(
    db: Database, servers: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    plain, kassa = servers
    party = await new_party(db)
    headers = await _key(db)
    await _kassa_charge(kassa, headers, party)
    path = f"/accounts/{party.account.id}/charges"
    refused = [
        await plain.post(path, content=json.dumps(body), headers=headers)
        for body in (
            {"description": "x", "amount": "-1.00", "currency": "USD", "idempotencyKey": "a"},
            {"description": "x", "amount": "1.005", "currency": "USD", "idempotencyKey": "b"},
            {"description": "x", "amount": "1.00", "currency": "EUR", "idempotencyKey": "c"},
            {"description": "x", "amount": "1.00", "currency": "USD"},
        )
    ]
    assert [r.status_code for r in refused] == [400, 400, 400, 400]
    wrong_key = {**headers, "Authorization": "Bearer kassa_nope.nope"}
    body = json.dumps({"description": "x", "amount": "1", "currency": "USD", "idempotencyKey": "d"})
    assert (await plain.post(path, content=body, headers=wrong_key)).status_code == 401
    async with db.session() as session:
        assert len((await session.scalars(select(Charge))).all()) == 1
