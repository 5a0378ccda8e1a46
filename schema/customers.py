"""Customers, customer classes and resellers: types, inputs, queries and mutations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from sqlalchemy import Row

from billing import collection, models
from billing.access import Viewer, payments_recorded_by
from billing.errors import Forbidden, UserError
from billing.periods import BillingPeriod
from resolvers import bitcoin as resolve_bitcoin
from resolvers import cash_slips as resolve_cash_slips
from resolvers import customers as resolve
from resolvers import payment_methods as resolve_payment_methods
from resolvers.context import Info
from resolvers.loaders import LatestInvoices, LatestPayments
from schema.accounts import Account
from schema.bitcoin import BitcoinAddress, BitcoinPayment, BitcoinPaymentRequest
from schema.cash_slips import CashSlip
from schema.charges import Charge, charge_connection
from schema.collection import CollectionSettings, CollectionSettingsInput, StatusChange
from schema.errors import UserErrorType, user_errors
from schema.invoices import Invoice
from schema.money import Money
from schema.payment_methods import CardForm, PaymentMethod
from schema.payments import Payment
from schema.permissions import IsAuthenticated, SeesBooks
from schema.relay import DEFAULT_PAGE_SIZE, Connection, encode_id, page_size, paginate
from schema.statements import LedgerTransaction, ledger_transaction_connection

# The billing enums are the API's enums: registered here, then used as they are.
strawberry.enum(models.CustomerStatus)
strawberry.enum(BillingPeriod, name="BillingPeriod")

_ISSUE_EMPTY_INVOICES = (
    "Whether the bill run issues a regular invoice for a period with nothing on it: no "
    "charges, nothing owed or in credit from before, no payments in the period. "
    "Off: such periods pass without an invoice."
)

#: How many invoices or payments ``customer.invoices`` / ``customer.payments`` show by default.
LATEST_DEFAULT = 5


@strawberry.type(
    description="Payment terms, grace period and collection rules shared by a group of customers."
)
class CustomerClass:
    id: strawberry.ID
    name: str
    payment_terms_days: int = strawberry.field(
        description="Net days for invoices whose kind does not set its own."
    )
    grace_period_days: int = strawberry.field(
        description="Grace period for invoices whose kind does not set its own."
    )
    issue_empty_invoices: bool = strawberry.field(description=_ISSUE_EMPTY_INVOICES)
    created_at: datetime
    pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.CustomerClass) -> CustomerClass:
        return cls(
            id=encode_id("CustomerClass", row.id),
            name=row.name,
            payment_terms_days=row.payment_terms_days,
            grace_period_days=row.grace_period_days,
            issue_empty_invoices=row.issue_empty_invoices,
            created_at=row.created_at,
            pk=row.id,
        )

    async def _settings(self, info: Info, kind: models.InvoiceKind) -> CollectionSettings:
        rows = await info.context.loaders.collection_settings_by_class.load(self.pk)
        return CollectionSettings.from_policy(
            collection.resolve_policy(
                self.payment_terms_days, self.grace_period_days, rows.get(kind)
            )
        )

    @strawberry.field(description="How the class's regular invoices are due and collected.")
    async def regular_invoices(self, info: Info) -> CollectionSettings:
        return await self._settings(info, models.InvoiceKind.REGULAR)

    @strawberry.field(description="How the class's out-of-turn invoices are due and collected.")
    async def out_of_turn_invoices(self, info: Info) -> CollectionSettings:
        return await self._settings(info, models.InvoiceKind.OUT_OF_TURN)


@strawberry.type(description="An owner of customers with its own invoice numbering.")
class Reseller:
    id: strawberry.ID
    name: str
    email: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.Reseller) -> Reseller:
        return cls(
            id=encode_id("Reseller", row.id),
            name=row.name,
            email=row.email,
            created_at=row.created_at,
        )


@strawberry.type(description="Someone who is billed: balance positive = owes, negative = credit.")
class Customer:
    id: strawberry.ID
    name: str
    email: str | None
    phone: str | None
    address: str | None
    currency: str
    time_zone: str
    billing_period: BillingPeriod
    billing_anchor: date
    period_start: date = strawberry.field(description="First local day of the open period.")
    next_bill_at: datetime = strawberry.field(description="When the open period is invoiced.")
    credit_limit: Money
    status: models.CustomerStatus
    auto_payment: bool
    created_at: datetime
    updated_at: datetime
    pk: strawberry.Private[int]
    ledger_account_id: strawberry.Private[int]
    class_id: strawberry.Private[int | None]
    credit_limit_minor: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.Customer | Row[*tuple[Any, ...]]) -> Customer:
        """From the ORM object or a row of the customer's columns (``customer(id)``)."""
        return cls(
            id=encode_id("Customer", row.id),
            name=row.name,
            email=row.email,
            phone=row.phone,
            address=row.address,
            currency=row.currency,
            time_zone=row.time_zone,
            billing_period=row.billing_period,
            billing_anchor=row.billing_anchor,
            period_start=row.period_start,
            next_bill_at=row.next_bill_at,
            credit_limit=Money.of(row.credit_limit, row.currency),
            status=row.status,
            auto_payment=row.auto_payment,
            created_at=row.created_at,
            updated_at=row.updated_at,
            pk=row.id,
            ledger_account_id=row.ledger_account_id,
            class_id=row.class_id,
            credit_limit_minor=row.credit_limit,
        )

    async def _balance(self, info: Info) -> int:
        return await info.context.loaders.balances.load(self.ledger_account_id)

    @strawberry.field(description="What the customer owes (positive) or has in credit.")
    async def balance(self, info: Info) -> Money:
        return Money.of(await self._balance(info), self.currency)

    @strawberry.field(description="Credit limit minus balance: what may still be spent.")
    async def available_funds(self, info: Info) -> Money:
        balance = await self._balance(info)
        return Money.of(self.credit_limit_minor - balance, self.currency)

    @strawberry.field
    async def customer_class(self, info: Info) -> CustomerClass | None:
        if self.class_id is None:
            return None
        row = await info.context.loaders.customer_classes.load(self.class_id)
        return None if row is None else CustomerClass.from_model(row)

    @strawberry.field
    async def accounts(self, info: Info) -> list[Account]:
        rows = await info.context.loaders.accounts_by_customer.load(self.pk)
        return [Account.from_model(row) for row in rows]

    @strawberry.field(
        description="Charges on all the customer's accounts, newest first.",
        permission_classes=[SeesBooks],
    )
    async def charges(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        uninvoiced: bool | None = None,
    ) -> Connection[Charge]:
        return await charge_connection(
            info, first, after, customer_id=self.pk, uninvoiced=uninvoiced
        )

    def _invoices_key(self, first: int, status: models.InvoiceStatus | None) -> LatestInvoices:
        return LatestInvoices(self.pk, page_size(first), status)

    def _payments_key(self, viewer: Viewer, first: int) -> LatestPayments:
        return LatestPayments(self.pk, page_size(first), payments_recorded_by(viewer))

    @strawberry.field(description="The newest invoices (at most `first`, 100 at the most).")
    async def invoices(
        self,
        info: Info,
        first: int = LATEST_DEFAULT,
        status: models.InvoiceStatus | None = None,
    ) -> list[Invoice]:
        key = self._invoices_key(first, status)
        return [
            Invoice.from_model(row) for row in await info.context.loaders.latest_invoices.load(key)
        ]

    @strawberry.field(
        description="The newest payments (at most `first`, 100 at the most); to its "
        "distributor, only the payments it recorded itself."
    )
    async def payments(self, info: Info, first: int = LATEST_DEFAULT) -> list[Payment]:
        key = self._payments_key(info.context.viewer, first)
        return [
            Payment.from_model(row) for row in await info.context.loaders.latest_payments.load(key)
        ]

    #: The fields compiled reads hand to :meth:`prefetch` when a query selects them.
    PREFETCHED = frozenset({"accounts", "invoices", "payments"})

    async def prefetch(self, info: Info, selected: Mapping[str, Mapping[str, Any]]) -> None:
        """Read the customer's lists a query selects — field name to the arguments its
        resolver takes — in one statement, before they are resolved (``schema.compiled``:
        fields resolved one by one would read one list per statement).  Arguments the
        resolver refuses are left to it to report; one list alone gains nothing.
        """
        try:
            invoices = (
                self._invoices_key(**selected["invoices"]) if "invoices" in selected else None
            )
            payments = (
                self._payments_key(info.context.viewer, **selected["payments"])
                if "payments" in selected
                else None
            )
        except (GraphQLError, Forbidden):
            return
        if len(selected) > 1:
            await info.context.loaders.prime_customer_lists(
                self.pk, "accounts" in selected, invoices, payments
            )

    @strawberry.field(
        description="Ledger transactions that moved the balance, newest first.",
        permission_classes=[SeesBooks],
    )
    async def ledger_transactions(
        self, info: Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[LedgerTransaction]:
        return await ledger_transaction_connection(info, first, after, self.pk)

    @strawberry.field(
        description="Every status transition (suspension, reactivation, changes "
        "by staff), oldest first."
    )
    async def status_changes(self, info: Info) -> list[StatusChange]:
        rows = await info.context.loaders.customer_status_changes.load(self.pk)
        return [StatusChange.from_model(row) for row in rows]

    @strawberry.field(
        description="Stored cards, the default first.", permission_classes=[SeesBooks]
    )
    async def payment_methods(self, info: Info) -> list[PaymentMethod]:
        rows = await resolve_payment_methods.payment_methods_for(info.context, self.pk)
        return [PaymentMethod.from_model(row) for row in rows]

    @strawberry.field(
        description="How a new card is entered: the processor it goes to and, where the "
        "processor tokenizes in the browser, its script and public settings.",
        permission_classes=[SeesBooks],
    )
    async def card_form(self, info: Info) -> CardForm:
        return CardForm.of(await resolve_payment_methods.card_form(info.context, self.pk))

    async def _bitcoin_addresses(self, info: Info) -> list[BitcoinAddress]:
        loaders = info.context.loaders
        rows = await loaders.bitcoin_addresses_by_customer.load(self.pk)
        wallets = await loaders.bitcoin_wallets.load_many({row.wallet_id for row in rows})
        by_id = {wallet.id: wallet for wallet in wallets if wallet is not None}
        return [BitcoinAddress.from_model(row, by_id[row.wallet_id]) for row in rows]

    @strawberry.field(
        description="The address to pay in bitcoin: the newest one given "
        "(requestBitcoinAddress gives one); null before the first.",
        permission_classes=[SeesBooks],
    )
    async def bitcoin_address(self, info: Info) -> BitcoinAddress | None:
        addresses = await self._bitcoin_addresses(info)
        return addresses[0] if addresses else None

    @strawberry.field(
        description="Every bitcoin address the customer was given, newest first; all are "
        "watched for payments.",
        permission_classes=[SeesBooks],
    )
    async def bitcoin_addresses(self, info: Info) -> list[BitcoinAddress]:
        return await self._bitcoin_addresses(info)

    @strawberry.field(
        description="How to pay in bitcoin to the newest address: the BIP21 URI and its QR "
        "code, the rate and when it was fetched, the minimum and the confirmations needed; "
        "with invoiceId, for what that open invoice still needs. Null before the customer "
        "has an address (requestBitcoinAddress).",
        permission_classes=[SeesBooks],
    )
    async def bitcoin_payment_request(
        self,
        info: Info,
        invoice_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="An open invoice of this customer's."),
        ] = None,
    ) -> BitcoinPaymentRequest | None:
        found = await resolve_bitcoin.payment_request(info.context, self.pk, invoice_id)
        return None if found is None else BitcoinPaymentRequest.of(found)

    @strawberry.field(
        description="The customer's standing cash slip (PayNearMe); null before "
        "requestCashSlip made it.",
        permission_classes=[SeesBooks],
    )
    async def cash_slip(self, info: Info) -> CashSlip | None:
        found = await resolve_cash_slips.slip(info.context, self.pk)
        return None if found is None else CashSlip.of(found)

    @strawberry.field(
        description="Whether the customer can pay in cash at a store with a slip: one was "
        "made, or a payment system of the customer's owners makes them in its currency.",
        permission_classes=[SeesBooks],
    )
    async def cash_slip_offered(self, info: Info) -> bool:
        return await resolve_cash_slips.offered(info.context, self.pk)

    @strawberry.field(
        description="The customer's recent bitcoin payments, newest first, in every state.",
        permission_classes=[SeesBooks],
    )
    async def bitcoin_payments(self, info: Info) -> list[BitcoinPayment]:
        rows = await info.context.loaders.bitcoin_payments_by_customer.load(self.pk)
        return [BitcoinPayment.from_model(row, self.currency) for row in rows]


