"""Input rules the API applies the same way wherever an input appears: amounts are ASCII
decimals, a currency code is read by one function, a search has a length, a customer cannot
quietly fail to change what only staff may change."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from billing.customers import MAX_SEARCH_LENGTH
from billing.db import Database
from schema.relay import encode_id
from tests.factories import customer_with_login
from tests.graphql_support import (
    Api,
    create_account,
    create_customer,
    post_charge,
    row_counts,
    signed_in_api,
    table_contents,
)

pytest_plugins = ["tests.graphql_fixtures"]

#: Codes that ``upper()`` or a lenient reader would turn into a real currency.
BAD_CURRENCIES = ["\u0131nr", "\uff35\uff33\uff24", "US D", "USDX"]
#: Amounts Python's ``int()``/``Decimal()`` would read, which the API must not.
BAD_AMOUNTS = ["\u0661\u0662", "\uff11\uff12", "1_000", "1 000", "+5", "1e3"]


async def _record_payment(api: Api, customer_id: str, amount: str, currency: str) -> Any:
    return await api.mutate(
        "recordPayment",
        {
            "customerId": customer_id,
            "amount": amount,
            "currency": currency,
            "method": "CASH",
            "idempotencyKey": f"pay-{amount}-{currency}",
        },
        "payment { amount { amount currency } }",
    )


async def test_a_lower_case_currency_is_upper_cased_in_every_input(api: Api) -> None:
    customer = await create_customer(api, currency="usd", creditLimit="10.00")
    assert customer["currency"] == "USD"
    assert customer["creditLimit"] == {"amount": "10.00", "currency": "USD"}
    account = await create_account(api, customer["id"], "A-1")
    charge = await post_charge(api, account["id"], "2.50", "c-1", currency="usd")
    assert charge["errors"] == [] and charge["charge"]["amount"]["currency"] == "USD"
    paid = await _record_payment(api, customer["id"], "1.00", "Usd")
    assert paid["errors"] == [] and paid["payment"]["amount"]["currency"] == "USD"


@pytest.mark.parametrize("code", BAD_CURRENCIES)
async def test_a_bad_currency_is_refused_in_every_input(api: Api, db: Database, code: str) -> None:
    customer = await create_customer(api)
    account = await create_account(api, customer["id"], "A-1")
    before = await row_counts(db)
    refusals = [
        await api.mutate(
            "createCustomer",
            {"name": "X", "currency": code, "creditLimit": "1.00"},
            "customer { id }",
        ),
        await post_charge(api, account["id"], "1.00", "c-bad", currency=code),
        await _record_payment(api, customer["id"], "1.00", code),
    ]
    for payload in refusals:
        assert [(e["field"], e["code"]) for e in payload["errors"]] == [
            ("currency", "INVALID_CURRENCY")
        ], payload
    assert await row_counts(db) == before


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
async def test_amounts_are_ascii_decimals_in_every_input(
    api: Api, db: Database, amount: str
) -> None:
    customer = await create_customer(api)
    account = await create_account(api, customer["id"], "A-1")
    before = await row_counts(db)
    refusals = [
        (
            "creditLimit",
            await api.mutate(
                "createCustomer",
                {"name": "X", "currency": "USD", "creditLimit": amount},
                "customer { id }",
            ),
        ),
        ("amount", await post_charge(api, account["id"], amount, "c-bad")),
        ("amount", await _record_payment(api, customer["id"], amount, "USD")),
    ]
    for field, payload in refusals:
        assert [(e["field"], e["code"]) for e in payload["errors"]] == [
            (field, "INVALID_AMOUNT")
        ], payload
    assert await row_counts(db) == before


async def test_a_customer_search_has_a_length(api: Api) -> None:
    await create_customer(api, name="Ada Lovelace", email="ada@example.com")
    query = "query($s: String!) { customers(search: $s) { totalCount } }"
    found = await api.run(query, {"s": "x" * MAX_SEARCH_LENGTH})
    assert found == {"customers": {"totalCount": 0}}
    body = (await api.post(query, {"s": "x" * (MAX_SEARCH_LENGTH + 1)})).json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "TOO_LONG", "field": "search"}
    email = (
        await api.post(
            "query($e: String!) { customers(email: $e) { totalCount } }",
            {"e": "a" * 300 + "@example.com"},
        )
    ).json()
    assert email["errors"][0]["extensions"] == {"code": "TOO_LONG", "field": "email"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("creditLimit", "1000.00"), ("status", "CLOSED"), ("creditLimit", "0.00")],
)
async def test_a_customer_changing_what_only_staff_change_is_refused(
    api: Api, http: httpx.AsyncClient, db: Database, field: str, value: str
) -> None:
    login = await customer_with_login(db)
    me = await signed_in_api(http, login.email)
    customer_id = encode_id("Customer", login.id)
    before = await table_contents(db)
    body = (
        await me.post(
            "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) {"
            " customer { id } errors { code } } }",
            {"input": {"id": customer_id, "phone": "+1 555 0100", field: value}},
        )
    ).json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN" and field in error["message"]
    assert await table_contents(db) == before  # not even the phone number


@pytest.mark.parametrize(
    ("search", "names"),
    [
        ("%", ["100% Fibre"]),
        ("_", ["Snake_Case Ltd"]),
        ("\\", ["Back\\slash"]),
        ("e_c", ["Snake_Case Ltd"]),  # "_" is no wildcard: "Snake Case" does not match
        ("fibre", ["100% Fibre"]),
    ],
)
async def test_a_search_is_text_not_a_pattern(api: Api, search: str, names: list[str]) -> None:
    for name in ["100% Fibre", "Snake_Case Ltd", "Snake Case", "Back\\slash"]:
        await create_customer(api, name=name)
    found = await api.run(
        "query($s: String!) { customers(search: $s, first: 10) { edges { node { name } } } }",
        {"s": search},
    )
    assert sorted(edge["node"]["name"] for edge in found["customers"]["edges"]) == names


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        # In a variable, at any depth of an input object.
        (
            "mutation($input: SetLetterheadInput!) { setLetterhead(input: $input) { errors { code } } }",
            {"input": {"name": "USD", "address": "\x00"}},
        ),
        # As an escape in the document, in either of GraphQL's forms, and raw.
        ('mutation { setLetterhead(input: {name: "A\\u0000B"}) { errors { code } } }', None),
        ('mutation { setLetterhead(input: {name: "A\\u{0}B"}) { errors { code } } }', None),
        ('mutation { setLetterhead(input: {name: "A\x00B"}) { errors { code } } }', None),
        ('query { customers(search: "\\u0000") { totalCount } }', None),
    ],
)
async def test_a_nul_character_is_refused_wherever_it_is_sent(
    api: Api, db: Database, query: str, variables: dict[str, Any] | None
) -> None:
    """PostgreSQL cannot store U+0000 and would refuse the statement as an internal error."""
    before = await table_contents(db)
    response = await api.post(query, variables)
    body = response.json()
    assert "data" not in body, body  # a request error: nothing ran
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_TEXT"]
    assert await table_contents(db) == before


async def test_an_escaped_character_other_than_nul_is_kept(api: Api) -> None:
    """The NUL check walks a document with escapes; other escapes mean what they say."""
    body = await api.run('query { customers(search: "\\u00e9\\u{1F600}") { totalCount } }')
    assert body == {"customers": {"totalCount": 0}}
