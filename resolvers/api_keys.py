"""Partner API keys: who manages which is :mod:`billing.api_keys`; here ids are decoded and
each mutation runs in its own transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import api_keys
from billing.errors import UserError
from billing.models import ApiKey
from resolvers.context import Context
from schema.relay import decode_id, decode_optional_id

if TYPE_CHECKING:
    from schema.api_keys import CreateApiKeyInput, RevokeApiKeyInput


def key_list(ctx: Context, distributor_id: str | None) -> Select[Any]:
    """The keys the caller manages; a foreign ``distributorId`` lists none, as an unknown
    one does."""
    pk = decode_optional_id(distributor_id, "Distributor", "distributorId")
    return api_keys.key_query(ctx.viewer, pk)


async def create_key(ctx: Context, input: CreateApiKeyInput) -> tuple[ApiKey, str] | UserError:
    async def work(session: AsyncSession) -> tuple[ApiKey, str]:
        return await api_keys.create_key(
            session,
            ctx.viewer,
            input.name,
            input.scope,
            decode_optional_id(input.reseller_id, "Reseller", "resellerId"),
            decode_optional_id(input.distributor_id, "Distributor", "distributorId"),
        )

    return await ctx.attempt(work)


async def revoke_key(ctx: Context, input: RevokeApiKeyInput) -> ApiKey | UserError:
    return await ctx.attempt(
        lambda session: api_keys.revoke_key(session, ctx.viewer, decode_id(input.id, "ApiKey"))
    )
