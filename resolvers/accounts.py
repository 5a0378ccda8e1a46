"""Service accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from billing import accounts, customers
from billing.errors import UserError
from billing.models import Account
from billing.money import parse_amount
from resolvers.context import Context
from schema.relay import decode_id

if TYPE_CHECKING:
    from schema.accounts import CreateAccountInput, UpdateAccountInput


async def account(ctx: Context, id: str) -> Account | None:
    return await ctx.find(
        lambda session: accounts.get_account(session, ctx.viewer, decode_id(id, "Account"))
    )


async def create_account(ctx: Context, input: CreateAccountInput) -> Account | UserError:
    async def work(session: AsyncSession) -> Account:
        customer_id = decode_id(input.customer_id, "Customer", "customerId")
        opening_balance = None
        if input.opening_balance is not None:
            customer = await customers.get_customer(session, ctx.viewer, customer_id)
            opening_balance = parse_amount(
                input.opening_balance, customer.currency, "openingBalance"
            )
        return await accounts.create_account(
            session,
            ctx.viewer,
            customer_id,
            input.number,
            input.product,
            opening_balance,
            input.idempotency_key,
        )

    return await ctx.attempt(work, id_field="customerId")


async def update_account(ctx: Context, input: UpdateAccountInput) -> Account | UserError:
    return await ctx.attempt(
        lambda session: accounts.update_account(
            session,
            ctx.viewer,
            decode_id(input.id, "Account"),
            product=input.product,
            status=input.status,
            number=input.number,
        )
    )
