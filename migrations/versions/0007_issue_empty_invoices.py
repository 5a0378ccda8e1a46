"""A customer class may ask for invoices of periods with nothing on them
(``customer_classes.issue_empty_invoices``); off for every existing class, as for new ones.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_classes") as batch:
        batch.add_column(
            sa.Column(
                "issue_empty_invoices", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_classes") as batch:
        batch.drop_column("issue_empty_invoices")
