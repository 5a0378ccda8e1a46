"""Payments: cash, wire and cheque recorded by staff; card payments; refunds and voids."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy import Row

from billing import models
from billing.access import acts_for_customer
from billing.errors import UserError
from billing.payments import payment_error
from resolvers import payments as resolve
from resolvers import processor_accounts
from resolvers.context import Info
from schema.errors import UserErrorType, user_errors
from schema.money import Money
from schema.payment_methods import PaymentMethod
from schema.permissions import IsAuthenticated, SeesBooks
from schema.relay import DEFAULT_PAGE_SIZE, Connection, encode_id, paginate

if TYPE_CHECKING:
    from schema.customers import Customer
    from schema.invoices import Invoice

# The billing enums are the API's enums: registered here, then used as they are.
strawberry.enum(
    models.PaymentChannel,
    name="PaymentChannel",
    description="How the money came: CASH, WIRE, CHEQUE, CARD, BITCOIN, TERMINAL (cash "
    "paid at a terminal network's machine), PAYNEARME (cash paid at a store against the "
    "customer's PayNearMe slip), REDIRECT (paid on a payment system's own page: PayPal, "
    "Skrill, Payarena, Remita), or DIRECT_DEBIT (a one-off schedule a direct-debit gateway "
    "such as Debitsuccess collected).",
)
strawberry.enum(models.PaymentStatus)

_IDEMPOTENCY_KEY = (
    "A replay with the same key returns the first result; the same key with other arguments "
    "is refused (IDEMPOTENCY_KEY_REUSED)."
)


@strawberry.type(
    description="A distributor sees the cash it collected itself (method, amount, status, "
    "reference, receivedAt, its commission); the fields of cards, processors and refunds "
    "are refused to it (FORBIDDEN)."
)
class Payment:
    id: strawberry.ID
    method: models.PaymentChannel
    amount: Money
    refunded_amount: Money = strawberry.field(permission_classes=[SeesBooks])
    status: models.PaymentStatus = strawberry.field(
        description="PENDING: a card charge under way; UNKNOWN: the processor has not answered. "
        "Both are settled by asking the processor shortly (a card is never charged twice)."
    )
    reference: str | None
    received_at: datetime
    processor: str | None = strawberry.field(permission_classes=[SeesBooks])
    action_url: str | None = strawberry.field(
        description="A card charge the issuer wants confirmed (3-D Secure): where the customer "
        "confirms it while the payment is PENDING.",
        permission_classes=[SeesBooks],
    )
    flagged_reason: str | None = strawberry.field(
        description="Why this payment is flagged for an administrator to look at: a "
        "processor's notification whose amount or currency differed, a cash slip paid in "
        "another currency, a direct debit reported failed after it counted as paid. kassa "
        "moved no money on the notice that flagged it.",
        permission_classes=[SeesBooks],
    )
    flag_reviewed_at: datetime | None = strawberry.field(
        description="When an administrator marked this flagged payment as looked into "
        "(reviewFlaggedPayment); null while it waits.",
        permission_classes=[SeesBooks],
    )
    flag_review_note: str | None = strawberry.field(
        description="What the administrator who reviewed the flag found.",
        permission_classes=[SeesBooks],
    )
    decline_code: str | None = strawberry.field(permission_classes=[SeesBooks])
    message: str | None = strawberry.field(
        description="Safe to show to the customer.", permission_classes=[SeesBooks]
    )
    customer_id: strawberry.Private[int]
    invoice_id: strawberry.Private[int | None]
    payment_method_id: strawberry.Private[int | None]
    recorded_by_distributor_id: strawberry.Private[int | None]
    commission: strawberry.Private[int | None]
    processor_account_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, row: models.Payment | Row[Any]) -> Payment:
        """From the ORM object or a row of the payment's columns (the dashboard's loader)."""
        return cls(
            id=encode_id("Payment", row.id),
            method=row.method,
            amount=Money.of(row.amount, row.currency),
            refunded_amount=Money.of(row.refunded_amount, row.currency),
            status=row.status,
            reference=row.reference,
            received_at=row.received_at,
            processor=row.processor,
            action_url=row.action_url,
            flagged_reason=row.flagged_reason,
            flag_reviewed_at=row.flag_reviewed_at,
            flag_review_note=row.flag_review_note,
            decline_code=row.decline_code,
            message=row.message,
            customer_id=row.customer_id,
            invoice_id=row.invoice_id,
            payment_method_id=row.payment_method_id,
            recorded_by_distributor_id=row.recorded_by_distributor_id,
            commission=row.distributor_commission,
            processor_account_id=row.processor_account_id,
        )

    @strawberry.field(
        description="The name of the processor account the charge went through (null: none, "
        "as for payments made before processor accounts).",
        permission_classes=[SeesBooks],
    )
    async def processor_account(self, info: Info) -> str | None:
        if self.processor_account_id is None:
            return None
        return await processor_accounts.account_name(info.context, self.processor_account_id)

    @strawberry.field(
        description="What the distributor who recorded this cash kept of it, in the "
        "distributor's currency (which may differ from the payment's when a rate is set); "
        "null for a payment no distributor recorded."
    )
    async def distributor_commission(self, info: Info) -> Money | None:
        if self.commission is None or self.recorded_by_distributor_id is None:
            return None
        row = await info.context.loaders.distributors.load(self.recorded_by_distributor_id)
        assert row is not None  # a distributor is never deleted
        return Money.of(self.commission, row.currency)

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated[Customer, strawberry.lazy("schema.customers")]:
        from schema.customers import Customer  # a cycle: customers list their payments

        row = await info.context.loaders.customers.load(self.customer_id)
        assert row is not None  # a payment never outlives its customer
        return Customer.from_model(row)

    @strawberry.field(
        description="The invoice a card payment was made for, if any.",
        permission_classes=[SeesBooks],
    )
    async def invoice(
        self, info: Info
    ) -> Annotated[Invoice, strawberry.lazy("schema.invoices")] | None:
        from schema.invoices import Invoice  # a cycle: invoices list their payments

        if self.invoice_id is None:
            return None
        row = await info.context.loaders.invoices.load(self.invoice_id)
        return None if row is None else Invoice.from_model(row)

    @strawberry.field(
        description="The card charged (even if removed since), for card payments; "
        "null for callers who may not see the customer's cards.",
        permission_classes=[SeesBooks],
    )
    async def payment_method(self, info: Info) -> PaymentMethod | None:
        if self.payment_method_id is None or not acts_for_customer(
            info.context.viewer, self.customer_id
        ):
            return None
        row = await info.context.loaders.payment_methods.load(self.payment_method_id)
        return None if row is None else PaymentMethod.from_model(row)


@strawberry.input
class RecordPaymentInput:
    customer_id: strawberry.ID
    amount: str = strawberry.field(description="Decimal amount, greater than zero.")
    currency: str = strawberry.field(description="Must be the customer's currency.")
    method: models.PaymentChannel = strawberry.field(description="CASH, WIRE or CHEQUE.")
    idempotency_key: str = strawberry.field(description=_IDEMPOTENCY_KEY)
    reference: str | None = None
    received_at: datetime | None = strawberry.field(
        default=None, description="When the money arrived (not in the future); now if unset."
    )


@strawberry.input
class RefundPaymentInput:
    payment_id: strawberry.ID
    reason: str
    idempotency_key: str = strawberry.field(description=_IDEMPOTENCY_KEY)
    amount: str | None = strawberry.field(
        default=None, description="Decimal amount; everything not yet refunded if unset."
    )


@strawberry.input
class VoidPaymentInput:
    payment_id: strawberry.ID
    reason: str


@strawberry.input
class ReviewFlaggedPaymentInput:
    payment_id: strawberry.ID
    note: str = strawberry.field(description="What was found, up to 500 characters.")


@strawberry.input
class PayInvoiceInput:
    invoice_id: strawberry.ID
    idempotency_key: str = strawberry.field(description=_IDEMPOTENCY_KEY)
    amount: str | None = strawberry.field(
        default=None, description="Decimal amount; what the invoice still needs if unset."
    )
    payment_method_id: strawberry.ID | None = strawberry.field(
        default=None, description="The card to charge; the default card if unset."
    )


@strawberry.input
class TopUpInput:
    customer_id: strawberry.ID
    amount: str = strawberry.field(description="Decimal amount, greater than zero.")
    idempotency_key: str = strawberry.field(description=_IDEMPOTENCY_KEY)
    payment_method_id: strawberry.ID | None = strawberry.field(
        default=None, description="The card to charge; the default card if unset."
    )


@strawberry.type(
    description="A declined card gives both the FAILED payment (the record of the attempt) "
    "and an error saying why."
)
class PaymentPayload:
    payment: Payment | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, result: models.Payment | UserError) -> PaymentPayload:
        if isinstance(result, UserError):
            return cls(errors=user_errors(result))
        return cls(payment=Payment.from_model(result), errors=user_errors(payment_error(result)))


@strawberry.type
class PaymentQueries:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="A payment in your scope; to a distributor, one it recorded itself.",
    )
    async def payment(self, info: Info, id: strawberry.ID) -> Payment | None:
        row = await resolve.payment(info.context, id)
        return None if row is None else Payment.from_model(row)

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Payments in your scope, newest first; receivedTo exclusive. A "
        "distributor's scope is the payments it recorded itself. flagged: true for only "
        "those flagged for an administrator (flaggedReason), false for only the others; "
        "flagReviewed: true for only flagged payments someone has reviewed "
        "(reviewFlaggedPayment), false for only those still waiting; neither for distributors.",
    )
    async def payments(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        customer_id: strawberry.ID | None = None,
        method: models.PaymentChannel | None = None,
        received_from: datetime | None = None,
        received_to: datetime | None = None,
        flagged: bool | None = None,
        flag_reviewed: bool | None = None,
    ) -> Connection[Payment]:
        query = resolve.payment_list(
            info.context, customer_id, method, received_from, received_to, flagged, flag_reviewed
        )
        return await paginate(info, query, models.Payment.id, first, after, Payment.from_model)


@strawberry.type
class PaymentMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Record cash, a wire or a cheque received.",
    )
    async def record_payment(self, info: Info, input: RecordPaymentInput) -> PaymentPayload:
        return PaymentPayload.of(await resolve.record_payment(info.context, input))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def refund_payment(self, info: Info, input: RefundPaymentInput) -> PaymentPayload:
        return PaymentPayload.of(await resolve.refund_payment(info.context, input))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Undo a cash, wire or cheque payment recorded in error.",
    )
    async def void_payment(self, info: Info, input: VoidPaymentInput) -> PaymentPayload:
        return PaymentPayload.of(await resolve.void_payment(info.context, input))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Mark a flagged payment as looked into, with what was found (staff). "
        "Moves no money; the flag stays as history.",
    )
    async def review_flagged_payment(
        self, info: Info, input: ReviewFlaggedPaymentInput
    ) -> PaymentPayload:
        return PaymentPayload.of(await resolve.review_flagged_payment(info.context, input))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated], description="Pay an invoice with a stored card."
    )
    async def pay_invoice(self, info: Info, input: PayInvoiceInput) -> PaymentPayload:
        return PaymentPayload.of(await resolve.pay_invoice(info.context, input))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated], description="Add credit with a stored card."
    )
    async def top_up(self, info: Info, input: TopUpInput) -> PaymentPayload:
        return PaymentPayload.of(await resolve.top_up(info.context, input))
