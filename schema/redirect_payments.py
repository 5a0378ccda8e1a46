"""Paying on a redirect system's page (PayPal, Skrill, Payarena, Remita) in the API: the
accounts a customer may pay through (``paymentOptions``), starting a payment (where to send
the customer) and completing it when the customer comes back (the system is asked; the
return alone proves nothing).  See :mod:`billing.redirect_payments`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import strawberry

from billing import models
from billing.errors import UserError
from billing.payment_systems import RedirectStart
from billing.redirect_payments import Option, Started
from resolvers import redirect_payments as resolve
from resolvers.context import Info
from schema.errors import UserErrorType, user_errors
from schema.money import Money
from schema.payments import Payment
from schema.permissions import IsAuthenticated
from schema.relay import encode_id

_IDEMPOTENCY_KEY = "Unique per payment: a replay returns the same payment and page."


@strawberry.enum(description="How the customer is sent to the system's page.")
class RedirectMethod(StrEnum):
    #: Follow the URL.
    GET = "GET"
    #: Submit a form with the fields to the URL.
    POST = "POST"


@strawberry.type(description="One field of the form a POST redirect submits.")
class RedirectField:
    name: str
    value: str


@strawberry.type(description="Where to send the customer to pay.")
class Redirect:
    url: str
    method: RedirectMethod
    fields: list[RedirectField]

    @classmethod
    def of(cls, start: RedirectStart) -> Redirect:
        fields = [RedirectField(name=k, value=v) for k, v in (start.form_fields or {}).items()]
        method = RedirectMethod.GET if start.form_fields is None else RedirectMethod.POST
        return cls(url=start.url, method=method, fields=fields)


@strawberry.type(description="A payment system the customer may be sent to, in its currency.")
class PaymentOption:
    processor_account_id: strawberry.ID
    name: str
    processor: str
    minimum: Money

    @classmethod
    def of(cls, option: Option) -> PaymentOption:
        return cls(
            processor_account_id=encode_id("ProcessorAccount", option.account_id),
            name=option.name,
            processor=option.processor,
            minimum=Money.of(option.minimum, option.currency),
        )


@strawberry.input
class StartRedirectPaymentInput:
    customer_id: strawberry.ID
    processor_account_id: strawberry.ID = strawberry.field(
        description="One of the customer's paymentOptions."
    )
    idempotency_key: str = strawberry.field(description=_IDEMPOTENCY_KEY)
    amount: str | None = strawberry.field(
        default=None,
        description="Decimal amount; with invoiceId, what the invoice still needs if unset.",
    )
    invoice_id: strawberry.ID | None = strawberry.field(
        default=None, description="The invoice paid first; unset for a top-up."
    )


@strawberry.input
class CompleteRedirectPaymentInput:
    payment_id: strawberry.ID
    query: str = strawberry.field(
        default="", description="The query string the system sent the customer back with."
    )


@strawberry.type
class StartRedirectPaymentPayload:
    payment: Payment | None = None
    redirect: Redirect | None = strawberry.field(
        default=None, description="Null once the payment is no longer PENDING."
    )
    errors: list[UserErrorType] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, result: Started | UserError) -> StartRedirectPaymentPayload:
        if isinstance(result, UserError):
            return cls(errors=user_errors(result))
        redirect = None if result.redirect is None else Redirect.of(result.redirect)
        return cls(payment=Payment.from_model(result.payment), redirect=redirect)


@strawberry.type
class CompleteRedirectPaymentPayload:
    payment: Payment | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, result: models.Payment | UserError) -> CompleteRedirectPaymentPayload:
        if isinstance(result, UserError):
            return cls(errors=user_errors(result))
        return cls(payment=Payment.from_model(result))


@strawberry.type
class RedirectPaymentQueries:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="The payment systems a customer may be sent to pay on (the customer "
        "itself and its staff; a distributor sees none).",
    )
    async def payment_options(
        self,
        info: Info,
        customer_id: Annotated[strawberry.ID, strawberry.argument(description="The customer.")],
    ) -> list[PaymentOption]:
        return [PaymentOption.of(o) for o in await resolve.options(info.context, customer_id)]


@strawberry.type
class RedirectPaymentMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Open a PENDING payment on a redirect system and say where to send the "
        "customer; it counts only once the system confirms it.",
    )
    async def start_redirect_payment(
        self, info: Info, input: StartRedirectPaymentInput
    ) -> StartRedirectPaymentPayload:
        return StartRedirectPaymentPayload.of(await resolve.start(info.context, input))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="The customer came back: ask the system and book its answer (once). Safe "
        "to repeat.",
    )
    async def complete_redirect_payment(
        self, info: Info, input: CompleteRedirectPaymentInput
    ) -> CompleteRedirectPaymentPayload:
        return CompleteRedirectPaymentPayload.of(await resolve.complete(info.context, input))
