"""Helpers for the GraphQL and app tests: a GraphQL caller over HTTP, API keys, and the
mutations most tests start with.  The fixtures are in :mod:`tests.graphql_fixtures`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select

from billing.api_keys import create_api_key
from billing.db import Database
from billing.models import ApiKeyScope, Base
from tests.factories import PASSWORD

BASE_URL = "https://kassa.test"


@dataclass
class Api:
    """A GraphQL caller: one HTTP client and, optionally, the bearer token it sends."""

    http: httpx.AsyncClient
    token: str | None = None

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, accept: str = "application/json"
    ) -> httpx.Response:
        headers = {"accept": accept}
        if self.token is not None:
            headers["authorization"] = f"Bearer {self.token}"
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )

    async def run(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of a request that must succeed without any top-level error."""
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def mutate(self, name: str, input: dict[str, Any], selection: str) -> dict[str, Any]:
        """Run mutation ``name(input: …)`` and return its payload (``selection`` + errors)."""
        query = (
            f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) "
            f"{{ {selection} errors {{ field code message }} }} }}"
        )
        payload: dict[str, Any] = (await self.run(query, {"input": input}))[name]
        return payload

    def as_(self, token: str | None) -> Api:
        return Api(self.http, token)


async def signed_in_api(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> Api:
    """The API as the user ``email``, signed in with ``signIn``: it sends the token."""
    payload = await Api(http).mutate("signIn", {"email": email, "password": password}, "token")
    assert payload["errors"] == [] and payload["token"], payload
    return Api(http, payload["token"])


async def api_key(
    db: Database, scope: ApiKeyScope = ApiKeyScope.READ_WRITE, reseller_id: int | None = None
) -> str:
    async with db.transaction() as session:
        _, token = await create_api_key(session, "Test partner", scope, reseller_id)
    return token


async def row_counts(db: Database) -> dict[str, int]:
    """Rows per table: two equal snapshots prove a refused mutation wrote nothing."""
    async with db.session() as session:
        return {
            table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }


CUSTOMER_FIELDS = """
    id name email currency timeZone status billingPeriod
    balance { amount currency } availableFunds { amount currency } creditLimit { amount currency }
"""


async def create_customer(api: Api, **fields: Any) -> dict[str, Any]:
    payload = await api.mutate(
        "createCustomer",
        {"name": "Ada Lovelace", "currency": "USD", "timeZone": "Europe/London", **fields},
        f"customer {{ {CUSTOMER_FIELDS} }}",
    )
    assert payload["errors"] == [], payload["errors"]
    customer: dict[str, Any] = payload["customer"]
    return customer


async def create_account(api: Api, customer_id: str, number: str) -> dict[str, Any]:
    payload = await api.mutate(
        "createAccount",
        {"customerId": customer_id, "number": number, "product": "Mobile"},
        "account { id number product status }",
    )
    assert payload["errors"] == [], payload["errors"]
    account: dict[str, Any] = payload["account"]
    return account


async def post_charge(
    api: Api, account_id: str, amount: str, key: str, **fields: Any
) -> dict[str, Any]:
    payload = await api.mutate(
        "postCharge",
        {
            "accountId": account_id,
            "description": "Calls",
            "amount": amount,
            "currency": "USD",
            "idempotencyKey": key,
            **fields,
        },
        "charge { id amount { amount currency } kind invoiced }",
    )
    return payload


async def add_card(
    api: Api,
    customer_id: str,
    number: str,
    make_default: bool = False,
    selection: str = "id isDefault",
) -> dict[str, Any]:
    """``addPaymentMethod``: a test card (the simulator's numbers) stored for the customer;
    returns the payment method's ``selection``."""
    payload = await api.mutate(
        "addPaymentMethod",
        {
            "customerId": customer_id,
            "cardNumber": number,
            "expMonth": 12,
            "expYear": 2035,
            "cvc": "123",
            "makeDefault": make_default,
        },
        f"paymentMethod {{ {selection} }}",
    )
    assert payload["errors"] == [], payload["errors"]
    card: dict[str, Any] = payload["paymentMethod"]
    return card


async def table_contents(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order.

    Stricter than :func:`row_counts`: a refused update (a renamed customer, a card made the
    default, a moved balance) changes no row count, but it does change this snapshot.
    """
    async with db.session() as session:
        contents: dict[str, list[tuple[Any, ...]]] = {}
        for table in Base.metadata.sorted_tables:
            rows = await session.execute(select(table).order_by(*table.primary_key.columns))
            contents[table.name] = [tuple(row) for row in rows.all()]
        return contents
