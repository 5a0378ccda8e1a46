"""Who is calling: a request becomes a :class:`~billing.access.Viewer`.

Two kinds of credentials, both sent as ``Authorization: Bearer …``:

* a partner API key (``kassa_<prefix>_<secret>``): an administrator scoped to the key's
  reseller (or the whole provider), with the key's READ or READ_WRITE scope;
* a signed session token from ``signIn`` (itsdangerous, keyed by ``settings.secret_key``),
  which browsers get instead as the HttpOnly, SameSite=Lax ``kassa_session`` cookie.

The app tier stays stateless: a session token is verified by its signature and age alone.
It carries a fingerprint of the user's password hash, so changing the password ends every
session made with the old one.  Anything unreadable, expired or revoked is simply anonymous;
the resolvers then refuse with a top-level error.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from starlette.responses import Response

from billing.access import ANONYMOUS, Viewer
from billing.api_keys import TOKEN_PREFIX, authenticate_api_key
from billing.models import ApiKey, Role, User
from billing.passwords import hash_password, password_fingerprint, verify_password
from billing.users import MAX_PASSWORD_LENGTH
from settings import Settings

SESSION_COOKIE = "kassa_session"
SESSION_MAX_AGE = timedelta(hours=12)
MAX_FAILED_SIGN_INS = 5
LOCK_DURATION = timedelta(minutes=15)
_SALT = "kassa.session"


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALT)


def issue_session_token(settings: Settings, user: User) -> str:
    return _serializer(settings).dumps(
        {"uid": user.id, "pw": password_fingerprint(user.password_hash)}
    )


def viewer_for_user(user: User) -> Viewer:
    return Viewer(
        role=user.role,
        user_id=user.id,
        reseller_id=user.reseller_id,
        customer_id=user.customer_id,
        distributor_id=user.distributor_id,
    )


def viewer_for_api_key(key: ApiKey) -> Viewer:
    """A partner key acts as an administrator of its reseller (or of the provider)."""
    return Viewer(role=Role.ADMIN, api_key_id=key.id, reseller_id=key.reseller_id, scope=key.scope)


async def _user_from_session_token(
    session: AsyncSession, settings: Settings, token: str
) -> User | None:
    try:
        data = _serializer(settings).loads(token, max_age=int(SESSION_MAX_AGE.total_seconds()))
    except BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int):
        return None
    user = await session.get(User, data["uid"])
    if user is None or data.get("pw") != password_fingerprint(user.password_hash):
        return None
    return user


def _credentials(connection: HTTPConnection) -> str | None:
    """The bearer token, else the session cookie; the header wins when both are sent."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return connection.cookies.get(SESSION_COOKIE) or None


async def viewer_from_request(
    session: AsyncSession, settings: Settings, connection: HTTPConnection
) -> Viewer:
    token = _credentials(connection)
    if token is None:
        return ANONYMOUS
    if token.startswith(f"{TOKEN_PREFIX}_"):
        key = await authenticate_api_key(session, token)
        return ANONYMOUS if key is None else viewer_for_api_key(key)
    user = await _user_from_session_token(session, settings, token)
    return ANONYMOUS if user is None else viewer_for_user(user)


@cache
def _decoy_hash() -> str:
    return hash_password("kassa: a password nobody has")


async def sign_in(session: AsyncSession, email: str, password: str, now: datetime) -> User | None:
    """The user these credentials belong to, or None; failures count towards a lock.

    After :data:`MAX_FAILED_SIGN_INS` wrong passwords in a row the user is locked for
    :data:`LOCK_DURATION`, during which even the right password is refused.  An unknown
    address still costs one argon2 verification, so timing does not tell which addresses
    exist.  ``now`` is the wall clock: throttling guards real time, not the test clock.
    """
    if len(password) > MAX_PASSWORD_LENGTH:
        return None  # never hash a megabyte: that is a denial-of-service attempt
    query = select(User).where(User.email == email.strip().lower())
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        query = query.with_for_update()  # concurrent guesses count one by one
    user = await session.scalar(query)
    if user is None:
        verify_password(_decoy_hash(), password)
        return None
    if user.locked_until is not None and user.locked_until > now:
        return None
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_SIGN_INS:
            user.failed_logins = 0
            user.locked_until = now + LOCK_DURATION
        await session.flush()
        return None
    user.failed_logins = 0
    user.locked_until = None
    await session.flush()
    return user


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_MAX_AGE.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=not settings.development,
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=not settings.development
    )
