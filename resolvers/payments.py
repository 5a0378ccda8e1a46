"""Payments: recorded by staff, made by card (pay an invoice, top up), refunded, voided."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import customers, invoices, payments
from billing.access import require_staff
from billing.errors import NotFound, UserError
from billing.models import Payment, PaymentChannel
from billing.money import parse_amount
from resolvers.context import Context
from schema.relay import decode_id, decode_optional_id

if TYPE_CHECKING:
    from schema.payments import (
        PayInvoiceInput,
        RecordPaymentInput,
        RefundPaymentInput,
        ReviewFlaggedPaymentInput,
        TopUpInput,
        VoidPaymentInput,
    )


def payment_list(
    ctx: Context,
    customer_id: str | None,
    method: PaymentChannel | None,
    received_from: datetime | None,
    received_to: datetime | None,
    flagged: bool | None = None,
    flag_reviewed: bool | None = None,
) -> Select[Any]:
    return payments.payment_query(
        ctx.viewer,
        customer_id=decode_optional_id(customer_id, "Customer", "customerId"),
        method=method,
        received_from=received_from,
        received_to=received_to,
        flagged=flagged,
        flag_reviewed=flag_reviewed,
    )


async def payment(ctx: Context, id: str) -> Payment | None:
    return await ctx.find(
        lambda session: payments.get_payment(session, ctx.viewer, decode_id(id, "Payment"))
    )


async def record_payment(ctx: Context, input: RecordPaymentInput) -> Payment | UserError:
    return await ctx.attempt(
        lambda session: payments.record_payment(
            session,
            ctx.viewer,
            decode_id(input.customer_id, "Customer", "customerId"),
            parse_amount(input.amount, input.currency),
            input.currency,
            input.method,
            input.idempotency_key,
            input.reference,
            input.received_at,
        ),
        id_field="customerId",
    )


async def refund_payment(ctx: Context, input: RefundPaymentInput) -> Payment | UserError:
    async def work(session: AsyncSession) -> Payment:
        payment_id = decode_id(input.payment_id, "Payment", "paymentId")
        amount = None
        if input.amount is not None:  # in the payment's own currency
            # Refused before the look-up, so a distributor hears FORBIDDEN for a payment it
            # recorded and for one it may not see alike.
            require_staff(ctx.viewer, write=True)
            found = await payments.get_payment(session, ctx.viewer, payment_id)
            amount = parse_amount(input.amount, found.currency)
        return await payments.refund_payment(
            session, ctx.viewer, payment_id, amount, input.idempotency_key, input.reason
        )

    return await ctx.attempt(work)


async def void_payment(ctx: Context, input: VoidPaymentInput) -> Payment | UserError:
    return await ctx.attempt(
        lambda session: payments.void_payment(
            session,
            ctx.viewer,
            decode_id(input.payment_id, "Payment", "paymentId"),
            input.reason,
        )
    )


async def review_flagged_payment(
    ctx: Context, input: ReviewFlaggedPaymentInput
) -> Payment | UserError:
    return await ctx.attempt(
        lambda session: payments.review_flag(
            session, ctx.viewer, decode_id(input.payment_id, "Payment", "paymentId"), input.note
        )
    )


async def pay_invoice(ctx: Context, input: PayInvoiceInput) -> Payment | UserError:
    """Charge a stored card for an invoice: what it still needs, unless an amount is given."""

    async def invoice() -> tuple[int, int, str]:
        found = await ctx.read(
            lambda session: invoices.get_invoice(
                session, ctx.viewer, decode_id(input.invoice_id, "Invoice", "invoiceId")
            )
        )
        return found.id, found.customer_id, found.currency

    async def charge() -> Payment:
        invoice_id, customer_id, currency = await invoice()
        return await payments.pay_with_payment_method(
            ctx.transaction,
            ctx.viewer,
            customer_id,
            None if input.amount is None else parse_amount(input.amount, currency),
            invoice_id,
            decode_optional_id(input.payment_method_id, "PaymentMethod", "paymentMethodId"),
            input.idempotency_key,
        )

    return await _card_payment(charge, "invoiceId")


async def top_up(ctx: Context, input: TopUpInput) -> Payment | UserError:
    """Charge a stored card for credit (which also pays the oldest open invoices)."""

    async def charge() -> Payment:
        customer = await ctx.read(
            lambda session: customers.get_customer(
                session, ctx.viewer, decode_id(input.customer_id, "Customer", "customerId")
            )
        )
        return await payments.pay_with_payment_method(
            ctx.transaction,
            ctx.viewer,
            customer.id,
            parse_amount(input.amount, customer.currency),
            None,
            decode_optional_id(input.payment_method_id, "PaymentMethod", "paymentMethodId"),
            input.idempotency_key,
        )

    return await _card_payment(charge, "customerId")


async def _card_payment(
    charge: Callable[[], Awaitable[Payment]], id_field: str
) -> Payment | UserError:
    """Run a card payment, which takes several transactions of its own (the processor is
    called between them, see :mod:`billing.card_charges`), so not :meth:`Context.attempt`;
    a UserError comes back as a value as there, with NOT_FOUND against ``id_field``."""
    try:
        return await charge()
    except UserError as error:
        if isinstance(error, NotFound) and error.field == "id":
            error.field = id_field
        return error
