"""Invoices: reading, closing a period out of turn, voiding."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select

from billing import invoices
from billing.errors import UserError
from billing.models import Invoice, InvoiceStatus, Payment
from resolvers import invoice_pdf_links
from resolvers.context import Context
from schema.relay import decode_id, decode_optional_id

if TYPE_CHECKING:
    from schema.invoices import (
        ApproveInvoicesInput,
        ClosePeriodOutOfTurnInput,
        VoidInvoiceInput,
        VoidInvoicesInput,
    )


async def invoice(ctx: Context, id: str) -> Invoice | None:
    return await ctx.find(
        lambda session: invoices.get_invoice(session, ctx.viewer, decode_id(id, "Invoice"))
    )


def invoice_list(
    ctx: Context,
    customer_id: str | None,
    status: InvoiceStatus | None,
    issued_from: date | None,
    issued_to: date | None,
) -> Select[Any]:
    return invoices.invoice_query(
        ctx.viewer,
        decode_optional_id(customer_id, "Customer", "customerId"),
        status,
        issued_from,
        issued_to,
    )


async def invoice_payments(ctx: Context, invoice_id: int) -> list[tuple[Payment, int]]:
    """The payments on an invoice the caller has already been shown, with the amount each."""
    return await ctx.read(lambda session: invoices.payments_for_invoice(session, invoice_id))


def pdf_url(ctx: Context, invoice_id: int) -> str:
    """A fresh signed link to the PDF of an invoice the caller has already been shown."""
    return invoice_pdf_links.invoice_pdf_url(ctx.settings, invoice_id)


async def close_period_out_of_turn(
    ctx: Context, input: ClosePeriodOutOfTurnInput
) -> Invoice | UserError:
    return await ctx.attempt(
        lambda session: invoices.close_period_out_of_turn(
            session, ctx.viewer, decode_id(input.customer_id, "Customer", "customerId")
        ),
        id_field="customerId",
    )


async def void_invoice(ctx: Context, input: VoidInvoiceInput) -> Invoice | UserError:
    return await ctx.attempt(
        lambda session: invoices.void_invoice(
            session, ctx.viewer, decode_id(input.id, "Invoice"), input.reason
        )
    )


def _invoice_ids(ids: Sequence[str]) -> list[int]:
    return [decode_id(gid, "Invoice", "ids") for gid in ids]


async def approve_invoices(ctx: Context, input: ApproveInvoicesInput) -> list[Invoice] | UserError:
    return await ctx.attempt(
        lambda session: invoices.approve_invoices(session, ctx.viewer, _invoice_ids(input.ids)),
        id_field="ids",
    )


async def void_invoices(ctx: Context, input: VoidInvoicesInput) -> list[Invoice] | UserError:
    return await ctx.attempt(
        lambda session: invoices.void_invoices(
            session, ctx.viewer, _invoice_ids(input.ids), input.reason
        ),
        id_field="ids",
    )
