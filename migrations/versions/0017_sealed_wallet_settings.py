"""Wallet settings sealed at rest (issue 11): a wallet's account key becomes
``account_key_sealed`` (AES-256-GCM under ``KASSA_ENCRYPTION_KEY``,
:mod:`billing.secrets_at_rest`) and ``account_key_digest`` (its keyed HMAC, which the unique
constraint and lookups now use); ``bitcoin_settings.rate_config`` is sealed in place.

Existing rows are sealed here, with the key the app uses (``KASSA_ENCRYPTION_KEY`` from the
environment; the public development key in development), so run the migration with the same
environment as ``kassa serve``.  The downgrade opens them again with that key.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-18 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import sqlalchemy as sa
from alembic import op

from billing import secrets_at_rest
from settings import from_env

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNIQUE = "uq_bitcoin_wallets_key_type"


@cache
def _keys() -> secrets_at_rest.Keys:
    """Asked for only when there is a row to seal or open: an empty database migrates
    without a key."""
    return secrets_at_rest.keys_for(from_env())


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=24)


def _create_wallets(key_columns: list[sa.Column[str]], unique: list[str]) -> None:
    op.create_table(
        "bitcoin_wallets",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("owner_key", sa.String(length=64), nullable=False),
        *key_columns,
        sa.Column(
            "network",
            _enum("bitcoinnetwork", "MAINNET", "TESTNET", "SIGNET", "REGTEST"),
            nullable=False,
        ),
        sa.Column(
            "address_type",
            _enum("addresstype", "NATIVE_SEGWIT", "NESTED_SEGWIT", "LEGACY"),
            nullable=False,
        ),
        sa.Column("next_index", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bitcoin_wallets"),
        sa.UniqueConstraint(*unique, name=_UNIQUE),
    )
    op.create_index("ix_bitcoin_wallets_owner_key", "bitcoin_wallets", ["owner_key"])


def _rebuild_on_sqlite(
    key_columns: list[sa.Column[str]], unique: list[str], copied: list[str]
) -> None:
    """SQLite cannot drop a column inside a unique constraint: the table is rebuilt.  Not
    with batch mode, which renames a copy into place — ``bitcoin_settings`` and
    ``bitcoin_addresses`` reference this table, the DROP counts their rows as violations, and
    a rename never uncounts them — but by re-inserting the rows, which does, with the check
    deferred to commit (``foreign_keys`` cannot be switched off inside a transaction; the
    updates before this opened one whenever there were rows)."""
    op.execute("PRAGMA defer_foreign_keys = ON")
    op.execute("CREATE TABLE _bitcoin_wallets_copy AS SELECT * FROM bitcoin_wallets")
    op.drop_index("ix_bitcoin_wallets_owner_key", table_name="bitcoin_wallets")
    op.drop_table("bitcoin_wallets")
    _create_wallets(key_columns, unique)
    names = ", ".join(copied)
    op.execute(f"INSERT INTO bitcoin_wallets ({names}) SELECT {names} FROM _bitcoin_wallets_copy")
    op.drop_table("_bitcoin_wallets_copy")


_COMMON = ["id", "owner_key", "network", "address_type", "next_index", "created_at"]


def upgrade() -> None:
    op.add_column("bitcoin_wallets", sa.Column("account_key_sealed", sa.Text(), nullable=True))
    op.add_column(
        "bitcoin_wallets", sa.Column("account_key_digest", sa.String(length=64), nullable=True)
    )
    connection = op.get_bind()
    for wallet_id, key in connection.execute(
        sa.text("SELECT id, account_key FROM bitcoin_wallets")
    ).all():
        connection.execute(
            sa.text(
                "UPDATE bitcoin_wallets SET account_key_sealed = :sealed, "
                "account_key_digest = :digest WHERE id = :id"
            ),
            {
                "id": wallet_id,
                "sealed": secrets_at_rest.seal(_keys(), secrets_at_rest.WALLET_ACCOUNT_KEY, key),
                "digest": secrets_at_rest.lookup_digest(
                    _keys(), secrets_at_rest.WALLET_ACCOUNT_KEY, key
                ),
            },
        )
    for owner_key, config in connection.execute(
        sa.text("SELECT owner_key, rate_config FROM bitcoin_settings")
    ).all():
        connection.execute(
            sa.text("UPDATE bitcoin_settings SET rate_config = :sealed WHERE owner_key = :owner"),
            {
                "owner": owner_key,
                "sealed": secrets_at_rest.seal(_keys(), secrets_at_rest.RATE_CONFIG, config),
            },
        )
    if connection.dialect.name == "sqlite":
        _rebuild_on_sqlite(
            [
                sa.Column("account_key_sealed", sa.Text(), nullable=False),
                sa.Column("account_key_digest", sa.String(length=64), nullable=False),
            ],
            ["account_key_digest", "address_type", "network"],
            [*_COMMON, "account_key_sealed", "account_key_digest"],
        )
        return
    op.drop_constraint(_UNIQUE, "bitcoin_wallets", type_="unique")
    op.drop_column("bitcoin_wallets", "account_key")
    op.alter_column("bitcoin_wallets", "account_key_sealed", nullable=False)
    op.alter_column("bitcoin_wallets", "account_key_digest", nullable=False)
    op.create_unique_constraint(
        _UNIQUE, "bitcoin_wallets", ["account_key_digest", "address_type", "network"]
    )


def downgrade() -> None:
    op.add_column("bitcoin_wallets", sa.Column("account_key", sa.String(length=120), nullable=True))
    connection = op.get_bind()
    for wallet_id, sealed in connection.execute(
        sa.text("SELECT id, account_key_sealed FROM bitcoin_wallets")
    ).all():
        connection.execute(
            sa.text("UPDATE bitcoin_wallets SET account_key = :key WHERE id = :id"),
            {
                "id": wallet_id,
                "key": secrets_at_rest.open_sealed(
                    _keys(), secrets_at_rest.WALLET_ACCOUNT_KEY, sealed
                ),
            },
        )
    for owner_key, sealed in connection.execute(
        sa.text("SELECT owner_key, rate_config FROM bitcoin_settings")
    ).all():
        connection.execute(
            sa.text("UPDATE bitcoin_settings SET rate_config = :config WHERE owner_key = :owner"),
            {
                "owner": owner_key,
                "config": secrets_at_rest.open_sealed(_keys(), secrets_at_rest.RATE_CONFIG, sealed),
            },
        )
    if connection.dialect.name == "sqlite":
        _rebuild_on_sqlite(
            [sa.Column("account_key", sa.String(length=120), nullable=False)],
            ["account_key", "address_type", "network"],
            [*_COMMON, "account_key"],
        )
        return
    op.drop_constraint(_UNIQUE, "bitcoin_wallets", type_="unique")
    op.drop_column("bitcoin_wallets", "account_key_digest")
    op.drop_column("bitcoin_wallets", "account_key_sealed")
    op.alter_column("bitcoin_wallets", "account_key", nullable=False)
    op.create_unique_constraint(
        _UNIQUE, "bitcoin_wallets", ["account_key", "address_type", "network"]
    )
