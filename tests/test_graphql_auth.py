"""Who may call: API keys and their scopes, sign-in with its cookie and throttle, sign-out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import update

from billing.db import Database
from billing.models import ApiKey, ApiKeyScope, Role, User
from billing.passwords import hash_password
from resolvers.sessions import SESSION_COOKIE
from schema.relay import encode_id
from tests.factories import (
    PASSWORD,
    admin_with_login,
    make_customer,
    make_reseller,
    user_with_login,
)
from tests.graphql_support import Api, api_key, create_customer, row_counts

pytest_plugins = ["tests.graphql_fixtures"]

VIEWER = "query { viewer { authenticated kind role scope userId apiKeyId resellerId customerId } }"


async def _sign_in(http: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    payload: dict[str, Any] = await Api(http).mutate(
        "signIn", {"email": email, "password": password}, "token viewer { role }"
    )
    return payload


def _error_codes(body: dict[str, Any]) -> list[str | None]:
    return [error.get("extensions", {}).get("code") for error in body["errors"]]


async def test_without_credentials_only_the_viewer_answers(
    http: httpx.AsyncClient, db: Database
) -> None:
    anonymous = Api(http)
    assert (await anonymous.run(VIEWER))["viewer"]["authenticated"] is False
    body = (await anonymous.post("query { customers { totalCount } }")).json()
    assert body["data"] is None and _error_codes(body) == ["UNAUTHENTICATED"]
    before = await row_counts(db)
    body = (
        await anonymous.post(
            'mutation { createCustomer(input: {name: "Eve", currency: "USD"}) { customer { id } } }'
        )
    ).json()
    assert body["data"] is None and _error_codes(body) == ["UNAUTHENTICATED"]
    assert await row_counts(db) == before


def _told_invalid_api_key(response: httpx.Response) -> bool:
    """401 with a bearer challenge, and the words: not "sign in first"."""
    return (
        response.status_code == 401
        and response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        and response.json()
        == {
            "errors": [
                {
                    "message": "Invalid API key: it is unknown, mistyped or revoked.",
                    "extensions": {"code": "INVALID_API_KEY"},
                }
            ]
        }
    )


async def test_unknown_wrong_and_revoked_keys_are_told_so(api: Api, db: Database) -> None:
    assert api.token is not None
    query = "query { customers { totalCount } }"
    for token in (
        "kassa_ffffffffffff_" + "0" * 48,  # unknown
        "kassa_nonsense",  # malformed
        api.token[:-1] + ("0" if api.token[-1] != "0" else "1"),  # wrong secret
    ):
        assert _told_invalid_api_key(await api.as_(token).post(query)), token
        assert _told_invalid_api_key(await api.as_(token).post(VIEWER)), token
    # A token that is not an API key at all is a session token that did not read: anonymous.
    assert (await api.as_("not-a-token").run(VIEWER))["viewer"]["authenticated"] is False
    async with db.transaction() as session:
        await session.execute(update(ApiKey).values(revoked_at=datetime.now(UTC)))
    assert _told_invalid_api_key(await api.post(query))


async def test_api_key_is_an_admin_of_its_scope(api: Api, db: Database) -> None:
    viewer = (await api.run(VIEWER))["viewer"]
    assert (viewer["kind"], viewer["role"], viewer["scope"], viewer["userId"]) == (
        "API_KEY",
        "ADMIN",
        "READ_WRITE",
        None,
    )
    assert viewer["apiKeyId"] is not None
    async with db.transaction() as session:
        reseller = await make_reseller(session)
    reader = api.as_(await api_key(db, ApiKeyScope.READ, reseller.id))
    viewer = (await reader.run(VIEWER))["viewer"]
    assert (viewer["kind"], viewer["scope"]) == ("API_KEY", "READ")
    assert viewer["resellerId"] == encode_id("Reseller", reseller.id)
    assert (await Api(api.http).run(VIEWER))["viewer"]["kind"] == "ANONYMOUS"


async def test_read_only_key_reads_but_cannot_write(api: Api, db: Database) -> None:
    await create_customer(api)
    reader = api.as_(await api_key(db, ApiKeyScope.READ))
    assert (await reader.run("query { customers { totalCount } }"))["customers"]["totalCount"] == 1
    before = await row_counts(db)
    body = (
        await reader.post(
            'mutation { createCustomer(input: {name: "Eve", currency: "USD"}) { customer { id } } }'
        )
    ).json()
    assert body["data"] is None and _error_codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["message"] == "this API key is read-only"
    assert await row_counts(db) == before


async def test_sign_in_sets_an_http_only_lax_cookie(http: httpx.AsyncClient, db: Database) -> None:
    await admin_with_login(db)
    response = await Api(http).post(
        "mutation($input: SignInInput!) { signIn(input: $input) { token errors { code } } }",
        {"input": {"email": "ADMIN@kassa.test ", "password": PASSWORD}},
    )
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    token = response.json()["data"]["signIn"]["token"]
    assert http.cookies[SESSION_COOKIE] == token

    # The cookie alone authenticates the browser, until it signs out.
    viewer = (await Api(http).run(VIEWER))["viewer"]
    assert (viewer["role"], viewer["apiKeyId"]) == ("ADMIN", None)
    signed_out = await Api(http).post("mutation { signOut { viewer { authenticated } } }")
    assert signed_out.json()["data"]["signOut"]["viewer"]["authenticated"] is False
    assert SESSION_COOKIE not in http.cookies
    assert (await Api(http).run(VIEWER))["viewer"]["authenticated"] is False

    # Signing out ended the session server-side: its token no longer works either.
    assert (await Api(http, token).run(VIEWER))["viewer"]["authenticated"] is False

    # API clients send a token as a bearer token; a tampered one is nobody.
    token = (await _sign_in(http, "admin@kassa.test", PASSWORD))["token"]
    assert (await Api(http, token).run(VIEWER))["viewer"]["role"] == "ADMIN"
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert (await Api(http, tampered).run(VIEWER))["viewer"]["authenticated"] is False


async def test_wrong_password_and_unknown_address_look_the_same(
    http: httpx.AsyncClient, db: Database
) -> None:
    await admin_with_login(db)
    wrong = await _sign_in(http, "admin@kassa.test", "wrong password!")
    unknown = await _sign_in(http, "nobody@kassa.test", PASSWORD)
    assert wrong == unknown
    assert wrong["token"] is None and [e["code"] for e in wrong["errors"]] == [
        "INVALID_CREDENTIALS"
    ]
    assert SESSION_COOKIE not in http.cookies


async def test_a_success_resets_the_failure_count(http: httpx.AsyncClient, db: Database) -> None:
    await admin_with_login(db)
    for _ in range(4):
        await _sign_in(http, "admin@kassa.test", "guess guess")
    assert (await _sign_in(http, "admin@kassa.test", PASSWORD))["token"] is not None
    for _ in range(4):
        await _sign_in(http, "admin@kassa.test", "guess guess")
    assert (await _sign_in(http, "admin@kassa.test", PASSWORD))["token"] is not None


async def test_changing_the_password_ends_old_sessions(
    http: httpx.AsyncClient, db: Database
) -> None:
    await admin_with_login(db)
    token = (await _sign_in(http, "admin@kassa.test", PASSWORD))["token"]
    http.cookies.clear()
    assert (await Api(http, token).run(VIEWER))["viewer"]["authenticated"] is True
    async with db.transaction() as session:
        await session.execute(update(User).values(password_hash=hash_password("new password")))
    assert (await Api(http, token).run(VIEWER))["viewer"]["authenticated"] is False


async def test_a_customer_sees_only_itself(http: httpx.AsyncClient, db: Database) -> None:
    async with db.transaction() as session:
        mine = await make_customer(session, name="Mine")
        await make_customer(session, name="Someone else")
    await user_with_login(db, "ada@example.com", Role.CUSTOMER, customer_id=mine.id)
    token = (await _sign_in(http, "ada@example.com", PASSWORD))["token"]
    http.cookies.clear()
    customer = Api(http, token)
    viewer = (await customer.run(VIEWER))["viewer"]
    assert viewer["role"] == "CUSTOMER" and viewer["customerId"] is not None
    page = await customer.run("query { customers { totalCount edges { node { name } } } }")
    assert page["customers"] == {"totalCount": 1, "edges": [{"node": {"name": "Mine"}}]}
    # Customers change their own contact details but cannot create customers.
    updated = await customer.mutate(
        "updateCustomer",
        {"id": viewer["customerId"], "phone": "+44 20 7946 0000"},
        "customer { phone }",
    )
    assert updated == {"customer": {"phone": "+44 20 7946 0000"}, "errors": []}
    body = (
        await customer.post(
            'mutation { createCustomer(input: {name: "Eve", currency: "USD"}) { customer { id } } }'
        )
    ).json()
    assert _error_codes(body) == ["FORBIDDEN"]
