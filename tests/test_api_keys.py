"""Partner API keys: shown once, stored hashed, refused when wrong or revoked."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from billing.api_keys import authenticate_api_key, create_api_key, revoke_api_key
from billing.db import Database
from billing.errors import UserError
from billing.models import ApiKey, ApiKeyScope, Reseller


async def test_token_authenticates_and_only_its_hash_is_stored(db: Database) -> None:
    async with db.transaction() as session:
        key, token = await create_api_key(session, "Partner", ApiKeyScope.READ)
    kassa, prefix, secret = token.split("_")
    assert kassa == "kassa" and prefix == key.prefix and len(secret) >= 32
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in key.secret_hash
    async with db.session() as session:
        found = await authenticate_api_key(session, token)
    assert found is not None and found.id == key.id and found.scope == ApiKeyScope.READ


async def test_each_key_gets_its_own_prefix_and_secret(db: Database) -> None:
    async with db.transaction() as session:
        (a, token_a), (b, token_b) = [
            await create_api_key(session, name, ApiKeyScope.READ_WRITE) for name in ("a", "b")
        ]
    assert a.prefix != b.prefix and token_a != token_b


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # wrong secret
        lambda t: "kassa_ffffffffffff_" + t.split("_")[2],  # unknown prefix
        lambda t: t.replace("kassa_", "other_"),
        lambda t: t + "_extra",
        lambda t: "",
        lambda t: "kassa__",
    ],
)
async def test_wrong_or_malformed_tokens_are_refused(
    db: Database, mangle: Callable[[str], str]
) -> None:
    async with db.transaction() as session:
        _, token = await create_api_key(session, "Partner", ApiKeyScope.READ)
    async with db.session() as session:
        assert await authenticate_api_key(session, mangle(token)) is None


async def test_revoked_key_is_refused(db: Database) -> None:
    async with db.transaction() as session:
        key, token = await create_api_key(session, "Partner", ApiKeyScope.READ_WRITE)
    async with db.transaction() as session:
        loaded = await session.get(ApiKey, key.id)
        assert loaded is not None
        await revoke_api_key(session, loaded)
    async with db.session() as session:
        assert await authenticate_api_key(session, token) is None


async def test_key_for_a_reseller(db: Database) -> None:
    async with db.transaction() as session:
        reseller = Reseller(name="Resell Co")
        session.add(reseller)
        await session.flush()
        key, _ = await create_api_key(session, "Partner", ApiKeyScope.READ, reseller.id)
    assert key.reseller_id == reseller.id


async def test_unknown_reseller_and_blank_name_are_refused(db: Database) -> None:
    async with db.transaction() as session:
        with pytest.raises(UserError) as err:
            await create_api_key(session, "Partner", ApiKeyScope.READ, reseller_id=999_999)
        assert err.value.field == "resellerId"
        with pytest.raises(UserError) as err:
            await create_api_key(session, "   ", ApiKeyScope.READ)
        assert err.value.field == "name"
