"""Partner API keys: ``kassa_<prefix>_<secret>`` bearer tokens.

The token is shown once, when the key is made.  The database keeps the public ``prefix`` (to
find the key) and a SHA-256 of the secret: a leaked database yields no usable key, and since
the secret is 192 random bits a fast hash is enough (no password stretching needed).

A key acts for the provider, for one reseller (as an administrator of it) or for one
distributor (as that distributor, exactly as its portal login does), within its scope.  Keys
are managed by signed-in people (:func:`create_key`, :func:`revoke_key`, :func:`key_query`):
the provider's administrators any key, a reseller's staff the keys of their reseller and of
its distributors, a distributor its own keys.  A key manages no keys, so a leaked key cannot
outlive its revocation by minting another.  ``kassa create-api-key`` is the operator's way
in, outside the API (:func:`create_api_key`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import Row, Select, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, validation
from billing.access import Viewer, require_write, scope_distributors
from billing.distributors import get_distributor
from billing.errors import Forbidden, NotFound, UserError
from billing.fixed_reads import FixedRead
from billing.models import ApiKey, ApiKeyScope, Distributor, Reseller, Role

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
    session: AsyncSession,
    name: str,
    scope: ApiKeyScope,
    reseller_id: int | None = None,
    distributor_id: int | None = None,
) -> tuple[ApiKey, str]:
    """Make a key, unchecked by any viewer (the operator's command, the demo); returns it with
    the plaintext token, which is never available again.

    A key belongs to a reseller or to a distributor, never both: a distributor's key acts as
    the distributor, whose customers are its own, not its reseller's.
    """
    name = validation.required_text(name, "name", 100)
    if reseller_id is not None and distributor_id is not None:
        raise UserError(
            "ONE_OWNER",
            "a key belongs to a reseller or to a distributor, not to both",
            "distributorId",
        )
    if reseller_id is not None and await session.get(Reseller, reseller_id) is None:
        raise NotFound("reseller", "resellerId")
    if distributor_id is not None and await session.get(Distributor, distributor_id) is None:
        raise NotFound("distributor", "distributorId")
    prefix = secrets.token_hex(_PREFIX_BYTES)
    secret = secrets.token_hex(_SECRET_BYTES)
    key = ApiKey(
        name=name,
        prefix=prefix,
        secret_hash=_hash_secret(secret),
        scope=ApiKeyScope(scope),
        reseller_id=reseller_id,
        distributor_id=distributor_id,
        created_at=await clock.now(session),
    )
    session.add(key)
    await session.flush()
    return key, f"{TOKEN_PREFIX}_{prefix}_{secret}"


#: Built once: every partner request runs it, and building a statement costs more than
#: running this one.  The key's columns, not an ORM object: the request only reads them,
#: and building the object cost more than the statement.
_KEY_BY_PREFIX = FixedRead(
    select(*ApiKey.__table__.c).where(ApiKey.__table__.c.prefix == bindparam("prefix"))
)


async def authenticate_api_key(session: AsyncSession, token: str) -> Row[*tuple[Any, ...]] | None:
    """The live key a bearer token belongs to, as a row of the key's columns, or None
    (malformed, unknown, wrong or revoked)."""
    parsed = _parse(token)
    if parsed is None:
        return None
    prefix, secret = parsed
    key: Row[*tuple[Any, ...]] | None = await _KEY_BY_PREFIX.one_or_none(
        session, {"prefix": prefix}
    )
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


# --- managing keys through the API ---------------------------------------------------------


def _require_key_manager(viewer: Viewer, write: bool = False) -> None:
    """Keys are managed by signed-in staff and distributors, never by a key."""
    if viewer.api_key_id is not None:
        raise Forbidden("API keys are managed by signed-in users, not by API keys")
    if not (viewer.is_staff or viewer.role == Role.DISTRIBUTOR):
        raise Forbidden("administrators and distributors only")
    if write:
        require_write(viewer)


def key_query(viewer: Viewer, distributor_id: int | None = None) -> Select[ApiKey]:
    """The keys the viewer manages (see the module docstring), optionally only those of one
    distributor; a distributor outside the viewer's scope simply has none to show."""
    _require_key_manager(viewer)
    query = select(ApiKey)
    if not (viewer.role == Role.ADMIN and viewer.reseller_id is None):
        of_distributors = ApiKey.distributor_id.in_(
            scope_distributors(select(Distributor.id), viewer)
        )
        query = query.where(
            or_(ApiKey.reseller_id == viewer.reseller_id, of_distributors)
            if viewer.is_staff
            else of_distributors
        )
    if distributor_id is not None:
        query = query.where(ApiKey.distributor_id == distributor_id)
    return query


async def get_key(session: AsyncSession, viewer: Viewer, key_id: int) -> ApiKey:
    """A key the viewer manages; NotFound for any other."""
    key = await session.scalar(key_query(viewer).where(ApiKey.id == key_id))
    if key is None:
        raise NotFound("API key")
    return key


async def create_key(
    session: AsyncSession,
    viewer: Viewer,
    name: str,
    scope: ApiKeyScope,
    reseller_id: int | None = None,
    distributor_id: int | None = None,
) -> tuple[ApiKey, str]:
    """:func:`create_api_key` for a signed-in viewer, within its scope.

    A distributor's keys are always its own (``distributor_id`` may name itself or be left
    out); staff name a distributor they look after, or get a key of their own reseller (the
    provider's administrators: any reseller, or none for a provider-wide key).  A reseller or
    distributor outside the viewer's scope is "not found".
    """
    _require_key_manager(viewer, write=True)
    if reseller_id is not None and distributor_id is not None:
        # Refused before any lookup, so the answer says nothing about either id.
        return await create_api_key(session, name, scope, reseller_id, distributor_id)
    if viewer.role == Role.DISTRIBUTOR:
        if viewer.distributor_id is None:
            raise Forbidden("this sign-in is linked to no distributor")
        if reseller_id is not None:
            raise NotFound("reseller", "resellerId")
        distributor_id = viewer.distributor_id if distributor_id is None else distributor_id
    if distributor_id is not None:
        try:
            await get_distributor(session, viewer, distributor_id)
        except NotFound as error:
            error.field = "distributorId"
            raise
        return await create_api_key(session, name, scope, distributor_id=distributor_id)
    if viewer.reseller_id is not None:
        if reseller_id not in (None, viewer.reseller_id):
            raise NotFound("reseller", "resellerId")
        reseller_id = viewer.reseller_id
    return await create_api_key(session, name, scope, reseller_id)


async def revoke_key(session: AsyncSession, viewer: Viewer, key_id: int) -> ApiKey:
    """Revoke a key the viewer manages (revoking a revoked key changes nothing)."""
    _require_key_manager(viewer, write=True)
    key = await get_key(session, viewer, key_id)
    await revoke_api_key(session, key)
    return key