@strawberry.input
class CreateCustomerInput:
    name: str
    currency: str = strawberry.field(description="ISO 4217 code; fixed for good once created.")
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    time_zone: str | None = strawberry.field(default=None, description="IANA name; UTC if unset.")
    billing_period: BillingPeriod | None = None
    credit_limit: str | None = strawberry.field(default=None, description="Decimal amount.")
    opening_balance: str | None = strawberry.field(
        default=None, description="Decimal amount owed (negative: credit) from elsewhere."
    )
    status: models.CustomerStatus | None = None
    class_id: strawberry.ID | None = None
    reseller_id: strawberry.ID | None = None
    distributor_id: strawberry.ID | None = None
    auto_payment: bool | None = None
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Required with openingBalance (it moves money). A replay returns the first "
        "result; the same key with other arguments is refused (IDEMPOTENCY_KEY_REUSED).",
    )


@strawberry.input(description="Fields left out (or null) keep their value.")
class UpdateCustomerInput:
    id: strawberry.ID
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    time_zone: str | None = None
    credit_limit: str | None = None
    status: models.CustomerStatus | None = None
    class_id: strawberry.ID | None = None
    distributor_id: strawberry.ID | None = None
    auto_payment: bool | None = None


@strawberry.input
class CreateCustomerClassInput:
    name: str
    payment_terms_days: int = 14
    grace_period_days: int = 7
    issue_empty_invoices: bool = strawberry.field(default=False, description=_ISSUE_EMPTY_INVOICES)
    regular_invoices: CollectionSettingsInput | None = None
    out_of_turn_invoices: CollectionSettingsInput | None = None


