"""Bitcoin wallets (issue 11, part 1): each owner's settings, the account keys addresses are
derived from, the addresses handed to customers, and exchange rates.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-15 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=24)


def _rate_source() -> sa.Enum:
    return _enum("bitcoinratesource", "FIXED", "HTTP")


def upgrade() -> None:
    op.create_table(
        "bitcoin_wallets",
        sa.Column("id", _ID, nullable=False),
        sa.Column("owner_key", sa.String(length=64), nullable=False),
        sa.Column("account_key", sa.String(length=120), nullable=False),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bitcoin_wallets")),
        sa.UniqueConstraint(
            "account_key", "address_type", "network", name="uq_bitcoin_wallets_key_type"
        ),
    )
    op.create_index(op.f("ix_bitcoin_wallets_owner_key"), "bitcoin_wallets", ["owner_key"])
    op.create_table(
        "bitcoin_settings",
        sa.Column("owner_key", sa.String(length=64), nullable=False),
        sa.Column("wallet_id", _ID, nullable=False),
        sa.Column("minimum_amount", sa.BigInteger(), nullable=False),
        sa.Column("minimum_currency", sa.String(length=3), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("rate_source", _rate_source(), nullable=False),
        sa.Column("rate_config", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["wallet_id"],
            ["bitcoin_wallets.id"],
            name=op.f("fk_bitcoin_settings_wallet_id_bitcoin_wallets"),
        ),
        sa.PrimaryKeyConstraint("owner_key", name=op.f("pk_bitcoin_settings")),
    )
    op.create_table(
        "bitcoin_addresses",
        sa.Column("id", _ID, nullable=False),
        sa.Column("wallet_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("index", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_funded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_bitcoin_addresses_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"],
            ["bitcoin_wallets.id"],
            name=op.f("fk_bitcoin_addresses_wallet_id_bitcoin_wallets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bitcoin_addresses")),
        sa.UniqueConstraint("address", name=op.f("uq_bitcoin_addresses_address")),
        sa.UniqueConstraint("wallet_id", "index", name="uq_bitcoin_addresses_wallet_index"),
    )
    op.create_index(op.f("ix_bitcoin_addresses_customer_id"), "bitcoin_addresses", ["customer_id"])
    op.create_table(
        "rates",
        sa.Column("id", _ID, nullable=False),
        sa.Column("owner_key", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("minor_per_btc", sa.BigInteger(), nullable=False),
        sa.Column("source", _rate_source(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rates")),
    )
    op.create_index(
        "ix_rates_owner_currency_time", "rates", ["owner_key", "currency", "fetched_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_rates_owner_currency_time", table_name="rates")
    op.drop_table("rates")
    op.drop_index(op.f("ix_bitcoin_addresses_customer_id"), table_name="bitcoin_addresses")
    op.drop_table("bitcoin_addresses")
    op.drop_table("bitcoin_settings")
    op.drop_index(op.f("ix_bitcoin_wallets_owner_key"), table_name="bitcoin_wallets")
    op.drop_table("bitcoin_wallets")
