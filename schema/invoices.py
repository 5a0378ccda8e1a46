"""Invoices: the statement of a closed billing period, its lines and the payments on it."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy import Row

from billing import collection, models
from billing.errors import UserError
from resolvers import invoices as resolve
from resolvers.context import Info
from schema.collection import CollectionAttempt, StatusChange
from schema.errors import UserErrorType, user_errors
from schema.money import Money
from schema.payments import Payment
from schema.permissions import IsAuthenticated, SeesBooks
from schema.relay import DEFAULT_PAGE_SIZE, Connection, encode_id, paginate

if TYPE_CHECKING:
    from schema.customers import Customer

# The billing enums are the API's enums: registered here, then used as they are.
strawberry.enum(models.InvoiceKind)
strawberry.enum(models.InvoiceStatus)


@strawberry.type
class InvoiceLine:
    id: strawberry.ID
    account_number: str
    description: str
    service_at: datetime
    amount: Money

    @classmethod
    def from_model(cls, row: models.Charge, currency: str) -> InvoiceLine:
        """A line is one of the invoice's charges, so its id is the charge's."""
        return cls(
            id=encode_id("InvoiceLine", row.id),
            account_number=row.account_number,
            description=row.description,
            service_at=row.service_at,
            amount=Money.of(row.amount, currency),
        )


@strawberry.type(description="How much of a payment went to an invoice.")
class InvoicePayment:
    payment: Payment
    amount: Money


@strawberry.type(description="Dates are the customer's local calendar days.")
class Invoice:
    id: strawberry.ID
    number: str
    kind: models.InvoiceKind
    status: models.InvoiceStatus
    currency: str
    period_start: date
    period_end: date = strawberry.field(description="The day after the period (exclusive).")
    issue_date: date
    due_date: date
    previous_balance: Money = strawberry.field(
        description="Owed before this period.", permission_classes=[SeesBooks]
    )
    payments_in_period: Money = strawberry.field(permission_classes=[SeesBooks])
    total: Money = strawberry.field(
        description="This period's charges.", permission_classes=[SeesBooks]
    )
    amount_paid: Money = strawberry.field(
        description="Payments allocated to this invoice.", permission_classes=[SeesBooks]
    )
    outstanding: Money = strawberry.field(
        description="What the invoice still needs: total minus amount paid (0 when void)."
    )
    balance_due: Money = strawberry.field(
        description="Everything owed as of this invoice: previous balance − payments + total.",
        permission_classes=[SeesBooks],
    )
    created_at: datetime
    voided_at: datetime | None
    void_reason: str | None = strawberry.field(
        description="Why an administrator voided the invoice (null unless VOID).",
        permission_classes=[SeesBooks],
    )
    not_charged_reason: collection.NotCharged | None = strawberry.field(
        description="Why collection last passed the invoice by instead of charging the card "
        "(null once a charge is attempted).",
        permission_classes=[SeesBooks],
    )
    pk: strawberry.Private[int]
    customer_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.Invoice | Row[Any]) -> Invoice:
        """From the ORM object or a row of the invoice's columns (the dashboard's loader)."""

        def money(minor: int) -> Money:
            return Money.of(minor, row.currency)

        return cls(
            id=encode_id("Invoice", row.id),
            number=row.number,
            kind=row.kind,
            status=row.status,
            currency=row.currency,
            period_start=row.period_start,
            period_end=row.period_end,
            issue_date=row.issue_date,
            due_date=row.due_date,
            previous_balance=money(row.previous_balance),
            payments_in_period=money(row.payments_in_period),
            total=money(row.total),
            amount_paid=money(row.amount_paid),
            outstanding=money(models.invoice_outstanding(row)),
            balance_due=money(models.invoice_balance_due(row)),
            created_at=row.created_at,
            voided_at=row.voided_at,
            void_reason=row.void_reason,
            not_charged_reason=None
            if row.not_charged_reason is None
            else collection.NotCharged(row.not_charged_reason),
            pk=row.id,
            customer_id=row.customer_id,
        )

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated[Customer, strawberry.lazy("schema.customers")]:
        from schema.customers import Customer  # a cycle: customers list their invoices

        row = await info.context.loaders.customers.load(self.customer_id)
        assert row is not None  # an invoice never outlives its customer
        return Customer.from_model(row)

    @strawberry.field(permission_classes=[SeesBooks])
    async def lines(self, info: Info) -> list[InvoiceLine]:
        rows = await info.context.loaders.lines_by_invoice.load(self.pk)
        return [InvoiceLine.from_model(row, self.currency) for row in rows]

    @strawberry.field(
        description="A link to download the invoice as a PDF. Anyone holding "
        "it can download the PDF until it expires (15 minutes by default).",
        permission_classes=[SeesBooks],
    )
    def pdf_url(self, info: Info) -> str:
        return resolve.pdf_url(info.context, self.pk)

    @strawberry.field(
        description="Card charge attempts, in the order they fall due.",
        permission_classes=[SeesBooks],
    )
    async def attempts(self, info: Info) -> list[CollectionAttempt]:
        rows = await info.context.loaders.attempts_by_invoice.load(self.pk)
        return [CollectionAttempt.from_model(row) for row in rows]

    @strawberry.field(
        description="When the next planned card attempt falls due, if any.",
        permission_classes=[SeesBooks],
    )
    async def next_attempt_at(self, info: Info) -> datetime | None:
        return collection.next_attempt_at(
            await info.context.loaders.attempts_by_invoice.load(self.pk)
        )

    @strawberry.field(
        description="Every status transition, oldest first.", permission_classes=[SeesBooks]
    )
    async def status_changes(self, info: Info) -> list[StatusChange]:
        rows = await info.context.loaders.invoice_status_changes.load(self.pk)
        return [StatusChange.from_model(row) for row in rows]

    @strawberry.field(
        description="The payments that pay this invoice, oldest first.",
        permission_classes=[SeesBooks],
    )
    async def payments(self, info: Info) -> list[InvoicePayment]:
        return [
            InvoicePayment(
                payment=Payment.from_model(payment), amount=Money.of(amount, self.currency)
            )
            for payment, amount in await resolve.invoice_payments(info.context, self.pk)
        ]


@strawberry.input
class ClosePeriodOutOfTurnInput:
    customer_id: strawberry.ID


@strawberry.input
class VoidInvoiceInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class ApproveInvoicesInput:
    ids: list[strawberry.ID] = strawberry.field(description="Invoices in PENDING_REVIEW.")


@strawberry.input
class VoidInvoicesInput:
    ids: list[strawberry.ID]
    reason: str


@strawberry.type(description="All or nothing: with errors, no invoice was changed.")
class InvoicesPayload:
    invoices: list[Invoice] | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, result: list[models.Invoice] | UserError) -> InvoicesPayload:
        if isinstance(result, UserError):
            return cls(errors=user_errors(result))
        return cls(invoices=[Invoice.from_model(row) for row in result])


@strawberry.type
class InvoicePayload:
    invoice: Invoice | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, result: models.Invoice | UserError) -> InvoicePayload:
        if isinstance(result, UserError):
            return cls(errors=user_errors(result))
        return cls(invoice=Invoice.from_model(result))


@strawberry.type
class InvoiceQueries:
    @strawberry.field(permission_classes=[IsAuthenticated])
    async def invoice(self, info: Info, id: strawberry.ID) -> Invoice | None:
        row = await resolve.invoice(info.context, id)
        return None if row is None else Invoice.from_model(row)

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Invoices in your scope, newest first; dates inclusive.",
    )
    async def invoices(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        customer_id: strawberry.ID | None = None,
        status: models.InvoiceStatus | None = None,
        issued_from: date | None = None,
        issued_to: date | None = None,
    ) -> Connection[Invoice]:
        query = resolve.invoice_list(info.context, customer_id, status, issued_from, issued_to)
        return await paginate(info, query, models.Invoice.id, first, after, Invoice.from_model)


@strawberry.type
class InvoiceMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Invoice the open period now, with every uninvoiced charge up to today.",
    )
    async def close_period_out_of_turn(
        self, info: Info, input: ClosePeriodOutOfTurnInput
    ) -> InvoicePayload:
        return InvoicePayload.of(await resolve.close_period_out_of_turn(info.context, input))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Cancel an invoice: its charges are reversed, its payments become credit.",
    )
    async def void_invoice(self, info: Info, input: VoidInvoiceInput) -> InvoicePayload:
        return InvoicePayload.of(await resolve.void_invoice(info.context, input))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Approve invoices waiting for review: they become payable and their card "
        "attempts are planned.",
    )
    async def approve_invoices(self, info: Info, input: ApproveInvoicesInput) -> InvoicesPayload:
        return InvoicesPayload.of(await resolve.approve_invoices(info.context, input))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Void several invoices, as voidInvoice does each.",
    )
    async def void_invoices(self, info: Info, input: VoidInvoicesInput) -> InvoicesPayload:
        return InvoicesPayload.of(await resolve.void_invoices(info.context, input))