@strawberry.input
class UpdateCustomerClassInput:
    id: strawberry.ID
    name: str | None = None
    payment_terms_days: int | None = None
    grace_period_days: int | None = None
    issue_empty_invoices: bool | None = strawberry.field(
        default=None, description=_ISSUE_EMPTY_INVOICES
    )
    regular_invoices: CollectionSettingsInput | None = None
    out_of_turn_invoices: CollectionSettingsInput | None = None


@strawberry.input
class CreateResellerInput:
    name: str
    email: str | None = None


@strawberry.type
class CustomerPayload:
    customer: Customer | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, result: models.Customer | UserError) -> CustomerPayload:
        if isinstance(result, UserError):
            return cls(errors=user_errors(result))
        return cls(customer=Customer.from_model(result))


@strawberry.type
class CustomerClassPayload:
    customer_class: CustomerClass | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, result: models.CustomerClass | UserError) -> CustomerClassPayload:
        if isinstance(result, UserError):
            return cls(errors=user_errors(result))
        return cls(customer_class=CustomerClass.from_model(result))


@strawberry.type
class ResellerPayload:
    reseller: Reseller | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, result: models.Reseller | UserError) -> ResellerPayload:
        if isinstance(result, UserError):
            return cls(errors=user_errors(result))
        return cls(reseller=Reseller.from_model(result))


