"""Sign-in throttling by client address, in constant time.

The attacks (issue 8, item 5): a locked address answered in 2–6 ms against ~150 ms for an
unknown one, so timing told which users exist and are locked; and five wrong passwords from
anywhere locked any user out, administrators included.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from app import create_app
from billing.db import Database
from billing.models import SignInAttempt
from billing.sign_in_throttle import (
    EVERY_EMAIL,
    LOCK_DURATION,
    MAX_FAILURES,
    MAX_FAILURES_PER_CLIENT,
)
from settings import Settings
from tests.factories import ADMIN_EMAIL, PASSWORD, admin_with_login
from tests.graphql_support import BASE_URL, Api

ATTACKER = "203.0.113.66"
USER_ADDRESS = "198.51.100.7"

ClientAt = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def client_at(settings: Settings, db: Database) -> AsyncIterator[ClientAt]:
    """HTTP clients coming from a given client address."""
    app = create_app(settings, database=db)
    clients: list[httpx.AsyncClient] = []

    async def make(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        clients.append(httpx.AsyncClient(transport=transport, base_url=BASE_URL))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()


async def _sign_in(http: httpx.AsyncClient, email: str, password: str) -> bool:
    payload = await Api(http).mutate("signIn", {"email": email, "password": password}, "token")
    http.cookies.clear()
    if payload["token"] is None:
        assert [e["code"] for e in payload["errors"]] == ["INVALID_CREDENTIALS"]
    return payload["token"] is not None


async def test_wrong_passwords_lock_only_the_client_they_came_from(
    client_at: ClientAt, db: Database
) -> None:
    await admin_with_login(db)
    attacker, user = await client_at(ATTACKER), await client_at(USER_ADDRESS)
    for _ in range(MAX_FAILURES):
        assert not await _sign_in(attacker, ADMIN_EMAIL, "guess guess")
    assert not await _sign_in(attacker, ADMIN_EMAIL, PASSWORD)  # locked from there
    assert await _sign_in(user, ADMIN_EMAIL, PASSWORD)  # but not for the user elsewhere

    async with db.session() as session:
        counter = await session.scalar(
            select(SignInAttempt).where(
                SignInAttempt.client_address == ATTACKER, SignInAttempt.email == ADMIN_EMAIL
            )
        )
    assert counter is not None and counter.locked_until is not None
    remaining = counter.locked_until - datetime.now(UTC)
    assert LOCK_DURATION - timedelta(minutes=1) < remaining <= LOCK_DURATION

    async with db.transaction() as session:  # fifteen minutes later
        past = datetime.now(UTC) - timedelta(seconds=1)
        await session.execute(update(SignInAttempt).values(locked_until=past, window_ends_at=past))
    assert await _sign_in(attacker, ADMIN_EMAIL, PASSWORD)


async def test_one_client_trying_many_addresses_is_paused(
    client_at: ClientAt, db: Database
) -> None:
    """Password spraying: a few guesses at each of many addresses pause that client for all."""
    await admin_with_login(db)
    attacker, user = await client_at(ATTACKER), await client_at(USER_ADDRESS)
    for n in range(MAX_FAILURES_PER_CLIENT):
        assert not await _sign_in(attacker, f"user{n % 20}@example.com", "Summer2026!")
    assert not await _sign_in(attacker, ADMIN_EMAIL, PASSWORD)
    assert await _sign_in(user, ADMIN_EMAIL, PASSWORD)
    async with db.session() as session:
        spray = await session.scalar(
            select(SignInAttempt).where(
                SignInAttempt.email == EVERY_EMAIL, SignInAttempt.client_address == ATTACKER
            )
        )
    assert spray is not None and spray.locked_until


async def test_the_answer_takes_as_long_whatever_the_state(
    client_at: ClientAt, db: Database
) -> None:
    """Medians of interleaved runs, compared with each other (never with a fixed time): an
    unknown address, a wrong password, a locked pair and a right password cost alike."""
    await admin_with_login(db)
    await admin_with_login(db, "locked@kassa.test")
    attacker = await client_at(ATTACKER)
    for _ in range(MAX_FAILURES):
        await _sign_in(attacker, "locked@kassa.test", "guess guess")
    cases = {
        "unknown": ("nobody@kassa.test", PASSWORD),
        "wrong": (ADMIN_EMAIL, "guess guess"),
        "locked": ("locked@kassa.test", PASSWORD),
    }
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(
        MAX_FAILURES - 1
    ):  # under MAX_FAILURES for "wrong", which must not lock meanwhile
        for name, (email, password) in cases.items():
            started = time.perf_counter()
            await _sign_in(attacker, email, password)
            timings[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    for name in ("wrong", "locked"):
        ratio = medians[name] / medians["unknown"]
        assert 0.5 < ratio < 2, f"{name} takes {ratio:.2f}× an unknown address: {medians}"
