"""Invoice documents: each invoice's rendered PDF (billing.models.InvoicePdf).

Written by hand from 0001, beside the collection work's 0002 (both branch from 0001;
``migrations.migrate`` upgrades every head).

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-25 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invoice_documents",
        sa.Column(
            "invoice_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "status_rendered",
            sa.Enum(
                "UNPAID",
                "PARTIALLY_PAID",
                "PAID",
                "OVERDUE",
                "VOID",
                name="invoicestatus",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("amount_paid_rendered", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("rendered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_documents_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("invoice_id", name=op.f("pk_invoice_documents")),
    )


def downgrade() -> None:
    op.drop_table("invoice_documents")
