"""Processor accounts (issue 12): the payment systems an owner of customers has configured
(processor, sealed credentials, mode, currencies with minimums, method kinds), the
reseller's choice to fall back to the provider's accounts, the account a stored method and a
payment went through, a payment's 3-D Secure address and flag, and the callbacks applied
(unique per account and event id).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "processor_accounts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("owner_key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("processor", sa.String(32), nullable=False),
        sa.Column("credentials_sealed", sa.Text(), nullable=False),
        sa.Column(
            "mode",
            sa.Enum("TEST", "LIVE", name="mode", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column("base_url", sa.String(500), nullable=True),
        sa.Column("minimums", sa.JSON(), nullable=False),
        sa.Column("method_kinds", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processor_accounts")),
        sa.UniqueConstraint("owner_key", "name", name="uq_processor_accounts_name"),
    )
    op.create_index(op.f("ix_processor_accounts_owner_key"), "processor_accounts", ["owner_key"])
    op.create_table(
        "processor_notifications",
        sa.Column("id", _ID, nullable=False),
        sa.Column("processor_account_id", _ID, nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "SUCCEEDED",
                "FAILED",
                "REVERSED",
                "REFUNDED",
                "IGNORED",
                name="notificationkind",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("payment_id", _ID, nullable=True),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["processor_account_id"],
            ["processor_accounts.id"],
            name=op.f("fk_processor_notifications_processor_account_id_processor_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_processor_notifications_payment_id_payments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processor_notifications")),
        sa.UniqueConstraint(
            "processor_account_id", "event_id", name="uq_processor_notifications_event"
        ),
    )
    op.create_index(
        op.f("ix_processor_notifications_payment_id"), "processor_notifications", ["payment_id"]
    )
    with op.batch_alter_table("resellers") as batch:
        batch.add_column(
            sa.Column(
                "processor_fallback", sa.Boolean(), nullable=False, server_default=sa.text("false")
            )
        )
    with op.batch_alter_table("payment_methods") as batch:
        batch.add_column(sa.Column("processor_account_id", _ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_payment_methods_processor_account_id_processor_accounts"),
            "processor_accounts",
            ["processor_account_id"],
            ["id"],
        )
        batch.create_index(
            op.f("ix_payment_methods_processor_account_id"), ["processor_account_id"]
        )
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("processor_account_id", _ID, nullable=True))
        batch.add_column(sa.Column("action_url", sa.String(2000), nullable=True))
        batch.add_column(sa.Column("flagged_reason", sa.String(500), nullable=True))
        batch.create_foreign_key(
            op.f("fk_payments_processor_account_id_processor_accounts"),
            "processor_accounts",
            ["processor_account_id"],
            ["id"],
        )
        batch.create_index(op.f("ix_payments_processor_account_id"), ["processor_account_id"])


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_index(op.f("ix_payments_processor_account_id"))
        batch.drop_constraint(
            op.f("fk_payments_processor_account_id_processor_accounts"), type_="foreignkey"
        )
        batch.drop_column("flagged_reason")
        batch.drop_column("action_url")
        batch.drop_column("processor_account_id")
    with op.batch_alter_table("payment_methods") as batch:
        batch.drop_index(op.f("ix_payment_methods_processor_account_id"))
        batch.drop_constraint(
            op.f("fk_payment_methods_processor_account_id_processor_accounts"),
            type_="foreignkey",
        )
        batch.drop_column("processor_account_id")
    with op.batch_alter_table("resellers") as batch:
        batch.drop_column("processor_fallback")
    op.drop_index(op.f("ix_processor_notifications_payment_id"), "processor_notifications")
    op.drop_table("processor_notifications")
    op.drop_index(op.f("ix_processor_accounts_owner_key"), "processor_accounts")
    op.drop_table("processor_accounts")
