"""Partner API keys: ``kassa_<prefix>_<secret>`` bearer tokens.

The token is shown once, when the key is made.  The database keeps the public ``prefix`` (to
find the key) and a SHA-256 of the secret: a leaked database yields no usable key, and since
the secret is 192 random bits a fast hash is enough (no password stretching needed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, validation
from billing.errors import NotFound
from billing.models import ApiKey, ApiKeyScope, Reseller

TOKEN_PREFIX = "kassa"
_PREFIX_BYTES = 6  # 12 hex characters
_SECRET_BYTES = 24  # 48 hex characters


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _parse(token: str) -> tuple[str, str] | None:
    parts = token.strip().split("_")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


async def create_api_key(
    session: AsyncSession, name: str, scope: ApiKeyScope, reseller_id: int | None = None
) -> tuple[ApiKey, str]:
    """Make a key; returns it with the plaintext token, which is never available again."""
    name = validation.required_text(name, "name", 100)
    if reseller_id is not None and await session.get(Reseller, reseller_id) is None:
        raise NotFound("reseller", "resellerId")
    prefix = secrets.token_hex(_PREFIX_BYTES)
    secret = secrets.token_hex(_SECRET_BYTES)
    key = ApiKey(
        name=name,
        prefix=prefix,
        secret_hash=_hash_secret(secret),
        scope=ApiKeyScope(scope),
        reseller_id=reseller_id,
        created_at=await clock.now(session),
    )
    session.add(key)
    await session.flush()
    return key, f"{TOKEN_PREFIX}_{prefix}_{secret}"


async def authenticate_api_key(session: AsyncSession, token: str) -> ApiKey | None:
    """The live key a bearer token belongs to, or None (malformed, unknown, wrong or revoked)."""
    parsed = _parse(token)
    if parsed is None:
        return None
    prefix, secret = parsed
    key = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    # Compare even when the prefix is unknown, so timing does not tell which prefixes exist.
    expected = key.secret_hash if key is not None else _hash_secret("")
    matches = hmac.compare_digest(_hash_secret(secret), expected)
    if key is None or not matches or key.revoked_at is not None:
        return None
    return key


async def revoke_api_key(session: AsyncSession, key: ApiKey) -> None:
    """Stop a key from working; the row stays, for the audit trail."""
    if key.revoked_at is None:
        key.revoked_at = await clock.now(session)
        await session.flush()
