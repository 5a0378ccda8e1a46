"""Exchange rates: what lets a distributor serve customers of another currency
(``docs/distributors.md``)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from billing import models
from billing.errors import UserError
from resolvers import exchange_rates as resolve
from resolvers.context import Info
from schema.errors import UserErrorType, user_errors
from schema.permissions import IsAuthenticated


@strawberry.type(
    description="One unit of `from` is worth `rate` units of `to`. A distributor in `to` "
    "may serve customers paying in `from`; their sales and collections convert at it."
)
class ExchangeRate:
    from_: str = strawberry.field(name="from")
    to: str
    rate: str = strawberry.field(description='An exact decimal, such as "1.0857".')
    updated_at: datetime

    @classmethod
    def from_model(cls, row: models.ExchangeRate) -> ExchangeRate:
        return cls(
            from_=row.from_currency, to=row.to_currency, rate=row.rate, updated_at=row.updated_at
        )


@strawberry.input
class SetExchangeRateInput:
    from_: str = strawberry.field(name="from", description="The customers' currency.")
    to: str = strawberry.field(description="The distributor's currency.")
    rate: str = strawberry.field(
        description="Greater than 0, below 1000000, at most 10 decimals (INVALID_RATE, "
        "OUT_OF_RANGE, TOO_MANY_DECIMALS); replaces the pair's rate if set."
    )


@strawberry.type
class ExchangeRatePayload:
    exchange_rate: ExchangeRate | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class ExchangeRateQueries:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Every exchange rate set, by currency pair; administrators only.",
    )
    async def exchange_rates(self, info: Info) -> list[ExchangeRate]:
        return [ExchangeRate.from_model(row) for row in await resolve.rates(info.context)]


@strawberry.type
class ExchangeRateMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Set the rate from one currency to another; the provider's "
        "administrators only (rates are installation-wide).",
    )
    async def set_exchange_rate(
        self, info: Info, input: SetExchangeRateInput
    ) -> ExchangeRatePayload:
        result = await resolve.set_rate(info.context, input)
        if isinstance(result, UserError):
            return ExchangeRatePayload(errors=user_errors(result))
        return ExchangeRatePayload(exchange_rate=ExchangeRate.from_model(result))
