"""Stored cards: add (tokenized by the processor), remove, choose the default, list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from billing import payment_methods
from billing.errors import UserError
from billing.models import PaymentMethod
from billing.processing import CardDetails
from resolvers.context import Context
from schema.relay import decode_id

if TYPE_CHECKING:
    from schema.payment_methods import (
        AddPaymentMethodInput,
        AdoptPaymentMethodInput,
        RemovePaymentMethodInput,
        SetDefaultPaymentMethodInput,
    )


async def payment_methods_for(ctx: Context, customer_id: int) -> list[PaymentMethod]:
    return await ctx.read(
        lambda session: payment_methods.payment_methods_for(session, ctx.viewer, customer_id)
    )


async def add_payment_method(
    ctx: Context, input: AddPaymentMethodInput
) -> PaymentMethod | UserError:
    """The card details go straight to the processor; only its token comes back to us."""
    card = CardDetails(
        number=input.card_number,
        exp_month=input.exp_month,
        exp_year=input.exp_year,
        cvc=input.cvc,
        holder=input.holder,
    )
    return await ctx.attempt(
        lambda session: payment_methods.add_card(
            session,
            ctx.viewer,
            decode_id(input.customer_id, "Customer", "customerId"),
            card,
            input.make_default,
        ),
        id_field="customerId",
    )


async def card_form(ctx: Context, customer_id: int) -> payment_methods.CardForm:
    return await ctx.read(
        lambda session: payment_methods.card_form(session, ctx.viewer, customer_id)
    )


async def adopt_payment_method(
    ctx: Context, input: AdoptPaymentMethodInput
) -> PaymentMethod | UserError:
    """Only the processor's browser token comes in: the card number never reached us."""
    return await ctx.attempt(
        lambda session: payment_methods.adopt(
            session,
            ctx.viewer,
            decode_id(input.customer_id, "Customer", "customerId"),
            input.client_token,
            input.make_default,
        ),
        id_field="customerId",
    )


async def remove_payment_method(
    ctx: Context, input: RemovePaymentMethodInput
) -> PaymentMethod | UserError:
    return await ctx.attempt(
        lambda session: payment_methods.remove_payment_method(
            session, ctx.viewer, decode_id(input.id, "PaymentMethod")
        )
    )


async def set_default_payment_method(
    ctx: Context, input: SetDefaultPaymentMethodInput
) -> PaymentMethod | UserError:
    return await ctx.attempt(
        lambda session: payment_methods.set_default_payment_method(
            session, ctx.viewer, decode_id(input.id, "PaymentMethod")
        )
    )
