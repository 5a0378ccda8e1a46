"""Exchange rates (issue 10): a distributor may serve customers of another currency when
the provider's administrators have set a rate from the customer's currency to the
distributor's; a sale or collection across currencies records the rate it used.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 08:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "exchange_rates",
        sa.Column("id", _ID, nullable=False),
        sa.Column("from_currency", sa.String(3), nullable=False),
        sa.Column("to_currency", sa.String(3), nullable=False),
        sa.Column("rate", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_rates")),
        sa.UniqueConstraint("from_currency", "to_currency", name="uq_exchange_rates"),
    )
    with op.batch_alter_table("ledger_transactions") as batch:
        batch.add_column(sa.Column("exchange_rate", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_transactions") as batch:
        batch.drop_column("exchange_rate")
    op.drop_table("exchange_rates")
