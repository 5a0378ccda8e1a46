"""The test clock can run with wall time at an offset (``clock_state.offset_microseconds``)
as well as stand frozen; an existing frozen clock stays frozen.  Downgrading forgets the
offset: a running test clock reads the wall clock again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clock_state") as batch:
        batch.add_column(sa.Column("offset_microseconds", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clock_state") as batch:
        batch.drop_column("offset_microseconds")
