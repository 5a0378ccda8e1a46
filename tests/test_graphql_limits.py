"""Protective limits: depth, aliases, tokens, introspection, and masked internal errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from app import create_app
from billing.db import Database
from resolvers import customers as customer_resolvers
from schema.http import GRAPHQL_RESPONSE_JSON
from settings import Settings
from tests.graphql_support import BASE_URL, Api, api_key

pytest_plugins = ["tests.graphql_fixtures"]

MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def client_for(db: Database, settings: Settings) -> AsyncIterator[MakeApi]:
    """Build an API caller for an app with changed settings."""
    clients: list[httpx.AsyncClient] = []

    async def make(**changes: object) -> Api:
        app = create_app(settings.with_(**changes), database=db)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
        clients.append(client)
        return Api(client, await api_key(db))

    yield make
    for client in clients:
        await client.aclose()


def _nested(depth: int) -> str:
    """customers → node → accounts → customer → accounts → … ``depth`` levels deep."""
    inner = "id"
    for level in reversed(range(depth)):  # built inside out; the outermost is customer
        inner = f"customer {{ {inner} }}" if level % 2 == 0 else f"accounts {{ {inner} }}"
    return f"query {{ customers {{ edges {{ node {{ accounts {{ {inner} }} }} }} }} }}"


async def test_depth_limit(api: Api, client_for: MakeApi) -> None:
    assert "errors" not in (await api.post(_nested(4))).json()
    response = await api.post(_nested(12), accept=GRAPHQL_RESPONSE_JSON)
    assert response.status_code == 400
    assert "exceeds maximum operation depth" in response.json()["errors"][0]["message"]
    shallow = await client_for(max_query_depth=5)
    assert "depth" in (await shallow.post(_nested(4))).json()["errors"][0]["message"]


async def test_alias_limit(api: Api) -> None:
    def aliases(count: int) -> str:
        return "query { " + " ".join(f"v{n}: viewer {{ role }}" for n in range(count)) + " }"

    assert "errors" not in (await api.post(aliases(30))).json()
    response = await api.post(aliases(31), accept=GRAPHQL_RESPONSE_JSON)
    assert response.status_code == 400
    assert "aliases" in response.json()["errors"][0]["message"]


async def test_token_limit(api: Api) -> None:
    huge = "query { viewer { " + "role " * 2500 + "} }"
    response = await api.post(huge, accept=GRAPHQL_RESPONSE_JSON)
    assert response.status_code == 400
    assert "more than 2000 tokens" in response.json()["errors"][0]["message"]


async def test_introspection_can_be_turned_off(api: Api, client_for: MakeApi) -> None:
    query = "query { __schema { queryType { name } } }"
    assert (await api.run(query)) == {"__schema": {"queryType": {"name": "Query"}}}
    closed = await client_for(introspection=False)
    body = (await closed.post(query)).json()
    assert "data" not in body and "introspection" in body["errors"][0]["message"].lower()
    # Nor do typos get "did you mean …?" hints that would give the schema away.
    typo = (await closed.post("query { customerz { totalCount } }")).json()
    assert "Did you mean" not in typo["errors"][0]["message"]


#: Typos graphql-core answers with "did you mean …?": a field, an argument, an enum value
#: given as a variable (coerced while executing, not while validating) and a type.
TYPOS = [
    ("query { customerz { totalCount } }", None),
    ("query { customers(frist: 1) { totalCount } }", None),
    ("query($s: CustomerStatus) { customers(status: $s) { totalCount } }", {"s": "ACTIV"}),
    ("query($s: CustomerStatu) { customers(status: $s) { totalCount } }", None),
]
INTROSPECTION = "query { __schema { queryType { name } } }"


async def _schema_answers(caller: Api) -> tuple[bool, list[bool]]:
    """Whether introspection ran, and for each typo whether its error offered a suggestion."""
    introspected = "data" in (await caller.post(INTROSPECTION)).json()
    hints = []
    for query, variables in TYPOS:
        body = (await caller.post(query, variables)).json()
        assert "data" not in body and body["errors"], body
        hints.append("Did you mean" in body["errors"][0]["message"])
    return introspected, hints


async def test_anonymous_callers_do_not_read_the_schema_in_production(
    client_for: MakeApi,
) -> None:
    production = await client_for(environment="production")
    assert await _schema_answers(production.as_(None)) == (False, [False] * len(TYPOS))
    refused = (await production.as_(None).post(INTROSPECTION)).json()
    assert "introspection" in refused["errors"][0]["message"].lower()
    # A partner with a key (or anyone signed in) and development keep both.
    assert await _schema_answers(production) == (True, [True] * len(TYPOS))
    development = await client_for(environment="development")
    assert await _schema_answers(development.as_(None)) == (True, [True] * len(TYPOS))


async def test_internal_errors_are_masked_outside_development(
    client_for: MakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> object:
        raise RuntimeError("connection string postgres://secret@db")

    monkeypatch.setattr(customer_resolvers, "customer_list", broken)
    query = "query { customers { totalCount } }"
    production = await client_for(environment="production")
    body = (await production.post(query)).json()
    assert body["errors"][0]["message"] == "Unexpected error."
    assert "secret" not in str(body)
    development = await client_for(environment="development")
    assert "secret" in (await development.post(query)).json()["errors"][0]["message"]


async def test_access_errors_are_not_masked(client_for: MakeApi) -> None:
    production = await client_for(environment="production")
    body = (await production.as_(None).post("query { customers { totalCount } }")).json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["errors"][0]["message"] == "Sign in or send an API key first."


async def test_card_numbers_never_reach_an_error_message(api: Api) -> None:
    """Sent as a JSON number, the card number would be quoted by GraphQL's own error."""
    response = await api.post(
        """mutation($input: AddPaymentMethodInput!) { addPaymentMethod(input: $input) {
            errors { code } } }""",
        {
            "input": {
                "customerId": "x",
                "cardNumber": 4242424242424242,
                "expMonth": 12,
                "expYear": 2030,
                "cvc": 123,
            }
        },
    )
    assert "4242424242424242" not in response.text
    assert "[redacted]" in response.json()["errors"][0]["message"]


async def test_test_clock_only_in_test_mode(api: Api, client_for: MakeApi) -> None:
    assert (await api.run("query { testClock { frozen } }")) == {"testClock": {"frozen": False}}
    live = await client_for(test_mode=False)
    body = (await live.post("query { testClock { now } }")).json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = (
        await live.post(
            'mutation { advanceTestClock(input: {to: "2030-01-01T00:00:00Z"}) { jobsRun } }'
        )
    ).json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
