"""Distributor API keys (issue 10): a key may belong to a distributor, and then its bearer
is that distributor, as a distributor's session is; a key belongs to a reseller or a
distributor, never both.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 09:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("distributor_id", _ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_api_keys_distributor_id_distributors"),
            "distributors",
            ["distributor_id"],
            ["id"],
        )
        batch.create_index(op.f("ix_api_keys_distributor_id"), ["distributor_id"])
        batch.create_check_constraint(
            op.f("ck_api_keys_one_owner"), "reseller_id IS NULL OR distributor_id IS NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint(op.f("ck_api_keys_one_owner"), type_="check")
        batch.drop_index(op.f("ix_api_keys_distributor_id"))
        batch.drop_constraint(op.f("fk_api_keys_distributor_id_distributors"), type_="foreignkey")
        batch.drop_column("distributor_id")
