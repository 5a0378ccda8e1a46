"""Forgotten passwords: a signed, single-use, one-hour token sent to the user's address.

The token is stateless (nothing is stored): it is signed with the installation's secret key
(itsdangerous) and carries the user's id, the time it was made, and a fingerprint of the
user's password hash.  Setting a new password changes the hash, so the token — and every
other reset token or session made before — stops working: that is what makes it single-use.

Asking for a reset never tells whether the address belongs to anyone; the caller answers the
same either way and only mails the token when :func:`start_reset` found a user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import sign_in_throttle, validation
from billing.errors import UserError
from billing.models import User
from billing.passwords import hash_password, password_fingerprint
from billing.users import get_user_by_email, validate_password

TOKEN_MAX_AGE = timedelta(hours=1)
_SALT = "kassa.password-reset"


def _expired() -> UserError:
    return UserError("EXPIRED_TOKEN", "this reset link has expired; ask for a new one", "token")


def _invalid() -> UserError:
    """Garbage, another installation's token, or one whose password has changed since."""
    return UserError(
        "INVALID_TOKEN",
        "this reset link is not valid or was already used; ask for a new one",
        "token",
    )


@dataclass(frozen=True, slots=True)
class ResetRequest:
    """Who to mail, and the token to put in the link."""

    email: str
    token: str


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=_SALT)


def issue_token(secret_key: str, user: User) -> str:
    return _serializer(secret_key).dumps(
        {"uid": user.id, "pw": password_fingerprint(user.password_hash)}
    )


async def start_reset(session: AsyncSession, secret_key: str, email: str) -> ResetRequest | None:
    """A token for the user with this address, or None when there is no such user.

    A malformed address is the caller's mistake and is said so (that reveals nothing).
    """
    address = validation.email(email, "email", required=True)
    assert address is not None
    user = await get_user_by_email(session, address)
    return None if user is None else ResetRequest(user.email, issue_token(secret_key, user))


async def reset_password(
    session: AsyncSession, secret_key: str, token: str, new_password: str, now: datetime
) -> User:
    """Set a new password with a token from :func:`start_reset`; the token then dies.

    ``now`` is the wall clock: the hour guards real time, not the test clock.  The user's
    row is locked (PostgreSQL) so two uses of one token cannot both succeed.  Proving the
    address also lifts a sign-in lock left by wrong guesses.
    """
    try:
        data, issued_at = _serializer(secret_key).loads(token, return_timestamp=True)
    except BadSignature:
        raise _invalid() from None
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int):
        raise _invalid()
    if now - issued_at.astimezone(UTC) > TOKEN_MAX_AGE:
        raise _expired()
    query = select(User).where(User.id == data["uid"])
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        query = query.with_for_update()
    user = await session.scalar(query.execution_options(populate_existing=True))
    if user is None or data.get("pw") != password_fingerprint(user.password_hash):
        raise _invalid()
    user.password_hash = hash_password(validate_password(new_password, "newPassword"))
    await sign_in_throttle.forget_failures(session, user.email)
    await session.flush()
    return user
