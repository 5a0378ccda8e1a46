"""Bitcoin payments (issue 11, part 2): each output the chain watcher reports paying a
customer's address, from first sight to credited, dropped or reversed.  Payments, ledger
books and run failures gain BITCOIN values, which need no schema change (their enums are
stored as plain strings).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-17 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bitcoin_payments",
        sa.Column("id", _ID, nullable=False),
        sa.Column("payment_id", _ID, nullable=False),
        sa.Column("address_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("txid", sa.String(length=64), nullable=False),
        sa.Column("vout", sa.Integer(), nullable=False),
        sa.Column("satoshis", sa.BigInteger(), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("rate_id", _ID, nullable=False),
        sa.Column("minor_per_btc", sa.BigInteger(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "PENDING",
                "BELOW_MINIMUM",
                "CREDITED",
                "DROPPED",
                "REVERSED",
                name="bitcoinpaymentstate",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("flag", sa.String(length=32), nullable=True),
        sa.Column("flag_cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("credited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reversal_transaction_id", _ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_bitcoin_payments_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["address_id"],
            ["bitcoin_addresses.id"],
            name=op.f("fk_bitcoin_payments_address_id_bitcoin_addresses"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_bitcoin_payments_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["rate_id"], ["rates.id"], name=op.f("fk_bitcoin_payments_rate_id_rates")
        ),
        sa.ForeignKeyConstraint(
            ["reversal_transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_bitcoin_payments_reversal_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bitcoin_payments")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_bitcoin_payments_payment_id")),
        sa.UniqueConstraint("txid", "vout", name="uq_bitcoin_payments_outpoint"),
    )
    op.create_index(op.f("ix_bitcoin_payments_address_id"), "bitcoin_payments", ["address_id"])
    op.create_index(op.f("ix_bitcoin_payments_customer_id"), "bitcoin_payments", ["customer_id"])
    op.create_index(op.f("ix_bitcoin_payments_state"), "bitcoin_payments", ["state"])


def downgrade() -> None:
    op.drop_table("bitcoin_payments")
