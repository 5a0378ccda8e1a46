"""Collection: per-class settings by invoice kind, charge attempts, recorded status changes.

Written by hand from 0001 (other work branches from 0001 beside it; ``migrations.migrate``
upgrades every head).  ``InvoiceStatus`` gains PENDING_REVIEW: the column is a VARCHAR(24)
without a CHECK constraint, so that needs no DDL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=24)


def upgrade() -> None:
    op.create_table(
        "collection_settings",
        sa.Column("id", _ID, nullable=False),
        sa.Column("class_id", _ID, nullable=False),
        sa.Column("invoice_kind", _enum("invoicekind", "REGULAR", "OUT_OF_TURN"), nullable=False),
        sa.Column("payment_terms_days", sa.Integer(), nullable=True),
        sa.Column("grace_period_days", sa.Integer(), nullable=True),
        sa.Column(
            "card_charging",
            _enum("cardcharging", "NEVER", "ON_ISSUE", "ON_DUE_DATE"),
            nullable=False,
        ),
        sa.Column("attempt_days_before_due", sa.String(length=200), nullable=False),
        sa.Column("attempt_days_after_due", sa.String(length=200), nullable=False),
        sa.Column("review", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["customer_classes.id"],
            name=op.f("fk_collection_settings_class_id_customer_classes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_settings")),
        sa.UniqueConstraint("class_id", "invoice_kind", name="uq_collection_settings_kind"),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("not_charged_reason", sa.String(length=32), nullable=True))
    op.create_table(
        "collection_attempts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("invoice_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("scheduled_for", sa.Date(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            _enum("attemptstatus", "SCHEDULED", "UNKNOWN", "SUCCEEDED", "FAILED", "CANCELED"),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payment_method_id", _ID, nullable=True),
        sa.Column("payment_id", _ID, nullable=True),
        sa.Column("processor", sa.String(length=32), nullable=True),
        sa.Column("processor_reference", sa.String(length=200), nullable=True),
        sa.Column("decline_code", sa.String(length=64), nullable=True),
        sa.Column("message", sa.String(length=500), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_collection_attempts_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_collection_attempts_invoice_id_invoices")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_collection_attempts_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["payment_method_id"],
            ["payment_methods.id"],
            name=op.f("fk_collection_attempts_payment_method_id_payment_methods"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_attempts")),
        sa.UniqueConstraint("invoice_id", "scheduled_for", name="uq_collection_attempts_day"),
    )
    with op.batch_alter_table("collection_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_collection_attempts_due", ["status", "scheduled_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_collection_attempts_customer_id"), ["customer_id"], unique=False
        )
    op.create_table(
        "status_changes",
        sa.Column("id", _ID, nullable=False),
        sa.Column("subject", _enum("statussubject", "INVOICE", "CUSTOMER"), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("from_status", sa.String(length=24), nullable=True),
        sa.Column("to_status", sa.String(length=24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_status_changes_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_changes")),
    )
    with op.batch_alter_table("status_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_status_changes_subject", ["subject", "subject_id", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_status_changes_customer_id"), ["customer_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("status_changes")
    op.drop_table("collection_attempts")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("not_charged_reason")
    op.drop_table("collection_settings")
