"""Who is calling: a request becomes a :class:`~billing.access.Viewer`.

Two kinds of credentials, both sent as ``Authorization: Bearer …``:

* a partner API key (``kassa_<prefix>_<secret>``): an administrator scoped to the key's
  reseller (or the whole provider), or a distributor's key: that distributor, as its login
  is; either with the key's READ or READ_WRITE scope;
* a signed session token from ``signIn`` (itsdangerous, keyed by ``settings.secret_key``),
  which browsers get instead as the HttpOnly, SameSite=Lax ``kassa_session`` cookie.

A session token names a session row (:mod:`billing.user_sessions`) and carries its secret
and a fingerprint of the user's password hash: it works while the row lives and the
password is unchanged, so sign-out, "sign out everywhere" and a new password end it on the
next request, on every app process.  A session token that is unreadable, expired or ended
is simply anonymous; the resolvers then refuse with a top-level error.  A token shaped like
an API key that matches no live key is :class:`InvalidApiKey`: the partner is told its key
is wrong (or revoked), not asked to sign in.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from starlette.responses import Response

from billing import clock, user_sessions
from billing.access import ANONYMOUS, Viewer
from billing.api_keys import TOKEN_PREFIX, authenticate_api_key
from billing.models import ApiKey, Role, User
from billing.passwords import password_fingerprint
from billing.sign_in_throttle import UNKNOWN_CLIENT
from billing.user_sessions import SESSION_MAX_AGE as SESSION_MAX_AGE
from billing.user_sessions import StartedSession
from settings import Settings

SESSION_COOKIE = "kassa_session"
_SALT = "kassa.session"


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALT)


def issue_session_token(settings: Settings, user: User, started: StartedSession) -> str:
    return _serializer(settings).dumps(
        {
            "sid": started.session_id,
            "key": started.secret,
            "pw": password_fingerprint(user.password_hash),
        }
    )


def read_session_token(settings: Settings, token: str) -> tuple[StartedSession, str] | None:
    """The session a token names and its password fingerprint; None unless it is one of
    ours, unexpired and well-formed."""
    try:
        data = _serializer(settings).loads(token, max_age=int(SESSION_MAX_AGE.total_seconds()))
    except BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(data, dict):
        return None
    sid, secret, fingerprint = data.get("sid"), data.get("key"), data.get("pw")
    if not (isinstance(sid, int) and isinstance(secret, str) and isinstance(fingerprint, str)):
        return None
    return StartedSession(sid, secret), fingerprint


class InvalidApiKey(Exception):
    """A bearer token shaped like a partner API key that no live key matches: unknown,
    mistyped or revoked (:func:`billing.api_keys.authenticate_api_key` does not say which)."""


def viewer_for_user(user: User) -> Viewer:
    return Viewer(
        role=user.role,
        user_id=user.id,
        reseller_id=user.reseller_id,
        customer_id=user.customer_id,
        distributor_id=user.distributor_id,
    )


def viewer_for_api_key(key: ApiKey | Row[*tuple[Any, ...]]) -> Viewer:
    """A partner key acts as an administrator of its reseller (or of the provider); a
    distributor's key as the distributor :func:`viewer_for_user` makes of its login (role and
    distributor, nothing else), so every rule in :mod:`billing.access` treats the two alike."""
    if key.distributor_id is not None:
        return Viewer(
            role=Role.DISTRIBUTOR,
            distributor_id=key.distributor_id,
            api_key_id=key.id,
            scope=key.scope,
        )
    return Viewer(role=Role.ADMIN, api_key_id=key.id, reseller_id=key.reseller_id, scope=key.scope)


async def _user_from_session_token(
    session: AsyncSession, settings: Settings, token: str
) -> User | None:
    read = read_session_token(settings, token)
    if read is None:
        return None
    started, fingerprint = read
    user = await user_sessions.session_user(
        session, started.session_id, started.secret, clock.wall_now()
    )
    if user is None or fingerprint != password_fingerprint(user.password_hash):
        return None
    return user


def credentials(connection: HTTPConnection) -> str | None:
    """The bearer token, else the session cookie; the header wins when both are sent."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return connection.cookies.get(SESSION_COOKIE) or None


async def viewer_from_request(
    session: AsyncSession, settings: Settings, connection: HTTPConnection
) -> Viewer:
    """Who sent the request; :class:`InvalidApiKey` for a partner API key that is wrong."""
    token = credentials(connection)
    if token is None:
        return ANONYMOUS
    if token.startswith(f"{TOKEN_PREFIX}_"):
        key = await authenticate_api_key(session, token)
        if key is None:
            raise InvalidApiKey("Invalid API key: it is unknown, mistyped or revoked.")
        return viewer_for_api_key(key)
    user = await _user_from_session_token(session, settings, token)
    return ANONYMOUS if user is None else viewer_for_user(user)


async def remembered_viewer(
    session: AsyncSession, settings: Settings, request: HTTPConnection
) -> Viewer:
    """:func:`viewer_from_request`, looked up by a page's first GraphQL operation and kept on
    ``request.state`` for its others (a portal page runs two to four)."""
    known: Viewer | None = getattr(request.state, "viewer", None)
    if known is None:
        known = await viewer_from_request(session, settings, request)
        request.state.viewer = known
    return known


def forget_viewer(request: HTTPConnection) -> None:
    """Have the next operation look the viewer up again (after a mutation, which may have
    signed the visitor in or out)."""
    request.state.viewer = None


def client_address(connection: HTTPConnection | None) -> str:
    """The client's address as the HTTP server reports it (sign-in throttling's key)."""
    if connection is None or connection.client is None:
        return UNKNOWN_CLIENT
    return connection.client.host[:64]


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
