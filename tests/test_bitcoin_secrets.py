"""Wallet settings sealed at rest (billing.secrets_at_rest): the database holds neither the
account key nor the price endpoints in the clear, lookups by key still work, a wrong
``KASSA_ENCRYPTION_KEY`` fails with an error that says so, and the migration seals the rows
that were there before it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import make_url, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from billing import secrets_at_rest
from billing.bitcoin_wallets import (
    PriceEndpoint,
    WalletInput,
    get_wallet,
    set_wallet,
    wallet_account_key,
)
from billing.db import Database, make_engine
from billing.errors import UserError
from billing.models import BitcoinRateSource, BitcoinWallet
from migrations.migrate import alembic_config, migrate
from settings import Settings, normalise_database_url, sqlite_url
from tests.bitcoin_keys import TESTNET_VPUB
from tests.factories import admin_viewer, make_reseller

PRICE_URL = "https://prices.example.com/v1/btc?apikey=SECRET-API-KEY-123"


async def _raw_rows(db: Database) -> str:
    """Every column of both settings tables, as text, read with plain SQL."""
    async with db.engine.connect() as conn:
        wallets = (await conn.execute(text("SELECT * FROM bitcoin_wallets"))).all()
        settings = (await conn.execute(text("SELECT * FROM bitcoin_settings"))).all()
    return repr(wallets) + repr(settings)


async def test_the_database_holds_no_account_key_and_no_price_endpoint(db: Database) -> None:
    async with db.transaction() as session:
        viewer = admin_viewer()
        await set_wallet(
            session,
            viewer,
            WalletInput(
                TESTNET_VPUB,
                rate_source=BitcoinRateSource.HTTP,
                price_endpoints=[PriceEndpoint("USD", PRICE_URL, "data.amount")],
            ),
        )
    raw = await _raw_rows(db)
    assert "bitcoin_wallets" not in raw and raw.count("v1.") == 2
    assert TESTNET_VPUB not in raw and TESTNET_VPUB[4:40] not in raw
    assert "SECRET-API-KEY" not in raw and "prices.example.com" not in raw
    async with db.session() as session:
        shown = await get_wallet(session, admin_viewer())
    assert shown.account_key == TESTNET_VPUB
    assert shown.price_endpoints == (PriceEndpoint("USD", PRICE_URL, "data.amount"),)


async def test_a_key_is_still_found_by_its_digest(db: Database) -> None:
    async with db.transaction() as session:
        viewer = admin_viewer()
        reseller = await make_reseller(session)
        rates = [("USD", "65000")]
        first = await set_wallet(session, viewer, WalletInput(TESTNET_VPUB, fixed_rates=rates))
        again = await set_wallet(session, viewer, WalletInput(TESTNET_VPUB, fixed_rates=rates))
        assert again.account_key == first.account_key == TESTNET_VPUB
        with pytest.raises(UserError) as refused:
            await set_wallet(
                session, viewer, WalletInput(TESTNET_VPUB, fixed_rates=rates), reseller.id
            )
        assert refused.value.code == "KEY_IN_USE"
    async with db.engine.connect() as conn:
        count = await conn.scalar(text("SELECT count(*) FROM bitcoin_wallets"))
    assert count == 1


async def test_a_wrong_encryption_key_fails_clearly(settings: Settings, db: Database) -> None:
    async with db.transaction() as session:
        await set_wallet(
            session,
            admin_viewer(),
            WalletInput(TESTNET_VPUB, fixed_rates=[("USD", "1")]),
        )
    other = Database(settings.with_(encryption_key="another-key-" + "x" * 30))
    try:
        async with other.session() as session:
            sealed = await session.scalar(text("SELECT account_key_sealed FROM bitcoin_wallets"))
            assert sealed is not None
            expected = secrets_at_rest.keys_from(settings.encryption_key or "").key_id
            with pytest.raises(secrets_at_rest.SecretsError, match="sealed under encryption key"):
                await get_wallet(session, admin_viewer())
            with pytest.raises(secrets_at_rest.SecretsError, match=expected):
                secrets_at_rest.open_sealed(
                    secrets_at_rest.keys_for(session.info["settings"]),
                    secrets_at_rest.WALLET_ACCOUNT_KEY,
                    sealed,
                )
    finally:
        await other.dispose()


def test_a_sealed_value_opens_only_in_its_own_column_and_undamaged() -> None:
    keys = secrets_at_rest.keys_from("k" * 32)
    sealed = secrets_at_rest.seal(keys, secrets_at_rest.WALLET_ACCOUNT_KEY, "vpub…")
    assert secrets_at_rest.open_sealed(keys, secrets_at_rest.WALLET_ACCOUNT_KEY, sealed) == "vpub…"
    assert sealed != secrets_at_rest.seal(keys, secrets_at_rest.WALLET_ACCOUNT_KEY, "vpub…")
    with pytest.raises(secrets_at_rest.SecretsError, match="another column"):
        secrets_at_rest.open_sealed(keys, secrets_at_rest.RATE_CONFIG, sealed)
    damaged = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(secrets_at_rest.SecretsError, match="damaged"):
        secrets_at_rest.open_sealed(keys, secrets_at_rest.WALLET_ACCOUNT_KEY, damaged)
    with pytest.raises(secrets_at_rest.SecretsError, match="not a sealed value"):
        secrets_at_rest.open_sealed(keys, secrets_at_rest.WALLET_ACCOUNT_KEY, "vpub-plain")
    assert "k" * 8 not in repr(keys)


def test_without_a_key_outside_development_nothing_is_sealed() -> None:
    with pytest.raises(secrets_at_rest.SecretsError, match="KASSA_ENCRYPTION_KEY is not set"):
        secrets_at_rest.keys_for(Settings(environment="production"))
    assert secrets_at_rest.keys_for(Settings()).key_id  # development: the public default


@asynccontextmanager
async def _scratch_database(tmp_path: Path) -> AsyncIterator[str]:
    """A database of its own: a SQLite file, or on the PostgreSQL server the suite uses."""
    server = os.environ.get("KASSA_TEST_DATABASE_URL")
    if not server:
        yield sqlite_url(tmp_path / "sealing.db")
        return
    url = make_url(normalise_database_url(server))
    name = f"kassa_sealing_{os.getpid()}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def test_the_migration_seals_existing_rows_and_the_downgrade_opens_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "migration-key-" + "m" * 30
    monkeypatch.setenv("KASSA_ENCRYPTION_KEY", key)
    async with _scratch_database(tmp_path) as url:
        await _seal_and_open(url, key)


async def _seal_and_open(url: str, key: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0016")
    engine = make_engine(url)
    config = '{"USD": {"jsonPath": "a", "url": "https://p.example/?key=K"}}'
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO bitcoin_wallets (id, owner_key, account_key, network, "
                    "address_type, next_index, created_at) VALUES (1, 'provider', :key, "
                    "'TESTNET', 'NATIVE_SEGWIT', 3, '2026-01-01 00:00:00')"
                ),
                {"key": TESTNET_VPUB},
            )
            await conn.execute(
                text(
                    "INSERT INTO bitcoin_settings (owner_key, wallet_id, minimum_amount, "
                    "minimum_currency, confirmations, rate_source, rate_config, updated_at) "
                    "VALUES ('provider', 1, 10000, 'BTC', 1, 'HTTP', :config, "
                    "'2026-01-01 00:00:00')"
                ),
                {"config": config},
            )
        await migrate(url)
        keys = secrets_at_rest.keys_from(key)
        async with engine.connect() as conn:
            sealed, digest = (
                await conn.execute(
                    text("SELECT account_key_sealed, account_key_digest FROM bitcoin_wallets")
                )
            ).one()
            sealed_config = await conn.scalar(text("SELECT rate_config FROM bitcoin_settings"))
        assert TESTNET_VPUB not in sealed and "p.example" not in sealed_config
        opened = secrets_at_rest.open_sealed(keys, secrets_at_rest.WALLET_ACCOUNT_KEY, sealed)
        assert opened == TESTNET_VPUB
        assert digest == secrets_at_rest.lookup_digest(
            keys, secrets_at_rest.WALLET_ACCOUNT_KEY, TESTNET_VPUB
        )
        assert (
            secrets_at_rest.open_sealed(keys, secrets_at_rest.RATE_CONFIG, sealed_config) == config
        )
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0016")
        async with engine.connect() as conn:
            plain = (
                await conn.execute(text("SELECT account_key FROM bitcoin_wallets"))
            ).scalar_one()
            plain_config = await conn.scalar(text("SELECT rate_config FROM bitcoin_settings"))
        assert (plain, plain_config) == (TESTNET_VPUB, config)
    finally:
        await engine.dispose()


async def test_addresses_are_derived_from_the_opened_key(db: Database) -> None:
    async with db.transaction() as session:
        await set_wallet(
            session,
            admin_viewer(),
            WalletInput(TESTNET_VPUB, fixed_rates=[("USD", "1")]),
        )
    async with db.session() as session:
        wallet = (await session.scalars(select(BitcoinWallet))).one()
        assert wallet_account_key(session, wallet) == TESTNET_VPUB
