"""A distributor's invoices: one per closed billing period, with its figures
(``billing.distributor_billing``; ``docs/distributors.md``)."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from billing import models
from billing.distributor_billing import Movement, figures_of
from schema.money import Money
from schema.relay import encode_id

# The billing enum is the API's enum: registered here, then used as it is.
strawberry.enum(
    models.DistributorInvoiceStatus,
    description="OPEN until payments to the provider since the period's end reach the "
    "balance due, then PAID (at once when nothing was due).",
)


@strawberry.type(description="One kind of movement in a period: gross − commission = net.")
class DistributorMovement:
    gross: Money = strawberry.field(description="What changed hands with end users.")
    commission: Money = strawberry.field(description="What the distributor kept.")
    net: Money = strawberry.field(description="What it did to what the distributor owes.")

    @classmethod
    def of(cls, moved: Movement, currency: str) -> DistributorMovement:
        return cls(
            gross=Money.of(moved.gross, currency),
            commission=Money.of(moved.commission, currency),
            net=Money.of(moved.net, currency),
        )


@strawberry.type(
    description="A distributor's invoice for one closed billing period: balanceDue = "
    "previousBalance + sales.net + collections.net + reversals.net − paymentsToProvider "
    "+ otherMovements."
)
class DistributorInvoice:
    id: strawberry.ID
    number: str
    status: models.DistributorInvoiceStatus
    currency: str
    time_zone: str = strawberry.field(description="The zone the period's days are in.")
    period_start: date
    period_end: date = strawberry.field(description="The day after the period (exclusive).")
    issue_date: date
    due_date: date
    paid_at: datetime | None
    previous_balance: Money = strawberry.field(description="Owed as the period began.")
    sales: DistributorMovement = strawberry.field(description="Credit sold.")
    collections: DistributorMovement = strawberry.field(description="Cash collected.")
    reversals: DistributorMovement = strawberry.field(description="Voided collections.")
    payments_to_provider: Money = strawberry.field(description="Paid to the provider.")
    other_movements: Money = strawberry.field(description="Adjustments of its balance.")
    balance_due: Money = strawberry.field(description="Owed as the period ended.")
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.DistributorInvoice) -> DistributorInvoice:
        figures, currency = figures_of(row), row.currency
        return cls(
            id=encode_id("DistributorInvoice", row.id),
            number=row.number,
            status=row.status,
            currency=currency,
            time_zone=row.time_zone,
            period_start=row.period_start,
            period_end=row.period_end,
            issue_date=row.issue_date,
            due_date=row.due_date,
            paid_at=row.paid_at,
            previous_balance=Money.of(figures.previous_balance, currency),
            sales=DistributorMovement.of(figures.sales, currency),
            collections=DistributorMovement.of(figures.collections, currency),
            reversals=DistributorMovement.of(figures.reversals, currency),
            payments_to_provider=Money.of(figures.payments, currency),
            other_movements=Money.of(figures.other, currency),
            balance_due=Money.of(figures.balance_due, currency),
            created_at=row.created_at,
        )


@strawberry.type(
    description="Why the distributor's ended period could not be invoiced: the run went on "
    "with the others and tries again at nextRetryAt."
)
class DistributorBillingFailure:
    code: str = strawberry.field(
        description="A domain error's code, or INTERNAL_ERROR (details in the server log)."
    )
    message: str
    attempts: int
    first_seen_at: datetime
    next_retry_at: datetime

    @classmethod
    def from_model(cls, row: models.RunFailure) -> DistributorBillingFailure:
        return cls(
            code=row.code,
            message=row.message,
            attempts=row.attempts,
            first_seen_at=row.first_seen_at,
            next_retry_at=row.next_retry_at,
        )
