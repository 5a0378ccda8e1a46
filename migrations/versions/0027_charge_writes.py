"""The bill run's charge write gets lighter (issue 15): ``charges.invoice_id`` loses its
foreign key and ``charges.account_id`` its index of its own.

Pointing a charge at its invoice is the bill run's one write per charge, and on PostgreSQL
it cost a row-by-row foreign-key check (the invoice row locked ``FOR KEY SHARE`` once per
charge) and a new entry in every index of the charges table.  Measured on a batch of 1,000
customers × 10 charges, the two together were about half of that statement's time.

What the key proved, ``kassa check`` proves instead, and more strictly: every invoiced
charge's invoice exists *and is its own customer's* (:func:`billing.invoices.misfiled_charges`).
Invoices are never deleted, and the only writer of ``invoice_id`` is the bill run's
set-based attach (:func:`billing.invoices.issue_invoices`), which checks its row count.

An account's charges are found through the account's customer (the charges'
``(customer_id, invoice_id, service_at)`` index), so ``account_id`` needs no index; accounts
are never deleted, so its foreign key never has to look the charges up.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | Sequence[str] | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_charges_account_id", table_name="charges")
    with op.batch_alter_table("charges") as batch:
        batch.drop_constraint("fk_charges_invoice_id_invoices", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("charges") as batch:
        batch.create_foreign_key(
            "fk_charges_invoice_id_invoices", "invoices", ["invoice_id"], ["id"]
        )
    op.create_index("ix_charges_account_id", "charges", ["account_id"])
