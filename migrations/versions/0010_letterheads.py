"""Letterheads (one per owner of customers), the letterhead revision a kept invoice PDF
shows, and the reason an invoice was voided.

Written by hand from 0005, beside the other migrations of the same round
(``migrations.migrate`` upgrades every head).  Kept PDFs get revision 0 ("no letterhead
set"), which is what every owner has until it sets one, so nothing is re-rendered by the
upgrade itself.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-03 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "letterheads",
        sa.Column("owner_key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=True),
        sa.Column("tax_id", sa.String(length=50), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("website", sa.String(length=200), nullable=True),
        sa.Column("payment_instructions", sa.String(length=1000), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner_key", name=op.f("pk_letterheads")),
    )
    with op.batch_alter_table("invoice_pdfs") as batch:
        batch.add_column(
            sa.Column(
                "letterhead_revision_rendered",
                sa.Integer(),
                server_default=sa.text("0"),
                nullable=False,
            )
        )
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("void_reason", sa.String(length=400), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("void_reason")
    with op.batch_alter_table("invoice_pdfs") as batch:
        batch.drop_column("letterhead_revision_rendered")
    op.drop_table("letterheads")