@strawberry.type
class CustomerQueries:
    @strawberry.field(permission_classes=[IsAuthenticated])
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        row = await resolve.customer(info.context, id)
        return None if row is None else Customer.from_model(row)

    @strawberry.field(
        permission_classes=[IsAuthenticated], description="Customers in your scope, newest first."
    )
    async def customers(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        status: models.CustomerStatus | None = None,
        search: Annotated[
            str | None, strawberry.argument(description="Part of the name or e-mail address.")
        ] = None,
        email: Annotated[str | None, strawberry.argument(description="Exact address.")] = None,
    ) -> Connection[Customer]:
        query = resolve.customer_list(info.context, status, search, email)
        return await paginate(info, query, models.Customer.id, first, after, Customer.from_model)

    @strawberry.field(permission_classes=[IsAuthenticated])
    async def customer_classes(
        self, info: Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[CustomerClass]:
        query = resolve.customer_class_list(info.context)
        return await paginate(
            info, query, models.CustomerClass.id, first, after, CustomerClass.from_model
        )


@strawberry.type
class CustomerMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def create_customer(self, info: Info, input: CreateCustomerInput) -> CustomerPayload:
        return CustomerPayload.of(await resolve.create_customer(info.context, input))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def update_customer(self, info: Info, input: UpdateCustomerInput) -> CustomerPayload:
        return CustomerPayload.of(await resolve.update_customer(info.context, input))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def create_customer_class(
        self, info: Info, input: CreateCustomerClassInput
    ) -> CustomerClassPayload:
        return CustomerClassPayload.of(await resolve.create_customer_class(info.context, input))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def update_customer_class(
        self, info: Info, input: UpdateCustomerClassInput
    ) -> CustomerClassPayload:
        return CustomerClassPayload.of(await resolve.update_customer_class(info.context, input))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def create_reseller(self, info: Info, input: CreateResellerInput) -> ResellerPayload:
        return ResellerPayload.of(await resolve.create_reseller(info.context, input))
