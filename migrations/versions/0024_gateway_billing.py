"""Direct-debit gateway billing (issue 14): kassa keeps the balance and the schedule, the
gateway (Debitsuccess) collects the one-off schedules kassa submits, and kassa polls their
statuses.

* ``gateway_settings`` — per processor account of a gateway: which status counts as paid
  (CLEARED or SETTLED, the operator's choice), the establishment fee and the commission the
  portal shows before a customer commits, and the poll's persisted cursor and last poll.
* ``gateway_billed_classes`` — the customer classes billed through a gateway, and through
  which of its processor accounts.
* ``gateway_enrollments`` — a customer on-boarded at the gateway: the gateway's customer id,
  account id and account reference (the only things kept of the payment method), its state (AWAITING_METHOD,
  ACTIVE, STOPPED) and why it was stopped (a payment stop).
* ``gateway_schedules`` — each one-off schedule kassa submitted, one per payment, under its
  unique identifier (the charge attempt's key), with its latest gateway status.
* ``gateway_schedule_statuses`` — every status a poll saw, once per (schedule, status, status
  date): the unique key is what makes a status seen in several overlapping polls apply once.

Payments gain the DIRECT_DEBIT channel, which needs no schema change (enums are VARCHAR(24)
without a native type or CHECK constraint).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gateway_settings",
        sa.Column("processor_account_id", _ID, nullable=False),
        sa.Column("paid_on", sa.String(16), nullable=False),
        sa.Column("establishment_fee", sa.BigInteger(), nullable=False),
        sa.Column("fee_currency", sa.String(3), nullable=False),
        sa.Column("commission_basis_points", sa.Integer(), nullable=False),
        sa.Column("poll_cursor", sa.Date(), nullable=True),
        sa.Column("last_poll_at", _WHEN, nullable=True),
        sa.Column("last_poll_seen", sa.Integer(), nullable=False),
        sa.Column("last_poll_applied", sa.Integer(), nullable=False),
        sa.Column("last_poll_error", sa.String(500), nullable=True),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["processor_account_id"],
            ["processor_accounts.id"],
            name=op.f("fk_gateway_settings_processor_account_id_processor_accounts"),
        ),
        sa.PrimaryKeyConstraint("processor_account_id", name=op.f("pk_gateway_settings")),
    )
    op.create_table(
        "gateway_billed_classes",
        sa.Column("class_id", _ID, nullable=False),
        sa.Column("processor_account_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["customer_classes.id"],
            name=op.f("fk_gateway_billed_classes_class_id_customer_classes"),
        ),
        sa.ForeignKeyConstraint(
            ["processor_account_id"],
            ["processor_accounts.id"],
            name=op.f("fk_gateway_billed_classes_processor_account_id_processor_accounts"),
        ),
        sa.PrimaryKeyConstraint("class_id", name=op.f("pk_gateway_billed_classes")),
    )
    op.create_table(
        "gateway_enrollments",
        sa.Column("id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("processor_account_id", _ID, nullable=False),
        sa.Column("gateway_customer_id", sa.String(50), nullable=False),
        sa.Column("gateway_account_id", sa.String(50), nullable=False),
        sa.Column("account_reference", sa.String(50), nullable=False),
        sa.Column("payment_method_id", _ID, nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("stop_code", sa.String(64), nullable=True),
        sa.Column("stop_message", sa.String(500), nullable=True),
        sa.Column("stopped_at", _WHEN, nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_gateway_enrollments_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["processor_account_id"],
            ["processor_accounts.id"],
            name=op.f("fk_gateway_enrollments_processor_account_id_processor_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_method_id"],
            ["payment_methods.id"],
            name=op.f("fk_gateway_enrollments_payment_method_id_payment_methods"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_enrollments")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_gateway_enrollments_customer_id")),
    )
    op.create_table(
        "gateway_schedules",
        sa.Column("id", _ID, nullable=False),
        sa.Column("payment_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("processor_account_id", _ID, nullable=False),
        sa.Column("external_identifier", sa.String(50), nullable=False),
        sa.Column("schedule_id", sa.String(50), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("status_date", sa.Date(), nullable=True),
        sa.Column("submitted_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_gateway_schedules_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_gateway_schedules_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["processor_account_id"],
            ["processor_accounts.id"],
            name=op.f("fk_gateway_schedules_processor_account_id_processor_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_schedules")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_gateway_schedules_payment_id")),
        sa.UniqueConstraint(
            "external_identifier", name=op.f("uq_gateway_schedules_external_identifier")
        ),
    )
    op.create_index(op.f("ix_gateway_schedules_customer_id"), "gateway_schedules", ["customer_id"])
    op.create_table(
        "gateway_schedule_statuses",
        sa.Column("id", _ID, nullable=False),
        sa.Column("schedule_id", _ID, nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("status_date", sa.Date(), nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("first_seen_at", _WHEN, nullable=False),
        sa.Column("times_seen", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["gateway_schedules.id"],
            name=op.f("fk_gateway_schedule_statuses_schedule_id_gateway_schedules"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_schedule_statuses")),
        sa.UniqueConstraint(
            "schedule_id", "status", "status_date", name="uq_gateway_schedule_statuses_seen"
        ),
    )


def downgrade() -> None:
    op.drop_table("gateway_schedule_statuses")
    op.drop_index(op.f("ix_gateway_schedules_customer_id"), table_name="gateway_schedules")
    op.drop_table("gateway_schedules")
    op.drop_table("gateway_enrollments")
    op.drop_table("gateway_billed_classes")
    op.drop_table("gateway_settings")
