"""A flagged payment can be marked as looked into: ``payments.flag_reviewed_at`` and
``payments.flag_review_note`` (what the administrator found), so the list of payments to
look at shrinks as they are dealt with.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("flag_reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("flag_review_note", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("flag_review_note")
        batch.drop_column("flag_reviewed_at")
