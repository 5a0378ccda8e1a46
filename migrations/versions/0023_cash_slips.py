"""PayNearMe cash slips (issue 13): each customer's standing slip — the processor account it
was opened through, what the store scans (the payment identifier), PayNearMe's order id and
where to pay — one per customer.

Payments gain the PAYNEARME channel, which needs no schema change: kassa's enums are stored
as VARCHAR(24) without a native type or CHECK constraint (``native_enum=False``), on
PostgreSQL as on SQLite.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 10:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cash_slips",
        sa.Column("id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("processor_account_id", _ID, nullable=False),
        sa.Column("payment_identifier", sa.String(100), nullable=False),
        sa.Column("external_id", sa.String(100), nullable=False),
        sa.Column("where_to_pay", sa.String(1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_cash_slips_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["processor_account_id"],
            ["processor_accounts.id"],
            name=op.f("fk_cash_slips_processor_account_id_processor_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cash_slips")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_cash_slips_customer_id")),
    )


def downgrade() -> None:
    op.drop_table("cash_slips")
