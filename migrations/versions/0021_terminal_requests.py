"""Cash terminals (issue 13): the signed requests terminal networks made (unique per network
and signature, so a replayed request is refused) and the network's transaction id and time
of each payment it pushed in.

Payments gain the TERMINAL channel, which needs no schema change: kassa's enums are stored
as VARCHAR(24) without a native type or CHECK constraint (``native_enum=False``), on
PostgreSQL as on SQLite.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "terminal_requests",
        sa.Column("id", _ID, nullable=False),
        sa.Column("processor_account_id", _ID, nullable=False),
        sa.Column("signature", sa.String(64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["processor_account_id"],
            ["processor_accounts.id"],
            name=op.f("fk_terminal_requests_processor_account_id_processor_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminal_requests")),
        sa.UniqueConstraint(
            "processor_account_id", "signature", name="uq_terminal_requests_signature"
        ),
    )
    op.create_index(op.f("ix_terminal_requests_signed_at"), "terminal_requests", ["signed_at"])
    op.create_table(
        "terminal_payments",
        sa.Column("payment_id", _ID, nullable=False),
        sa.Column("network_txn_id", sa.String(64), nullable=False),
        sa.Column("network_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_terminal_payments_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_terminal_payments")),
    )


def downgrade() -> None:
    op.drop_table("terminal_payments")
    op.drop_index(op.f("ix_terminal_requests_signed_at"), "terminal_requests")
    op.drop_table("terminal_requests")
