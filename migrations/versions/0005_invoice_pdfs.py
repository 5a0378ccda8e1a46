"""One head again, and invoice PDFs stored under the name the code uses (table ``invoice_pdfs``).

0002, 0003 and 0004 were written side by side from 0001; this revision joins them, so the
next migration has one parent.  It renames ``invoice_documents`` (0003) to ``invoice_pdfs``
with its constraints, keeping every row: an existing database migrates on without a step.

Revision ID: 0005
Revises: 0002, 0003, 0004
Create Date: 2026-12-03 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = ("0002", "0003", "0004")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CONSTRAINTS = (
    ("pk_invoice_documents", "pk_invoice_pdfs"),
    ("fk_invoice_documents_invoice_id_invoices", "fk_invoice_pdfs_invoice_id_invoices"),
)


def _rename(old_table: str, new_table: str, forward: bool) -> None:
    op.rename_table(old_table, new_table)
    # SQLite keeps constraint names only inside the table's CREATE text, where nothing reads
    # them; PostgreSQL names them in its catalogue, so follow the table there.
    if op.get_bind().dialect.name == "postgresql":
        for old, new in _CONSTRAINTS:
            before, after = (old, new) if forward else (new, old)
            op.execute(f'ALTER TABLE {new_table} RENAME CONSTRAINT "{before}" TO "{after}"')


def upgrade() -> None:
    _rename("invoice_documents", "invoice_pdfs", forward=True)


def downgrade() -> None:
    _rename("invoice_pdfs", "invoice_documents", forward=False)
