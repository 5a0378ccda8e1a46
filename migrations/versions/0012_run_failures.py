"""Run failures: one customer's work a bill run or a collection run skipped, for the
administrators, and when it is tried again.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-12 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "run_failures",
        sa.Column("id", _ID, nullable=False),
        sa.Column(
            "kind",
            sa.Enum("BILL_RUN", "COLLECTION", name="runkind", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("invoice_id", _ID, nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_run_failures_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_run_failures_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_failures")),
    )
    op.create_index(op.f("ix_run_failures_customer_id"), "run_failures", ["customer_id"])
    op.create_index(op.f("ix_run_failures_invoice_id"), "run_failures", ["invoice_id"])
    op.create_index(
        "ix_run_failures_open", "run_failures", ["kind", "resolved_at", "next_retry_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_run_failures_open", table_name="run_failures")
    op.drop_index(op.f("ix_run_failures_invoice_id"), table_name="run_failures")
    op.drop_index(op.f("ix_run_failures_customer_id"), table_name="run_failures")
    op.drop_table("run_failures")
