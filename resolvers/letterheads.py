"""Letterheads: the one the caller's invoices carry, and setting an owner's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from billing import letterheads
from billing.errors import UserError
from billing.letterheads import LetterheadDetails, LetterheadInput
from resolvers.context import Context
from schema.relay import decode_optional_id

if TYPE_CHECKING:
    from schema.letterheads import SetLetterheadInput


async def letterhead(ctx: Context, reseller_id: str | None) -> LetterheadDetails | None:
    """None for a reseller out of the caller's scope (or none at all)."""
    return await ctx.find(
        lambda session: letterheads.get_letterhead(
            session, ctx.viewer, decode_optional_id(reseller_id, "Reseller", "resellerId")
        )
    )


async def set_letterhead(ctx: Context, input: SetLetterheadInput) -> LetterheadDetails | UserError:
    async def work(session: AsyncSession) -> LetterheadDetails:
        data = LetterheadInput(
            name=input.name,
            address=input.address,
            tax_id=input.tax_id,
            email=input.email,
            phone=input.phone,
            website=input.website,
            payment_instructions=input.payment_instructions,
        )
        reseller_id = decode_optional_id(input.reseller_id, "Reseller", "resellerId")
        return await letterheads.set_letterhead(session, ctx.viewer, data, reseller_id)

    return await ctx.attempt(work)
