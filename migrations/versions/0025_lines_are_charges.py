"""An invoice's lines are its charges (issue 15): the bill run stops copying every charge
into ``invoice_lines``.

The copy was one of the bill run's two writes per charge (the other points the charge at
its invoice), and a row written twice — with two foreign-key checks for the copy — is what
a month-end pays most for.  What the copy kept that the charge did not is the account's
number at the time (an account can be renumbered), so the charge now keeps the number it
was posted under: ``charges.account_number``, filled here from the copied line where there
is one (the number the invoice printed) and from the account otherwise.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("charges", sa.Column("account_number", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE charges SET account_number = (SELECT invoice_lines.account_number"
        " FROM invoice_lines WHERE invoice_lines.charge_id = charges.id)"
    )
    op.execute(
        "UPDATE charges SET account_number = (SELECT accounts.number FROM accounts"
        " WHERE accounts.id = charges.account_id) WHERE account_number IS NULL"
    )
    op.drop_index("ix_invoice_lines_invoice_id", table_name="invoice_lines")
    op.drop_table("invoice_lines")
    # Last: on SQLite this copies the charges table, which must have no referrer left.
    with op.batch_alter_table("charges") as batch_op:
        batch_op.alter_column("account_number", existing_type=sa.String(64), nullable=False)


def downgrade() -> None:
    op.create_table(
        "invoice_lines",
        sa.Column("id", _ID, nullable=False),
        sa.Column("invoice_id", _ID, nullable=False),
        sa.Column("charge_id", _ID, nullable=False),
        sa.Column("account_number", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("service_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["charge_id"], ["charges.id"], name=op.f("fk_invoice_lines_charge_id_charges")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_lines_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_lines")),
        sa.UniqueConstraint("charge_id", name=op.f("uq_invoice_lines_charge_id")),
    )
    op.create_index("ix_invoice_lines_invoice_id", "invoice_lines", ["invoice_id"])
    op.execute(
        "INSERT INTO invoice_lines (invoice_id, charge_id, account_number, description,"
        " service_at, amount) SELECT invoice_id, id, account_number, description, service_at,"
        " amount FROM charges WHERE invoice_id IS NOT NULL ORDER BY invoice_id, service_at, id"
    )
    # Not a batch: SQLite drops the column in place (a copy of charges would break the
    # lines' foreign key to it).
    op.drop_column("charges", "account_number")
