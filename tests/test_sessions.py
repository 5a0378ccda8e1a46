"""Sessions end server-side: sign-out, "sign out everywhere" and a new password.

The attack (issue 8, item 7): after signing out, the old session cookie and bearer token
still worked — a stolen token stayed good for its whole twelve hours.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, update

from billing.db import Database
from billing.models import ApiKeyScope, Role, User, UserSession
from billing.passwords import hash_password
from resolvers.sessions import SESSION_COOKIE
from schema.relay import encode_id
from tests.factories import (
    ADMIN_EMAIL,
    PASSWORD,
    Login,
    admin_with_login,
    make_reseller,
    user_with_login,
)
from tests.graphql_support import Api, api_key
from tests.portal_support import Browser

pytest_plugins = ["tests.graphql_fixtures", "tests.portal_fixtures"]

VIEWER = "query { viewer { authenticated userId } }"
EVERYWHERE = """
mutation($input: SignOutEverywhereInput!) {
  signOutEverywhere(input: $input) { sessionsEnded errors { field code message } }
}
"""


async def _token(http: httpx.AsyncClient, email: str) -> str:
    payload = await Api(http).mutate("signIn", {"email": email, "password": PASSWORD}, "token")
    http.cookies.clear()
    assert payload["errors"] == [], payload
    token: str = payload["token"]
    return token


async def _works(http: httpx.AsyncClient, token: str) -> bool:
    viewer = (await Api(http, token).run(VIEWER))["viewer"]
    authenticated: bool = viewer["authenticated"]
    return authenticated


async def _user_id(db: Database, email: str) -> str:
    async with db.session() as session:
        user = await session.scalar(select(User).where(User.email == email))
    assert user is not None
    return encode_id("User", user.id)


async def test_sign_out_ends_the_bearer_token(http: httpx.AsyncClient, db: Database) -> None:
    await admin_with_login(db)
    token, other = await _token(http, ADMIN_EMAIL), await _token(http, ADMIN_EMAIL)
    signed_out = await Api(http, token).run("mutation { signOut { errors { code } } }")
    assert signed_out == {"signOut": {"errors": []}}
    assert not await _works(http, token)
    assert await _works(http, other)  # only the session signed out of ends


async def test_portal_sign_out_ends_the_cookie(
    signed_in: Browser, customer: Login, db: Database
) -> None:
    cookie = signed_in.http.cookies[SESSION_COOKIE]
    await signed_in.open("/portal")
    await signed_in.submit("/portal/sign-out", follow=False)
    assert SESSION_COOKIE not in signed_in.http.cookies
    # The attacker who copied the cookie before sign-out replays it: nobody.
    signed_in.http.cookies.set(SESSION_COOKIE, cookie)
    assert (await Api(signed_in.http).run(VIEWER))["viewer"]["authenticated"] is False
    page = await signed_in.http.get("/portal", follow_redirects=False)
    assert page.status_code in (302, 303) and "/portal/sign-in" in page.headers["location"]
    async with db.session() as session:
        assert await session.scalar(select(func.count(UserSession.id))) == 0


async def test_sign_out_everywhere_ends_every_own_session(
    http: httpx.AsyncClient, db: Database
) -> None:
    await admin_with_login(db)
    tokens = [await _token(http, ADMIN_EMAIL) for _ in range(3)]
    answer = await Api(http, tokens[0]).run(EVERYWHERE, {"input": {}})
    assert answer == {"signOutEverywhere": {"sessionsEnded": 3, "errors": []}}
    assert [await _works(http, token) for token in tokens] == [False] * 3


async def test_staff_sign_out_the_users_they_look_after(
    http: httpx.AsyncClient, db: Database, signed_in: Browser, customer: Login
) -> None:
    """A provider administrator (or key) ends a customer's sessions, cookie included; a
    reseller's staff cannot reach the provider's customer, nor a customer anyone else."""
    victim = await _user_id(db, customer.email)
    customer_token = await _token(http, customer.email)
    async with db.transaction() as session:
        reseller = await make_reseller(session)
    reseller_admin = await user_with_login(
        db, "staff@reseller.test", Role.ADMIN, reseller_id=reseller.id
    )
    neighbour = await user_with_login(
        db, "neighbour@example.com", Role.CUSTOMER, customer_id=customer.id
    )

    refused = [
        await Api(http, await _token(http, reseller_admin)).run(
            EVERYWHERE, {"input": {"userId": victim}}
        ),
        await Api(http, await _token(http, neighbour)).run(
            EVERYWHERE, {"input": {"userId": victim}}
        ),
        await Api(http, await api_key(db, reseller_id=reseller.id)).run(
            EVERYWHERE, {"input": {"userId": victim}}
        ),
    ]
    for answer in refused:
        assert answer["signOutEverywhere"]["errors"][0]["code"] == "NOT_FOUND", answer
    assert await _works(http, customer_token)

    read_only = await Api(http, await api_key(db, ApiKeyScope.READ)).post(
        EVERYWHERE, {"input": {"userId": victim}}
    )
    assert read_only.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    admin = Api(http, await api_key(db))
    answer = await admin.run(EVERYWHERE, {"input": {"userId": victim}})
    assert answer == {"signOutEverywhere": {"sessionsEnded": 2, "errors": []}}
    assert not await _works(http, customer_token)
    assert (await signed_in.open("/portal")).url.path == "/portal/sign-in"


async def test_a_new_password_ends_every_session(http: httpx.AsyncClient, db: Database) -> None:
    await admin_with_login(db)
    token = await _token(http, ADMIN_EMAIL)
    async with db.transaction() as session:
        await session.execute(update(User).values(password_hash=hash_password("a new password")))
    assert not await _works(http, token)


async def test_an_expired_or_forged_session_is_nobody(
    http: httpx.AsyncClient, db: Database
) -> None:
    await admin_with_login(db)
    token = await _token(http, ADMIN_EMAIL)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert not await _works(http, tampered)
    async with db.transaction() as session:
        await session.execute(
            update(UserSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert not await _works(http, token)
