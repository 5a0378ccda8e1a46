"""Exchange rates: set by the provider's administrators, read by administrators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from billing import exchange_rates
from billing.errors import UserError
from billing.models import ExchangeRate
from resolvers.context import Context

if TYPE_CHECKING:
    from schema.exchange_rates import SetExchangeRateInput


async def rates(ctx: Context) -> Sequence[ExchangeRate]:
    return await ctx.read(lambda session: exchange_rates.exchange_rates(session, ctx.viewer))


async def set_rate(ctx: Context, input: SetExchangeRateInput) -> ExchangeRate | UserError:
    return await ctx.attempt(
        lambda session: exchange_rates.set_exchange_rate(
            session, ctx.viewer, input.from_, input.to, input.rate
        )
    )
