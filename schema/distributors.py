"""Distributors: types, inputs, queries and mutations (``docs/distributors.md``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import strawberry

from billing import commissions, models
from billing.access import may_see_customer
from billing.distributors import DistributorTransactionKind, kind_of
from billing.errors import UserError
from billing.money import format_percent, format_rate
from billing.periods import BillingPeriod
from resolvers import distributor_invoices as resolve_invoices
from resolvers import distributors as resolve
from resolvers.context import Info
from schema.customers import Customer, CustomerClass
from schema.distributor_invoices import DistributorBillingFailure, DistributorInvoice
from schema.errors import UserErrorType, user_errors
from schema.money import Money
from schema.permissions import IsAuthenticated
from schema.relay import DEFAULT_PAGE_SIZE, Connection, encode_id, page_size, paginate

# The billing enums are the API's enums: registered here, then used as they are.
strawberry.enum(
    models.StatisticsEmail,
    description="How statistics are mailed to the accounting address: a summary, full "
    "statistics with the transaction list as CSV, or nothing.",
)
strawberry.enum(
    DistributorTransactionKind,
    description="SALE: credit sold with a new customer or account; COLLECTION: cash taken "
    "from an end user; PAYMENT_TO_PROVIDER: what the distributor paid; REVERSAL: a voided "
    "collection (its commission taken back); ADJUSTMENT: a correction of its balance. Its "
    "invoices move no money and are Distributor.invoices.",
)

_PERCENT = 'A percentage with two decimals ("15.00").'
#: How many billing periods ``commissionByPeriod`` gives at most, and by default: two years
#: of monthly periods, half a year.
MAX_COMMISSION_PERIODS = 24
DEFAULT_COMMISSION_PERIODS = 6
_PERCENT_INPUT = 'A percentage from 0 to 100 with at most two decimals ("15", "12.5", "12.25").'


@strawberry.type(description="A sale, collection or payment as it moved the distributor's balance.")
class DistributorTransaction:
    id: strawberry.ID
    kind: DistributorTransactionKind
    description: str
    created_at: datetime
    amount: Money = strawberry.field(
        description="What it did to the distributor's balance: positive raised what it owes."
    )
    commission: Money = strawberry.field(
        description="The commission the distributor kept (negative: taken back by a void)."
    )
    gross: Money = strawberry.field(
        description="amount + commission: what changed hands with the end user (or, for a "
        "payment to the provider, the payment)."
    )
    payment_id: strawberry.ID | None = strawberry.field(
        description="The payment collected (or voided), for a collection or its reversal."
    )
    customer_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: object, currency: str) -> DistributorTransaction:
        """From a row of :func:`billing.distributors.transaction_query`."""
        amount, commission = int(row.amount), int(row.commission)  # type: ignore[attr-defined]
        payment_id = row.payment_id  # type: ignore[attr-defined]
        return cls(
            id=encode_id("LedgerTransaction", row.id),  # type: ignore[attr-defined]
            kind=kind_of(row.kind),  # type: ignore[attr-defined]
            description=row.description,  # type: ignore[attr-defined]
            created_at=row.created_at,  # type: ignore[attr-defined]
            amount=Money.of(amount, currency),
            commission=Money.of(commission, currency),
            gross=Money.of(amount + commission, currency),
            payment_id=None if payment_id is None else encode_id("Payment", payment_id),
            customer_id=row.customer_id,  # type: ignore[attr-defined]
        )

    @strawberry.field(description="The customer it concerns, while the caller still sees it.")
    async def customer(self, info: Info) -> Customer | None:
        if self.customer_id is None:
            return None
        row = await info.context.loaders.customers.load(self.customer_id)
        if row is None or not may_see_customer(info.context.viewer, row):
            return None
        return Customer.from_model(row)


@strawberry.type(description="The commission a distributor kept in one of its billing periods.")
class DistributorPeriodCommission:
    period_start: date = strawberry.field(description="The period's first local day.")
    period_end: date = strawberry.field(
        description="The next period's first local day (the period ends before it)."
    )
    commission: Money


@strawberry.type(
    description="A sales agent: signs up customers, collects cash on commission, and owes "
    "the provider its balance."
)
class Distributor:
    id: strawberry.ID
    name: str
    currency: str
    time_zone: str
    billing_period: BillingPeriod
    billing_anchor: date
    period_start: date = strawberry.field(description="First local day of the open period.")
    next_bill_at: datetime = strawberry.field(description="When the open period ends.")
    credit_limit: Money
    sales_commission: str = strawberry.field(description=f"On credit sold. {_PERCENT}")
    payment_commission: str = strawberry.field(description=f"On cash collected. {_PERCENT}")
    contact_name: str | None
    phone: str | None
    address: str | None
    accounting_email: str | None = strawberry.field(
        description="Where credit-limit warnings, invoices and statistics go."
    )
    warning_threshold_percent: str | None = strawberry.field(
        description=f"Warn above this share of the credit limit (null: an amount). {_PERCENT}"
    )
    warning_threshold: Money = strawberry.field(
        description="The balance above which one warning is mailed, until it is back below."
    )
    over_warning_threshold: bool = strawberry.field(
        description="The balance is above the threshold and the warning has gone."
    )
    statistics_email: models.StatisticsEmail
    created_at: datetime
    updated_at: datetime
    row: strawberry.Private[models.Distributor]

    @classmethod
    def from_model(cls, row: models.Distributor) -> Distributor:
        percent = row.warning_percent_bps
        return cls(
            id=encode_id("Distributor", row.id),
            name=row.name,
            currency=row.currency,
            time_zone=row.time_zone,
            billing_period=row.billing_period,
            billing_anchor=row.billing_anchor,
            period_start=row.period_start,
            next_bill_at=row.next_bill_at,
            credit_limit=Money.of(row.credit_limit, row.currency),
            sales_commission=format_percent(row.sales_commission_bps),
            payment_commission=format_percent(row.payment_commission_bps),
            contact_name=row.contact_name,
            phone=row.phone,
            address=row.address,
            accounting_email=row.accounting_email,
            warning_threshold_percent=None if percent is None else format_percent(percent),
            warning_threshold=Money.of(commissions.warning_threshold(row), row.currency),
            over_warning_threshold=row.over_warning,
            statistics_email=row.statistics_email,
            created_at=row.created_at,
            updated_at=row.updated_at,
            row=row,
        )

    async def _balance(self, info: Info) -> int:
        return await info.context.loaders.balances.load(self.row.ledger_account_id)

    @strawberry.field(description="What the distributor owes the provider (negative: paid ahead).")
    async def balance(self, info: Info) -> Money:
        return Money.of(await self._balance(info), self.currency)

    @strawberry.field(description="Credit limit minus balance: what it may still take on.")
    async def available_credit(self, info: Info) -> Money:
        return Money.of(self.row.credit_limit - await self._balance(info), self.currency)

    @strawberry.field(description="The class the distributor's own invoices follow.")
    async def customer_class(self, info: Info) -> CustomerClass | None:
        if self.row.class_id is None:
            return None
        row = await info.context.loaders.customer_classes.load(self.row.class_id)
        return None if row is None else CustomerClass.from_model(row)

    @strawberry.field(description="Commission kept since the open billing period began.")
    async def commission_this_period(self, info: Info) -> Money:
        return Money.of(await resolve.commission_this_period(info.context, self.row), self.currency)

    @strawberry.field(
        description="What selling `amount` of opening credit (a prepaid customer or account "
        "it signs up) would book at its sales commission: computed by the function that "
        "books it."
    )
    def sale_preview(self, amount: str) -> DistributorCommission:
        return DistributorCommission.of(resolve.sale_preview(self.row, amount), self.row)

    @strawberry.field(
        description="Commission kept per billing period, newest first: the open period "
        "(as commissionThisPeriod) and up to `first` - 1 before it, cut as the billing "
        f"period is set now, none from before the distributor was made (at most "
        f"{MAX_COMMISSION_PERIODS})."
    )
    async def commission_by_period(
        self, info: Info, first: int | None = DEFAULT_COMMISSION_PERIODS
    ) -> list[DistributorPeriodCommission]:
        count = page_size(first, MAX_COMMISSION_PERIODS)
        return [
            DistributorPeriodCommission(
                period_start=period.start,
                period_end=period.end,
                commission=Money.of(commission, self.currency),
            )
            for period, commission in await resolve.commission_by_period(
                info.context, self.row, count
            )
        ]

    @strawberry.field(description="The customers it serves that the caller sees, newest first.")
    async def customers(
        self, info: Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[Customer]:
        query = resolve.distributor_customers(info.context, self.row)
        return await paginate(info, query, models.Customer.id, first, after, Customer.from_model)

    @strawberry.field(
        description="Sales, collections, reversals and payments to the provider, "
        "newest first; `from` inclusive, `to` exclusive."
    )
    async def transactions(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        kinds: list[DistributorTransactionKind] | None = None,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> Connection[DistributorTransaction]:
        query = resolve.transaction_list(info.context, self.row, kinds, from_, to)
        return await paginate(
            info,
            query,
            models.LedgerTransaction.id,
            first,
            after,
            lambda row: DistributorTransaction.from_row(row, self.currency),
            whole_rows=True,
        )

    @strawberry.field(
        description="The same transactions as CSV, oldest first, times in the distributor's "
        "time zone (at most 10,000 rows: TOO_MANY_ROWS asks for narrower dates)."
    )
    async def transactions_csv(
        self,
        info: Info,
        kinds: list[DistributorTransactionKind] | None = None,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> str:
        return await resolve.transactions_csv(info.context, self.row, kinds, from_, to)

    @strawberry.field(
        description="Its invoices, one per closed billing period, newest first: what it "
        "owed before, the period's movements, and what it owed the provider at the end."
    )
    async def invoices(
        self, info: Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[DistributorInvoice]:
        query = resolve_invoices.invoice_list(info.context, self.row)
        return await paginate(
            info, query, models.DistributorInvoice.id, first, after, DistributorInvoice.from_model
        )

    @strawberry.field(
        description="Why its last ended period is not invoiced yet, while that lasts "
        "(administrators only; null for the distributor itself)."
    )
    async def billing_failure(self, info: Info) -> DistributorBillingFailure | None:
        row = await resolve_invoices.billing_failure(info.context, self.row)
        return None if row is None else DistributorBillingFailure.from_model(row)


@strawberry.type(
    description="What recording an amount of cash would book: the same split as the payment."
)
class DistributorCommission:
    paid: Money = strawberry.field(description="What the end user pays, in its currency.")
    exchange_rate: str | None = strawberry.field(
        description="The rate (the customer's currency to the distributor's) paid is "
        "converted at; null when both are the same."
    )
    gross: Money = strawberry.field(
        description="What the end user pays, in the distributor's currency."
    )
    commission: Money = strawberry.field(description="What the distributor keeps.")
    net: Money = strawberry.field(description="What the distributor will owe for it.")
    exceeds_credit_limit: bool = strawberry.field(
        description="Recording it would be refused (CREDIT_LIMIT_EXCEEDED)."
    )

    @classmethod
    def of(cls, split: commissions.Split, distributor: models.Distributor) -> DistributorCommission:
        conversion = split.conversion
        return cls(
            paid=(
                Money.of(split.gross, split.currency)
                if conversion is None
                else Money.of(conversion.paid, conversion.currency)
            ),
            exchange_rate=None if conversion is None else format_rate(conversion.rate),
            gross=Money.of(split.gross, split.currency),
            commission=Money.of(split.commission, split.currency),
            net=Money.of(split.net, split.currency),
            exceeds_credit_limit=commissions.exceeds_credit(distributor, split.net),
        )


@strawberry.input(description="The distributor's portal login: a DISTRIBUTOR user.")
class DistributorLoginInput:
    email: str
    password: str
    time_zone: str | None = strawberry.field(default=None, description="IANA name; UTC if unset.")
    language: str | None = strawberry.field(default=None, description='e.g. "en", "pt-BR".')


@strawberry.input
class CreateDistributorInput:
    name: str
    currency: str = strawberry.field(
        description="ISO 4217; fixed for good. Its customers pay in it too (no conversion)."
    )
    reseller_id: strawberry.ID | None = strawberry.field(
        default=None, description="The provider's administrators may put it under a reseller."
    )
    class_id: strawberry.ID | None = None
    time_zone: str | None = strawberry.field(default=None, description="IANA name; UTC if unset.")
    billing_period: BillingPeriod | None = None
    credit_limit: str | None = strawberry.field(default=None, description="Decimal amount.")
    sales_commission: str | None = strawberry.field(default=None, description=_PERCENT_INPUT)
    payment_commission: str | None = strawberry.field(default=None, description=_PERCENT_INPUT)
    contact_name: str | None = None
    phone: str | None = None
    address: str | None = None
    accounting_email: str | None = None
    warning_threshold_percent: str | None = strawberry.field(
        default=None,
        description=f"Of the credit limit; 90 when neither this nor an amount is sent. "
        f"{_PERCENT_INPUT}",
    )
    warning_threshold_amount: str | None = strawberry.field(
        default=None, description="A decimal amount instead of a percentage (not both)."
    )
    statistics_email: models.StatisticsEmail | None = None
    login: DistributorLoginInput | None = None


@strawberry.input(description="Fields left out (or null) keep their value.")
class UpdateDistributorInput:
    id: strawberry.ID
    name: str | None = None
    class_id: strawberry.ID | None = None
    time_zone: str | None = None
    billing_period: BillingPeriod | None = None
    credit_limit: str | None = None
    sales_commission: str | None = strawberry.field(default=None, description=_PERCENT_INPUT)
    payment_commission: str | None = strawberry.field(default=None, description=_PERCENT_INPUT)
    contact_name: str | None = None
    phone: str | None = None
    address: str | None = None
    accounting_email: str | None = None
    warning_threshold_percent: str | None = strawberry.field(
        default=None, description="Replaces an amount threshold."
    )
    warning_threshold_amount: str | None = strawberry.field(
        default=None, description="Replaces a percentage threshold."
    )
    statistics_email: models.StatisticsEmail | None = None


@strawberry.input
class RecordDistributorPaymentInput:
    distributor_id: strawberry.ID
    amount: str = strawberry.field(description="Decimal amount in the distributor's currency.")
    reference: str | None = None
    idempotency_key: str


@strawberry.type
class DistributorPayload:
    distributor: Distributor | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, result: models.Distributor | UserError) -> DistributorPayload:
        if isinstance(result, UserError):
            return cls(errors=user_errors(result))
        return cls(distributor=Distributor.from_model(result))


@strawberry.type
class DistributorPaymentPayload:
    distributor: Distributor | None = None
    transaction: DistributorTransaction | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class DistributorQueries:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="A distributor its administrators look after, or the distributor itself.",
    )
    async def distributor(self, info: Info, id: strawberry.ID) -> Distributor | None:
        row = await resolve.distributor(info.context, id)
        return None if row is None else Distributor.from_model(row)

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Distributors in your scope, newest first (administrators only).",
    )
    async def distributors(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        search: Annotated[
            str | None,
            strawberry.argument(description="Part of the name or accounting address."),
        ] = None,
    ) -> Connection[Distributor]:
        query = resolve.distributor_list(info.context, search)
        return await paginate(
            info, query, models.Distributor.id, first, after, Distributor.from_model
        )

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="What recording `amount` of cash from one of a distributor's customers "
        "would book: computed by the function that books it.",
    )
    async def distributor_commission_preview(
        self, info: Info, customer_id: strawberry.ID, amount: str
    ) -> DistributorCommission:
        split, distributor = await resolve.commission_preview(info.context, customer_id, amount)
        return DistributorCommission.of(split, distributor)


@strawberry.type
class DistributorMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def create_distributor(
        self, info: Info, input: CreateDistributorInput
    ) -> DistributorPayload:
        return DistributorPayload.of(await resolve.create_distributor(info.context, input))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def update_distributor(
        self, info: Info, input: UpdateDistributorInput
    ) -> DistributorPayload:
        return DistributorPayload.of(await resolve.update_distributor(info.context, input))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="The distributor paid the provider: its balance goes down.",
    )
    async def record_distributor_payment(
        self, info: Info, input: RecordDistributorPaymentInput
    ) -> DistributorPaymentPayload:
        result = await resolve.record_distributor_payment(info.context, input)
        if isinstance(result, UserError):
            return DistributorPaymentPayload(errors=user_errors(result))
        row, txn = result
        return DistributorPaymentPayload(
            distributor=Distributor.from_model(row),
            transaction=DistributorTransaction.from_row(txn, row.currency),
        )
