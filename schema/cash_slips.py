"""Cash slips (PayNearMe): the standing slip a customer prints and pays at a store with, and
``requestCashSlip`` that makes it on first request."""

from __future__ import annotations

import strawberry

from billing import cash_slips
from billing.barcodes import code128_svg
from billing.errors import UserError
from resolvers import cash_slips as resolve
from resolvers.context import Info
from schema.errors import UserErrorType, user_errors
from schema.money import Money
from schema.permissions import IsAuthenticated
from schema.relay import decode_id


@strawberry.type(
    description="A customer's standing cash slip: printed once, paid in cash at a store any "
    "number of times (PayNearMe)."
)
class CashSlip:
    payment_identifier: str = strawberry.field(
        description="What the store scans: the barcode's content, printed beside it."
    )
    where_to_pay: list[str] = strawberry.field(description="The store chains that take it.")
    amount_due: Money | None = strawberry.field(
        description="What the open invoices still need; null when nothing is due (the slip "
        "takes any amount, credited to the balance)."
    )
    customer_name: str
    how_to_pay: list[str] = strawberry.field(
        description="What the customer does at the store, step by step."
    )
    customer_pk: strawberry.Private[int]

    @classmethod
    def of(cls, details: cash_slips.SlipDetails) -> CashSlip:
        return cls(
            payment_identifier=details.slip.payment_identifier,
            where_to_pay=cash_slips.where_to_pay(details.slip),
            amount_due=None
            if details.amount_due is None
            else Money.of(details.amount_due, details.currency),
            customer_name=details.customer_name,
            how_to_pay=list(cash_slips.HOW_TO_PAY),
            customer_pk=details.slip.customer_id,
        )

    @strawberry.field(
        description="The payment identifier as a Code 128 barcode: an inline SVG without text "
        "(scale it with CSS width)."
    )
    def barcode_svg(self) -> str:
        return code128_svg(self.payment_identifier)

    @strawberry.field(
        description="A signed link to the slip as a PDF, valid for a few minutes; anyone "
        "holding it can open it."
    )
    def pdf_url(self, info: Info) -> str:
        return resolve.pdf_url(info.context.settings, self.customer_pk)


@strawberry.input
class RequestCashSlipInput:
    customer_id: strawberry.ID


@strawberry.type
class CashSlipPayload:
    cash_slip: CashSlip | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class CashSlipMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="The customer's standing cash slip, made at the payment system on first "
        "request (the customer or staff); the same slip afterwards. CASH_SLIPS_NOT_OFFERED "
        "when no payment system of the customer's takes cash slips in its currency.",
    )
    async def request_cash_slip(self, info: Info, input: RequestCashSlipInput) -> CashSlipPayload:
        try:
            customer_id = decode_id(input.customer_id, "Customer", "customerId")
        except UserError as error:
            return CashSlipPayload(errors=user_errors(error))
        result = await resolve.request_slip(info.context, customer_id)
        if isinstance(result, UserError):
            return CashSlipPayload(errors=user_errors(result))
        return CashSlipPayload(cash_slip=CashSlip.of(result))
