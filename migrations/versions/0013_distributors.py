"""Distributors (issue 10): terms, commissions in basis points, credit limit and warning,
billing period, contact details, their own ledger book; who recorded a payment and the
commission kept of it; the distributor of a ledger transaction; a user's time zone and
language.

The old ``commission_rate`` (a fraction such as ``"0.05"``) becomes both default rates in
basis points (500); each existing distributor gets its book (``distributor:<id>``) and a
monthly period anchored on the day it was made, with a warning at 90 % of its limit.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-14 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _bps(rate: str) -> int:
    """``"0.05"`` → 500, clamped to 0..10000; anything unreadable is 0."""
    try:
        value = (Decimal(rate) * 10000).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return 0
    return int(min(max(value, 0), 10000))


def _month_after(day: date) -> date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    for candidate in (day.day, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def _existing_terms(connection: sa.Connection) -> list[dict[str, object]]:
    """What each existing distributor gets: its book, rates and a first monthly period."""
    rows = connection.execute(
        sa.text("SELECT id, currency, time_zone, commission_rate, created_at FROM distributors")
    ).all()
    terms = []
    for distributor_id, currency, zone, rate, created_at in rows:
        created = (
            created_at
            if isinstance(created_at, datetime)
            else datetime.fromisoformat(str(created_at))
        )
        anchor = created.date()
        ends = datetime.combine(_month_after(anchor), time(), ZoneInfo(zone)).astimezone(UTC)
        book = connection.execute(
            sa.text(
                "INSERT INTO ledger_accounts (kind, owner_key, currency, balance) "
                "VALUES ('DISTRIBUTOR', :owner, :currency, 0) RETURNING id"
            ),
            {"owner": f"distributor:{distributor_id}", "currency": currency},
        ).scalar_one()
        terms.append(
            {
                "d_id": distributor_id,
                "book": book,
                "bps": _bps(rate),
                "anchor": anchor,
                "ends": ends if connection.dialect.name != "sqlite" else ends.replace(tzinfo=None),
            }
        )
    return terms


def upgrade() -> None:
    connection = op.get_bind()
    terms = _existing_terms(connection)
    with op.batch_alter_table("distributors") as batch_op:
        batch_op.alter_column("email", new_column_name="accounting_email")
        batch_op.add_column(sa.Column("class_id", _ID, nullable=True))
        batch_op.add_column(sa.Column("contact_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("phone", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("address", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column(
                "billing_period",
                sa.Enum(
                    "DAILY",
                    "WEEKLY",
                    "SEMI_MONTHLY",
                    "MONTHLY",
                    "MONTHLY_ANNIVERSARY",
                    name="billingperiodkind",
                    native_enum=False,
                    length=24,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("billing_anchor", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("period_start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("next_bill_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("credit_limit", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("sales_commission_bps", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("payment_commission_bps", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("warning_percent_bps", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("warning_amount", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("over_warning", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column(
                "statistics_email",
                sa.Enum(
                    "SUMMARY",
                    "FULL_WITH_CSV",
                    "NONE",
                    name="statisticsemail",
                    native_enum=False,
                    length=24,
                ),
                nullable=False,
                server_default="SUMMARY",
            )
        )
        batch_op.add_column(sa.Column("ledger_account_id", _ID, nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    for row in terms:
        connection.execute(
            sa.text(
                "UPDATE distributors SET ledger_account_id = :book, sales_commission_bps = :bps, "
                "payment_commission_bps = :bps, warning_percent_bps = 9000, "
                "billing_period = 'MONTHLY', billing_anchor = :anchor, period_start = :anchor, "
                "next_bill_at = :ends, updated_at = created_at WHERE id = :d_id"
            ),
            row,
        )
    with op.batch_alter_table("distributors") as batch_op:
        for name in ("billing_period", "billing_anchor", "period_start", "ledger_account_id"):
            batch_op.alter_column(name, nullable=False)
        batch_op.alter_column("next_bill_at", nullable=False)
        batch_op.alter_column("updated_at", nullable=False)
        batch_op.alter_column("credit_limit", server_default=None)
        batch_op.alter_column("sales_commission_bps", server_default=None)
        batch_op.alter_column("payment_commission_bps", server_default=None)
        batch_op.alter_column("over_warning", server_default=None)
        batch_op.alter_column("statistics_email", server_default=None)
        batch_op.drop_column("commission_rate")
        batch_op.create_foreign_key(
            op.f("fk_distributors_class_id_customer_classes"),
            "customer_classes",
            ["class_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            op.f("fk_distributors_ledger_account_id_ledger_accounts"),
            "ledger_accounts",
            ["ledger_account_id"],
            ["id"],
        )
        batch_op.create_unique_constraint(
            op.f("uq_distributors_ledger_account_id"), ["ledger_account_id"]
        )
        batch_op.create_check_constraint(
            op.f("ck_distributors_sales_commission_range"),
            "sales_commission_bps BETWEEN 0 AND 10000",
        )
        batch_op.create_check_constraint(
            op.f("ck_distributors_payment_commission_range"),
            "payment_commission_bps BETWEEN 0 AND 10000",
        )
        batch_op.create_check_constraint(
            op.f("ck_distributors_one_warning_threshold"),
            "(warning_percent_bps IS NULL) <> (warning_amount IS NULL)",
        )
    with op.batch_alter_table("ledger_transactions") as batch_op:
        batch_op.add_column(sa.Column("distributor_id", _ID, nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_ledger_transactions_distributor_id_distributors"),
            "distributors",
            ["distributor_id"],
            ["id"],
        )
        batch_op.create_index(op.f("ix_ledger_transactions_distributor_id"), ["distributor_id"])
    with op.batch_alter_table("payments") as batch_op:
        batch_op.add_column(sa.Column("recorded_by_distributor_id", _ID, nullable=True))
        batch_op.add_column(sa.Column("distributor_commission", sa.BigInteger(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_payments_recorded_by_distributor_id_distributors"),
            "distributors",
            ["recorded_by_distributor_id"],
            ["id"],
        )
        batch_op.create_index(
            op.f("ix_payments_recorded_by_distributor_id"), ["recorded_by_distributor_id"]
        )
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("language")
        batch_op.drop_column("time_zone")
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_index(op.f("ix_payments_recorded_by_distributor_id"))
        batch_op.drop_constraint(
            op.f("fk_payments_recorded_by_distributor_id_distributors"), type_="foreignkey"
        )
        batch_op.drop_column("distributor_commission")
        batch_op.drop_column("recorded_by_distributor_id")
    with op.batch_alter_table("ledger_transactions") as batch_op:
        batch_op.drop_index(op.f("ix_ledger_transactions_distributor_id"))
        batch_op.drop_constraint(
            op.f("fk_ledger_transactions_distributor_id_distributors"), type_="foreignkey"
        )
        batch_op.drop_column("distributor_id")
    with op.batch_alter_table("distributors") as batch_op:
        batch_op.add_column(
            sa.Column("commission_rate", sa.String(length=16), nullable=False, server_default="0")
        )
    # The sales rate back as a fraction (500 → "0.05"); the books stay, unreferenced.
    connection = op.get_bind()
    rates = connection.execute(sa.text("SELECT id, sales_commission_bps FROM distributors")).all()
    for distributor_id, bps in rates:
        connection.execute(
            sa.text("UPDATE distributors SET commission_rate = :rate WHERE id = :d_id"),
            {"rate": str(Decimal(bps).scaleb(-4)), "d_id": distributor_id},
        )
    with op.batch_alter_table("distributors") as batch_op:
        batch_op.alter_column("commission_rate", server_default=None)
        batch_op.drop_constraint(op.f("ck_distributors_one_warning_threshold"), type_="check")
        batch_op.drop_constraint(op.f("ck_distributors_payment_commission_range"), type_="check")
        batch_op.drop_constraint(op.f("ck_distributors_sales_commission_range"), type_="check")
        batch_op.drop_constraint(op.f("uq_distributors_ledger_account_id"), type_="unique")
        batch_op.drop_constraint(
            op.f("fk_distributors_ledger_account_id_ledger_accounts"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            op.f("fk_distributors_class_id_customer_classes"), type_="foreignkey"
        )
        for name in (
            "updated_at",
            "ledger_account_id",
            "statistics_email",
            "over_warning",
            "warning_amount",
            "warning_percent_bps",
            "payment_commission_bps",
            "sales_commission_bps",
            "credit_limit",
            "next_bill_at",
            "period_start",
            "billing_anchor",
            "billing_period",
            "address",
            "phone",
            "contact_name",
            "class_id",
        ):
            batch_op.drop_column(name)
        batch_op.alter_column("accounting_email", new_column_name="email")
