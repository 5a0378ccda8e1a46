"""Distributor invoices (issue 10): one per closed billing period of a distributor, with
its figures; run failures may name a distributor instead of a customer (distributor
billing isolates each distributor as the bill run isolates each customer).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-16 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_AMOUNTS = (
    "previous_balance",
    "sales_gross",
    "sales_commission",
    "collections_gross",
    "collections_commission",
    "reversals_gross",
    "reversals_commission",
    "payments",
    "other",
    "balance_due",
)


def upgrade() -> None:
    op.create_table(
        "distributor_invoices",
        sa.Column("id", _ID, nullable=False),
        sa.Column("distributor_id", _ID, nullable=False),
        sa.Column("owner_key", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _AMOUNTS),
        sa.Column(
            "status",
            sa.Enum("OPEN", "PAID", name="distributorinvoicestatus", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["distributor_id"],
            ["distributors.id"],
            name=op.f("fk_distributor_invoices_distributor_id_distributors"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distributor_invoices")),
        sa.UniqueConstraint(
            "distributor_id", "period_start", name="uq_distributor_invoices_period"
        ),
        sa.UniqueConstraint("owner_key", "number", name="uq_distributor_invoices_number"),
    )
    with op.batch_alter_table("run_failures") as batch_op:
        batch_op.alter_column("customer_id", existing_type=_ID, nullable=True)
        batch_op.add_column(sa.Column("distributor_id", _ID, nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_run_failures_distributor_id_distributors"),
            "distributors",
            ["distributor_id"],
            ["id"],
        )
        batch_op.create_index(op.f("ix_run_failures_distributor_id"), ["distributor_id"])
        batch_op.create_check_constraint(
            op.f("ck_run_failures_one_party"), "(customer_id IS NULL) <> (distributor_id IS NULL)"
        )


def downgrade() -> None:
    op.execute("DELETE FROM run_failures WHERE customer_id IS NULL")
    with op.batch_alter_table("run_failures") as batch_op:
        batch_op.drop_constraint(op.f("ck_run_failures_one_party"), type_="check")
        batch_op.drop_index(op.f("ix_run_failures_distributor_id"))
        batch_op.drop_constraint(
            op.f("fk_run_failures_distributor_id_distributors"), type_="foreignkey"
        )
        batch_op.drop_column("distributor_id")
        batch_op.alter_column("customer_id", existing_type=_ID, nullable=False)
    op.drop_table("distributor_invoices")
