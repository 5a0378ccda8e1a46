"""Redirect payments (issue 13): ``payments.expires_at``, when a PENDING redirect payment the
customer abandoned stops being payable and the expiry job asks the system about it.

The rest of a redirect fits the payment as it is: the system's id for the payment is its
``processor_reference``, the page the customer is sent to its ``action_url``, and the channel
REDIRECT needs no schema change (enums are VARCHAR(24) without a CHECK constraint).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 10:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(batch.f("ix_payments_expires_at"), ["expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_index(batch.f("ix_payments_expires_at"))
        batch.drop_column("expires_at")
