"""A distributor's API key (issue 10: "the same operations are open to partners through
GraphQL with a distributor's API key or session"): the key is the distributor, exactly as
its session is, within the key's scope; who may make, list and revoke such keys; bad input
refused with nothing written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from billing.api_keys import authenticate_api_key, create_api_key
from billing.db import Database
from billing.models import ApiKeyScope, Role, User
from resolvers.sessions import viewer_for_api_key, viewer_for_user
from schema.relay import decode_id, encode_id
from tests.factories import admin_with_login, customer_with_login, make_distributor, make_reseller
from tests.graphql_support import Api, signed_in_api, table_contents
from tests.test_distributors import create_distributor, me, new_customer, record_cash

pytest_plugins = ["tests.graphql_fixtures"]

KEY_FIELDS = "id name prefix scope resellerId revokedAt distributor { id name }"
CUSTOMERS = "{ customers(first: 100) { totalCount edges { node { id name } } } }"


async def create_key(api: Api, **input: Any) -> dict[str, Any]:
    return await api.mutate(
        "createApiKey",
        {"name": "Till", "scope": "READ_WRITE", **input},
        f"token apiKey {{ {KEY_FIELDS} }}",
    )


async def revoke_key(api: Api, key_id: str) -> dict[str, Any]:
    return await api.mutate("revokeApiKey", {"id": key_id}, f"apiKey {{ {KEY_FIELDS} }}")


async def listed_keys(api: Api, distributor_id: str | None = None) -> set[str]:
    data = await api.run(
        "query($d: ID) { apiKeys(first: 100, distributorId: $d) { totalCount edges { node { id } } } }",
        {"d": distributor_id},
    )
    return {edge["node"]["id"] for edge in data["apiKeys"]["edges"]}


def codes(payload: dict[str, Any]) -> list[str]:
    return [error["code"] for error in payload["errors"]]


async def top_level_code(api: Api, query: str, variables: dict[str, Any] | None = None) -> str:
    response = await api.post(query, variables)
    body = response.json()
    assert body.get("errors"), body
    code: str = body["errors"][0]["extensions"]["code"]
    return code


async def shops(api: Api, http: httpx.AsyncClient, db: Database) -> tuple[Any, ...]:
    """The provider's administrator (signed in), two distributors with logins, each with a
    customer of its own, and a key of the first made by the administrator."""
    admin = await signed_in_api(http, await admin_with_login(db))
    first = await create_distributor(
        api,
        name="First",
        paymentCommission="10",
        login={"email": "first@example.com", "password": "distributor password"},
    )
    await create_distributor(
        api,
        name="Second",
        login={"email": "second@example.com", "password": "distributor password"},
    )
    first_session = await signed_in_api(http, "first@example.com", "distributor password")
    second_session = await signed_in_api(http, "second@example.com", "distributor password")
    await new_customer(first_session, name="First's customer")
    theirs = await new_customer(second_session, name="Second's customer")
    made = await create_key(admin, distributorId=first["id"])
    assert made["errors"] == [], made
    assert made["apiKey"]["distributor"] == {"id": first["id"], "name": "First"}
    assert made["token"].startswith("kassa_")
    return admin, first, first_session, Api(http, made["token"]), theirs


async def test_a_distributors_key_is_that_distributor_as_its_session_is(
    api: Api, http: httpx.AsyncClient, db: Database
) -> None:
    _, first, session, key, theirs = await shops(api, http, db)
    viewer = "{ viewer { kind role scope distributorId resellerId } }"
    assert (await key.run(viewer))["viewer"] == {
        "kind": "API_KEY",
        "role": "DISTRIBUTOR",
        "scope": "READ_WRITE",
        "distributorId": first["id"],
        "resellerId": None,
    }
    # The key signs up a customer and records its cash, on the distributor's books.
    customer = await new_customer(key, "key-sale", name="Signed up by key")
    paid = await record_cash(key, customer["id"], "10.00", "key-cash")
    assert paid["errors"] == [] and paid["payment"]["customer"]["balance"]["amount"] == "-10.00"
    # It sees exactly what the session sees: the same customers, the same distributor.
    assert await key.run(CUSTOMERS) == await session.run(CUSTOMERS)
    assert await me(key) == await me(session)
    assert (await me(key))["balance"]["amount"] == "9.00"  # 10 % of 10.00 kept
    # Another distributor's customer is not found, and nothing is written trying.
    seen = await key.run("query($id: ID!) { customer(id: $id) { id } }", {"id": theirs["id"]})
    assert seen == {"customer": None}
    before = await table_contents(db)
    refused = await record_cash(key, theirs["id"], "1.00", "key-foreign")
    assert codes(refused) == ["NOT_FOUND"]
    assert await table_contents(db) == before


async def test_a_key_and_a_session_of_one_distributor_make_the_same_viewer(db: Database) -> None:
    async with db.transaction() as session:
        shop = await make_distributor(session, "Kiosk")
        key, _ = await create_api_key(session, "Till", ApiKeyScope.READ, distributor_id=shop.id)
        user = User(
            id=7,
            email="k@example.com",
            password_hash="",
            role=Role.DISTRIBUTOR,
            distributor_id=shop.id,
        )
    from_key, from_user = viewer_for_api_key(key), viewer_for_user(user)
    assert (from_key.role, from_key.distributor_id, from_key.reseller_id) == (
        from_user.role,
        from_user.distributor_id,
        from_user.reseller_id,
    )
    assert (from_key.api_key_id, from_key.user_id, from_key.scope) == (key.id, None, "READ")


async def test_a_read_key_reads_but_changes_nothing(
    api: Api, http: httpx.AsyncClient, db: Database
) -> None:
    admin, first, session, _, _ = await shops(api, http, db)
    made = await create_key(admin, distributorId=first["id"], scope="READ")
    reader = Api(http, made["token"])
    assert await reader.run(CUSTOMERS) == await session.run(CUSTOMERS)
    customer_id = (await session.run(CUSTOMERS))["customers"]["edges"][0]["node"]["id"]
    before = await table_contents(db)
    for document, variables in (
        (
            "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { errors { code } } }",
            {"i": {"name": "Nope", "currency": "USD"}},
        ),
        (
            "mutation($i: RecordPaymentInput!) { recordPayment(input: $i) { errors { code } } }",
            {
                "i": {
                    "customerId": customer_id,
                    "amount": "1.00",
                    "currency": "USD",
                    "method": "CASH",
                    "idempotencyKey": "read-key",
                }
            },
        ),
    ):
        assert await top_level_code(reader, document, variables) == "FORBIDDEN"
    assert await table_contents(db) == before


async def test_a_revoked_key_is_refused_like_a_wrong_one(
    api: Api, http: httpx.AsyncClient, db: Database
) -> None:
    admin, first, _, key, _ = await shops(api, http, db)
    assert key.token is not None
    [key_id] = await listed_keys(admin, first["id"])
    revoked = await revoke_key(admin, key_id)
    assert revoked["errors"] == [] and revoked["apiKey"]["revokedAt"] is not None
    response = await key.post(CUSTOMERS)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_API_KEY"
    async with db.session() as session:
        assert await authenticate_api_key(session, key.token) is None
    assert (await revoke_key(admin, key_id))["errors"] == []  # again: nothing changes


async def test_a_distributor_manages_its_own_keys_and_no_others(
    api: Api, http: httpx.AsyncClient, db: Database
) -> None:
    admin, first, first_session, _, _ = await shops(api, http, db)
    second_session = await signed_in_api(http, "second@example.com", "distributor password")
    own = await create_key(first_session, name="Second till", scope="READ")
    assert own["errors"] == [] and own["apiKey"]["distributor"]["id"] == first["id"]
    theirs = await create_key(second_session)
    assert theirs["errors"] == []
    mine = await listed_keys(first_session)
    assert own["apiKey"]["id"] in mine and theirs["apiKey"]["id"] not in mine
    second_id = (await me(second_session))["id"]
    assert await listed_keys(first_session, second_id) == set()
    before = await table_contents(db)
    foreign = await revoke_key(first_session, theirs["apiKey"]["id"])
    assert codes(foreign) == ["NOT_FOUND"]
    for_another = await create_key(first_session, distributorId=second_id)
    assert (
        codes(for_another) == ["NOT_FOUND"] and for_another["errors"][0]["field"] == "distributorId"
    )
    assert await table_contents(db) == before
    # A distributor's key manages no keys: a leaked one cannot make itself a successor.
    key = Api(http, own["token"])
    assert await top_level_code(key, "{ apiKeys { totalCount } }") == "FORBIDDEN"
    assert (await revoke_key(first_session, own["apiKey"]["id"]))["errors"] == []
    assert (await listed_keys(admin)) >= mine


async def test_a_resellers_staff_make_keys_of_their_own_distributors_only(
    api: Api, http: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        reseller_a = await make_reseller(session, "A")
        reseller_b = await make_reseller(session, "B")
        ours = await make_distributor(session, "Ours", reseller_id=reseller_a.id)
        theirs = await make_distributor(session, "Theirs", reseller_id=reseller_b.id)
    staff = await signed_in_api(http, await admin_with_login(db, "a@kassa.test", reseller_a.id))
    made = await create_key(staff, distributorId=encode_id("Distributor", ours.id))
    assert made["errors"] == [] and made["apiKey"]["distributor"]["name"] == "Ours"
    own_reseller = await create_key(staff)
    assert own_reseller["apiKey"]["resellerId"] == encode_id("Reseller", reseller_a.id)
    before = await table_contents(db)
    foreign = await create_key(staff, distributorId=encode_id("Distributor", theirs.id))
    ghost = await create_key(staff, distributorId=encode_id("Distributor", 999_999))
    assert foreign["errors"] == ghost["errors"]
    assert codes(foreign) == ["NOT_FOUND"]
    assert codes(await create_key(staff, resellerId=encode_id("Reseller", reseller_b.id))) == [
        "NOT_FOUND"
    ]
    assert await table_contents(db) == before
    assert await listed_keys(staff) == {made["apiKey"]["id"], own_reseller["apiKey"]["id"]}
    assert await listed_keys(staff, encode_id("Distributor", theirs.id)) == set()
    assert decode_id(made["apiKey"]["id"], "ApiKey") > 0


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"name": "  "}, "REQUIRED", "name"),
        ({"name": "x" * 101}, "TOO_LONG", "name"),
        ({"both": True}, "ONE_OWNER", "distributorId"),
        ({"distributorId": "garbage"}, "NOT_FOUND", "distributorId"),
    ],
)
async def test_bad_input_is_refused_with_nothing_written(
    api: Api, http: httpx.AsyncClient, db: Database, fields: dict[str, Any], code: str, field: str
) -> None:
    async with db.transaction() as session:
        reseller = await make_reseller(session, "A")
        shop = await make_distributor(session, "Kiosk")
    admin = await signed_in_api(http, await admin_with_login(db))
    if fields.pop("both", False):
        fields = {
            "resellerId": encode_id("Reseller", reseller.id),
            "distributorId": encode_id("Distributor", shop.id),
        }
    before = await table_contents(db)
    refused = await create_key(admin, **fields)
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [(code, field)]
    assert refused["apiKey"] is None and refused["token"] is None
    assert await table_contents(db) == before


async def test_keys_customers_and_partner_keys_make_no_keys(
    api: Api, http: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        shop = await make_distributor(session, "Kiosk")
    customer = await signed_in_api(http, (await customer_with_login(db)).email)
    document = (
        "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { token errors { code } } }"
    )
    variables = {
        "i": {"name": "x", "scope": "READ", "distributorId": encode_id("Distributor", shop.id)}
    }
    before = await table_contents(db)
    assert await top_level_code(api, document, variables) == "FORBIDDEN"
    assert await top_level_code(customer, document, variables) == "FORBIDDEN"
    http.cookies.clear()  # the customer's sign-in left its cookie
    assert await top_level_code(Api(http), document, variables) == "UNAUTHENTICATED"
    assert await table_contents(db) == before
