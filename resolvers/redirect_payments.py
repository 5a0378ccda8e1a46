"""Redirect payments: the options a customer has, starting one, completing it on return."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from billing import customers, redirect_payments
from billing.errors import NotFound, UserError
from billing.models import Payment
from billing.money import parse_amount
from resolvers.context import Context
from schema.relay import decode_id, decode_optional_id

if TYPE_CHECKING:
    from schema.redirect_payments import CompleteRedirectPaymentInput, StartRedirectPaymentInput


async def options(ctx: Context, customer_id: str) -> list[redirect_payments.Option]:
    return await ctx.read(
        lambda session: redirect_payments.options(
            session, ctx.viewer, decode_id(customer_id, "Customer", "customerId")
        )
    )


async def start(
    ctx: Context, input: StartRedirectPaymentInput
) -> redirect_payments.Started | UserError:
    """Several transactions of their own (the system is called between them), so not
    :meth:`Context.attempt`; a UserError comes back as a value as there."""
    try:
        customer = await ctx.read(
            lambda session: customers.get_customer(
                session, ctx.viewer, decode_id(input.customer_id, "Customer", "customerId")
            )
        )
        return await redirect_payments.start(
            ctx.transaction,
            ctx.viewer,
            customer.id,
            decode_id(input.processor_account_id, "ProcessorAccount", "processorAccountId"),
            None if input.amount is None else parse_amount(input.amount, customer.currency),
            decode_optional_id(input.invoice_id, "Invoice", "invoiceId"),
            input.idempotency_key,
        )
    except UserError as error:
        return _on_field(error, "customerId")


async def complete(ctx: Context, input: CompleteRedirectPaymentInput) -> Payment | UserError:
    try:
        return await redirect_payments.returned(
            ctx.transaction,
            ctx.viewer,
            decode_id(input.payment_id, "Payment", "paymentId"),
            dict(parse_qsl(input.query)),
        )
    except UserError as error:
        return _on_field(error, "paymentId")


def _on_field(error: UserError, id_field: str) -> UserError:
    """An unknown object is reported against the input field that named it."""
    if isinstance(error, NotFound) and error.field == "id":
        error.field = id_field
    return error
