"""Card charges as committed intents: the processor key and the janitor's next check.

Every card charge is now a payment committed PENDING under its processor idempotency key
before the processor is called (``billing.card_charges``).  This adds ``processor_key``
(unique) and ``next_check_at`` to ``payments`` and carries open work over, so an existing
database migrates on without a step:

* card payments get the key they were charged under (``payment-<id>``);
* payments still PENDING or UNKNOWN are due for the janitor at once;
* a collection attempt left in flight (UNKNOWN, charged under ``attempt-<id>``) becomes
  what the new collection run makes: a PENDING payment under that key, linked to it;
* the per-payment ``reconcile_payment`` jobs give way to the one janitor job.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = "status IN ('PENDING', 'UNKNOWN') AND processor IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("processor_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_payments_processor_key"), ["processor_key"], unique=True
        )
        batch_op.create_index(batch_op.f("ix_payments_next_check_at"), ["next_check_at"])
    op.execute("UPDATE payments SET processor_key = 'payment-' || id WHERE processor IS NOT NULL")
    op.execute(
        "INSERT INTO payments (customer_id, method, amount, currency, refunded_amount, status, "
        "received_at, payment_method_id, invoice_id, processor, processor_key) "
        "SELECT customer_id, 'CARD', amount, currency, 0, 'PENDING', attempted_at, "
        "payment_method_id, invoice_id, processor, 'attempt-' || id FROM collection_attempts "
        "WHERE status = 'UNKNOWN' AND payment_id IS NULL AND processor IS NOT NULL"
    )
    op.execute(
        "UPDATE collection_attempts SET payment_id = (SELECT p.id FROM payments p "
        "WHERE p.processor_key = 'attempt-' || collection_attempts.id) "
        "WHERE status = 'UNKNOWN' AND payment_id IS NULL AND processor IS NOT NULL"
    )
    op.execute(f"UPDATE payments SET next_check_at = received_at WHERE {_OPEN}")
    op.execute("DELETE FROM jobs WHERE kind = 'reconcile_payment' AND status = 'PENDING'")
    op.execute(
        "INSERT INTO jobs (kind, payload, due_at, status, unique_key, attempts) "
        "SELECT 'card_charge_janitor', '{}', MIN(next_check_at), 'PENDING', "
        f"'card_charge_janitor', 0 FROM payments WHERE {_OPEN} HAVING COUNT(*) > 0"
    )


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_next_check_at"))
        batch_op.drop_index(batch_op.f("ix_payments_processor_key"))
        batch_op.drop_column("next_check_at")
        batch_op.drop_column("processor_key")
