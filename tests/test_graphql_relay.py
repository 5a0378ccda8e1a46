"""Opaque global ids and keyset-paged connections."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from billing.db import Database
from billing.errors import NotFound
from schema.relay import decode_id, encode_id
from tests.factories import make_customer
from tests.graphql_support import Api, create_customer

pytest_plugins = ["tests.graphql_fixtures"]

PAGE = """query($first: Int, $after: String, $status: CustomerStatus, $search: String,
                 $email: String) {
    customers(first: $first, after: $after, status: $status, search: $search, email: $email) {
        totalCount
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor node { name } }
    }
}"""


def test_ids_round_trip_and_are_typed() -> None:
    gid = encode_id("Customer", 42)
    assert base64.b64decode(gid) == b"Customer:42"
    assert decode_id(gid, "Customer") == 42
    for garbage in (
        gid + "!",
        encode_id("Invoice", 42),
        "",
        "Q3VzdG9tZXI6LTE=",  # Customer:-1
        base64.b64encode(b"Customer:" + b"9" * 30).decode(),
        "\u00e9",
    ):
        with pytest.raises(NotFound) as refused:
            decode_id(garbage, "Customer", "customerId")
        assert (refused.value.code, refused.value.field) == ("NOT_FOUND", "customerId")


async def test_pages_newest_first_until_the_end(api: Api, db: Database) -> None:
    async with db.transaction() as session:
        for n in range(7):
            await make_customer(session, name=f"C{n}")
    names, after, pages = [], None, 0
    while True:
        page = (await api.run(PAGE, {"first": 3, "after": after}))["customers"]
        assert page["totalCount"] == 7
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        names += [edge["node"]["name"] for edge in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        after = page["pageInfo"]["endCursor"]
    assert names == [f"C{n}" for n in reversed(range(7))] and pages == 3


async def test_filters(api: Api, db: Database) -> None:
    await create_customer(api, name="Ada Lovelace", email="ada@example.com")
    await create_customer(
        api, name="Charles Babbage", email="charles@example.com", status="SUSPENDED"
    )

    async def names(**filters: str) -> list[str]:
        page = (await api.run(PAGE, filters))["customers"]
        return [edge["node"]["name"] for edge in page["edges"]]

    assert await names(status="SUSPENDED") == ["Charles Babbage"]
    assert await names(search="LOVE") == ["Ada Lovelace"]
    assert await names(search="example") == ["Charles Babbage", "Ada Lovelace"]
    assert await names(email="CHARLES@example.com") == ["Charles Babbage"]
    assert await names(email="nobody@example.com") == []


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"first": 101}, "BAD_USER_INPUT"),
        ({"first": -1}, "BAD_USER_INPUT"),
        ({"after": "not a cursor"}, "BAD_USER_INPUT"),
        ({"after": encode_id("Customer", 1)}, "BAD_USER_INPUT"),
    ],
)
async def test_bad_page_arguments_are_top_level_errors(
    api: Api, variables: dict[str, Any], code: str
) -> None:
    body = (await api.post(PAGE, variables)).json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == code


async def test_unknown_filter_id_is_a_not_found_error(api: Api) -> None:
    body = (await api.post('query { invoices(customerId: "nonsense") { totalCount } }')).json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "NOT_FOUND", "field": "customerId"}


async def test_lookups_by_unknown_or_foreign_ids_are_null(api: Api) -> None:
    customer = await create_customer(api)
    for field, gid in (
        ("customer", encode_id("Customer", 999)),
        ("customer", "???"),
        ("invoice", customer["id"]),
        ("account", customer["id"]),
        ("payment", encode_id("Payment", 1)),
    ):
        assert await api.run(f'query {{ {field}(id: "{gid}") {{ id }} }}') == {field: None}
