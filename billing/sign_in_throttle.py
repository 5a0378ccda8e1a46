"""Checking a password at sign-in, throttled per client address, in the same time whatever
the state.

Two promises, each against an attacker who can send sign-ins at will:

* **No one locks anyone else out.**  Failures are counted per client address and e-mail
  address (:data:`MAX_FAILURES` in :data:`WINDOW` lock that pair for :data:`LOCK_DURATION`)
  and per client address over all e-mail addresses (:data:`MAX_FAILURES_PER_CLIENT`, against
  trying one password on many users).  A lock holds against the offending client address
  only: the user signs in from anywhere else as usual.
* **The answer's timing tells nothing.**  Every attempt costs one argon2 verification —
  against the user's hash, or a decoy's for an unknown address — whether the user exists,
  the password is right, or the pair is locked, and reads and writes the same rows.

The client address is what the HTTP server reports (behind a reverse proxy, have it pass on
the client's address: ``uvicorn --proxy-headers --forwarded-allow-ips``).  Throttling runs
on the wall clock, not the test clock: it guards real time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import SignInAttempt, User
from billing.passwords import hash_password, verify_password
from billing.users import MAX_PASSWORD_LENGTH, get_user_by_email

MAX_FAILURES = 5
MAX_FAILURES_PER_CLIENT = 50
WINDOW = timedelta(minutes=15)
LOCK_DURATION = timedelta(minutes=15)
#: The ``email`` of the row counting a client address's failures over every e-mail address.
EVERY_EMAIL = "*"
#: Stands in for a client address the server did not report (no HTTP, or an odd transport).
UNKNOWN_CLIENT = "unknown"


@cache
def _decoy_hash() -> str:
    return hash_password("kassa: a password nobody has")


async def _counter(
    session: AsyncSession, client_address: str, email: str, now: datetime
) -> SignInAttempt:
    """The failure counter of ``(client_address, email)``, locked for this transaction (the
    caller has deleted the counters whose window is over)."""
    query = select(SignInAttempt).where(
        SignInAttempt.client_address == client_address, SignInAttempt.email == email
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # concurrent guesses count one by one
    counter = await session.scalar(query)
    if counter is None:
        try:
            async with session.begin_nested():
                counter = SignInAttempt(
                    client_address=client_address,
                    email=email,
                    failures=0,
                    window_ends_at=now + WINDOW,
                )
                session.add(counter)
        except IntegrityError:  # a concurrent attempt made it first: count on that one
            counter = await session.scalar(query)
            assert counter is not None
    return counter


def _is_locked(counter: SignInAttempt, now: datetime) -> bool:
    return counter.locked_until is not None and counter.locked_until > now


def _count_failure(counter: SignInAttempt, limit: int, now: datetime) -> None:
    counter.failures += 1
    if counter.failures >= limit:
        counter.failures = 0
        counter.locked_until = counter.window_ends_at = now + LOCK_DURATION


async def sign_in(
    session: AsyncSession, email: str, password: str, client_address: str, now: datetime
) -> User | None:
    """The user these credentials belong to, or None (unknown, wrong, or locked from here).

    The failure counters are written either way: the caller commits even when this says
    None.
    """
    if len(password) > MAX_PASSWORD_LENGTH:
        return None  # never hash a megabyte: that is a denial-of-service attempt
    address = email.strip().lower()[:254]
    # Counters left from before their window ended are of no use to anyone any more.
    await session.execute(delete(SignInAttempt).where(SignInAttempt.window_ends_at <= now))
    pair = await _counter(session, client_address, address, now)
    client = await _counter(session, client_address, EVERY_EMAIL, now)
    user = await get_user_by_email(session, address)
    correct = verify_password(user.password_hash if user else _decoy_hash(), password)
    if _is_locked(pair, now) or _is_locked(client, now):
        return None
    if user is not None and correct:
        pair.failures = 0
        await session.flush()
        return user
    _count_failure(pair, MAX_FAILURES, now)
    _count_failure(client, MAX_FAILURES_PER_CLIENT, now)
    await session.flush()
    return None


async def forget_failures(session: AsyncSession, email: str) -> None:
    """Lift every lock on ``email`` (its owner proved to be its owner: a password reset)."""
    await session.execute(delete(SignInAttempt).where(SignInAttempt.email == email.lower()))
