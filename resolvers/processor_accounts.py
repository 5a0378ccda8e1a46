"""Processor accounts: listing, creating, changing and disabling an owner's payment
systems, the processors installed, and a reseller's fallback to the provider's accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from billing import payment_systems, processor_accounts
from billing.access import require_staff
from billing.errors import UserError
from billing.models import ProcessorAccount
from billing.payment_systems import ProcessorInfo
from billing.processor_accounts import AccountDetails, AccountInput
from resolvers.context import Context
from schema.relay import decode_id, decode_optional_id

if TYPE_CHECKING:
    from schema.processor_accounts import (
        CreateProcessorAccountInput,
        DisableProcessorAccountInput,
        SetProcessorFallbackInput,
        UpdateProcessorAccountInput,
    )


async def processor_accounts_of(ctx: Context, reseller_id: str | None) -> list[AccountDetails]:
    """The accounts the caller administers (an unknown reseller: NOT_FOUND, so none)."""
    found = await ctx.find(
        lambda session: processor_accounts.list_accounts(
            session, ctx.viewer, decode_optional_id(reseller_id, "Reseller", "resellerId")
        )
    )
    return found or []


def installed_processors(ctx: Context) -> list[ProcessorInfo]:
    """What the registry finds (administrators: it says what the installation can do)."""
    require_staff(ctx.viewer)
    return payment_systems.catalog().installed()


def _input_of(
    input: CreateProcessorAccountInput | UpdateProcessorAccountInput,
) -> AccountInput:
    return AccountInput(
        name=input.name,
        processor=input.processor,
        mode=input.mode,
        credentials=None
        if input.credentials is None
        else {c.name: c.value for c in input.credentials},
        base_url=input.base_url,
        minimums=[(m.currency, m.amount) for m in input.minimums],
        method_kinds=list(input.method_kinds),
        enabled=input.enabled,
    )


async def create_processor_account(
    ctx: Context, input: CreateProcessorAccountInput
) -> AccountDetails | UserError:
    async def work(session: AsyncSession) -> AccountDetails:
        reseller_id = decode_optional_id(input.reseller_id, "Reseller", "resellerId")
        return await processor_accounts.create_account(
            session, ctx.viewer, _input_of(input), reseller_id
        )

    return await ctx.attempt(work)


async def update_processor_account(
    ctx: Context, input: UpdateProcessorAccountInput
) -> AccountDetails | UserError:
    async def work(session: AsyncSession) -> AccountDetails:
        account_id = decode_id(input.id, "ProcessorAccount")
        return await processor_accounts.update_account(
            session, ctx.viewer, account_id, _input_of(input)
        )

    return await ctx.attempt(work, "id")


async def disable_processor_account(
    ctx: Context, input: DisableProcessorAccountInput
) -> AccountDetails | UserError:
    return await ctx.attempt(
        lambda session: processor_accounts.disable_account(
            session, ctx.viewer, decode_id(input.id, "ProcessorAccount")
        ),
        "id",
    )


async def processor_fallback(ctx: Context, reseller_id: str | None) -> bool | None:
    return await ctx.find(
        lambda session: processor_accounts.fallback_of(
            session, ctx.viewer, decode_optional_id(reseller_id, "Reseller", "resellerId")
        )
    )


async def set_processor_fallback(
    ctx: Context, input: SetProcessorFallbackInput
) -> bool | UserError:
    return await ctx.attempt(
        lambda session: processor_accounts.set_fallback(
            session,
            ctx.viewer,
            decode_optional_id(input.reseller_id, "Reseller", "resellerId"),
            input.allowed,
        )
    )


async def account_name(ctx: Context, account_id: int) -> str | None:
    """The name of the processor account a payment went through (its name only)."""

    async def work(session: AsyncSession) -> str | None:
        account = await session.get(ProcessorAccount, account_id)
        return None if account is None else account.name

    return await ctx.read(work)
