"""Pre-rated charges (subscription fees, usage, one-offs) on service accounts."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from billing import models
from billing.errors import UserError
from resolvers import charges as resolve
from resolvers.context import Info
from schema.errors import UserErrorType, user_errors
from schema.money import Money
from schema.permissions import IsAuthenticated
from schema.relay import Connection, encode_id, paginate

if TYPE_CHECKING:
    from schema.accounts import Account

# The billing enums are the API's enums: registered here, then used as they are.
strawberry.enum(models.ChargeKind)
strawberry.enum(models.ChargeStatus)


@strawberry.type
class Charge:
    id: strawberry.ID
    kind: models.ChargeKind
    description: str
    amount: Money
    service_at: datetime = strawberry.field(description="When the service was used.")
    posted_at: datetime
    status: models.ChargeStatus
    invoiced: bool
    account_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.Charge) -> Charge:
        return cls(
            id=encode_id("Charge", row.id),
            kind=row.kind,
            description=row.description,
            amount=Money.of(row.amount, row.currency),
            service_at=row.service_at,
            posted_at=row.posted_at,
            status=row.status,
            invoiced=row.invoice_id is not None,
            account_id=row.account_id,
        )

    @strawberry.field
    async def account(self, info: Info) -> Annotated[Account, strawberry.lazy("schema.accounts")]:
        from schema.accounts import Account  # a cycle: accounts list their charges

        row = await info.context.loaders.accounts.load(self.account_id)
        assert row is not None  # charges are never deleted, nor are their accounts
        return Account.from_model(row)


async def charge_connection(
    info: Info,
    first: int | None,
    after: str | None,
    *,
    customer_id: int | None = None,
    account_id: int | None = None,
    uninvoiced: bool | None = None,
) -> Connection[Charge]:
    """The charges of a customer or an account, as a page (used by both types)."""
    query = resolve.charge_list(info.context, customer_id, account_id, uninvoiced)
    return await paginate(info, query, models.Charge.id, first, after, Charge.from_model)


@strawberry.input
class PostChargeInput:
    account_id: strawberry.ID
    description: str
    amount: str = strawberry.field(description="Decimal amount, greater than zero.")
    currency: str = strawberry.field(description="Must be the customer's currency.")
    idempotency_key: str = strawberry.field(
        description="A replay with the same key returns the first charge; other arguments "
        "with the same key are refused."
    )
    kind: models.ChargeKind = models.ChargeKind.ONE_OFF
    service_at: datetime | None = strawberry.field(
        default=None, description="When the service was used; now if unset."
    )


@strawberry.type
class ChargePayload:
    charge: Charge | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, result: models.Charge | UserError) -> ChargePayload:
        if isinstance(result, UserError):
            return cls(errors=user_errors(result))
        return cls(charge=Charge.from_model(result))


@strawberry.type
class ChargeMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def post_charge(self, info: Info, input: PostChargeInput) -> ChargePayload:
        return ChargePayload.of(await resolve.post_charge(info.context, input))
