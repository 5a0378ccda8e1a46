"""Signed-in sessions that end when they are ended, not merely when they expire.

A session is a row (:class:`~billing.models.UserSession`); the session token handed to the
browser (cookie) or API client (bearer) names the row and carries a random secret whose
SHA-256 the row keeps.  Each request looks the row up, so ending a session — sign-out,
"sign out everywhere", a user's row deleted — takes effect on the very next request, on
every app process.  A password change ends sessions too: tokens also carry a fingerprint
of the password hash they were made under (:func:`billing.passwords.password_fingerprint`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.access import Viewer, require_write
from billing.errors import Forbidden, NotFound
from billing.models import Customer, Distributor, Role, User, UserSession

#: How long a session lasts at most (also its cookie's and token's age).
SESSION_MAX_AGE = timedelta(hours=12)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StartedSession:
    """What a session token carries: the row's id and the secret only the token knows."""

    session_id: int
    secret: str


async def start_session(session: AsyncSession, user: User, now: datetime) -> StartedSession:
    """A new session for ``user``; the user's expired sessions are dropped on the way."""
    await session.execute(
        delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now)
    )
    secret = secrets.token_urlsafe(32)
    row = UserSession(
        user_id=user.id,
        secret_hash=_digest(secret),
        created_at=now,
        expires_at=now + SESSION_MAX_AGE,
    )
    session.add(row)
    await session.flush()
    return StartedSession(row.id, secret)


async def session_user(
    session: AsyncSession, session_id: int, secret: str, now: datetime
) -> User | None:
    """The user of a live session, or None (ended, expired, or a wrong secret)."""
    found = await session.execute(
        select(User, UserSession.secret_hash)
        .join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.id == session_id, UserSession.expires_at > now)
    )
    row = found.first()
    if row is None or not secrets.compare_digest(row.secret_hash, _digest(secret)):
        return None
    user: User = row.User
    return user


async def end_session(session: AsyncSession, session_id: int, secret: str) -> None:
    """Sign-out: the session with this id and secret ends (anything else is ignored)."""
    await session.execute(
        delete(UserSession).where(
            UserSession.id == session_id, UserSession.secret_hash == _digest(secret)
        )
    )


async def _may_manage(session: AsyncSession, viewer: Viewer, user: User) -> bool:
    """Whether staff ``viewer`` looks after ``user``: the provider's administrators every
    user; a reseller's staff the users of that reseller, of its customers and distributors."""
    if viewer.role not in (Role.ADMIN, Role.RESELLER):
        return False
    if viewer.reseller_id is None:
        return viewer.role == Role.ADMIN
    if user.reseller_id is not None:
        return user.reseller_id == viewer.reseller_id
    party: Customer | Distributor | None = None
    if user.customer_id is not None:
        party = await session.get(Customer, user.customer_id)
    elif user.distributor_id is not None:
        party = await session.get(Distributor, user.distributor_id)
    return party is not None and party.reseller_id == viewer.reseller_id


async def end_every_session(session: AsyncSession, viewer: Viewer, user_id: int | None) -> int:
    """ "Sign out everywhere": end all of a user's sessions; returns how many there were.

    Anyone signed in may do it for themselves (``user_id`` None or their own); staff for
    the users they look after (anyone else's id answers "not found").
    """
    require_write(viewer)
    if user_id is None:
        if viewer.user_id is None:
            raise Forbidden("an API key has no sessions of its own: name the user (userId)")
        user_id = viewer.user_id
    if user_id != viewer.user_id:
        user = await session.get(User, user_id)
        if user is None or not await _may_manage(session, viewer, user):
            raise NotFound("user", "userId")
    ended = await session.execute(
        delete(UserSession).where(UserSession.user_id == user_id).returning(UserSession.id)
    )
    return len(ended.all())
