"""Service accounts (a phone number, a line, a subscription) of a customer."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy import Row

from billing import models
from billing.errors import UserError
from resolvers import accounts as resolve
from resolvers.context import Info
from schema.charges import Charge, charge_connection
from schema.errors import UserErrorType, user_errors
from schema.permissions import IsAuthenticated, SeesBooks
from schema.relay import DEFAULT_PAGE_SIZE, Connection, encode_id

if TYPE_CHECKING:
    from schema.customers import Customer

# The billing enums are the API's enums: registered here, then used as they are.
strawberry.enum(models.AccountStatus)


@strawberry.type(description="A service account that charges are posted to.")
class Account:
    id: strawberry.ID
    number: str
    product: str
    status: models.AccountStatus
    created_at: datetime
    pk: strawberry.Private[int]
    customer_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.Account | Row[Any]) -> Account:
        """From the ORM object or a row of the account's columns (the dashboard's loader)."""
        return cls(
            id=encode_id("Account", row.id),
            number=row.number,
            product=row.product,
            status=row.status,
            created_at=row.created_at,
            pk=row.id,
            customer_id=row.customer_id,
        )

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated[Customer, strawberry.lazy("schema.customers")]:
        from schema.customers import Customer  # a cycle: customers list their accounts

        row = await info.context.loaders.customers.load(self.customer_id)
        assert row is not None  # an account never outlives its customer
        return Customer.from_model(row)

    @strawberry.field(
        description="Charges posted to this account, newest first.", permission_classes=[SeesBooks]
    )
    async def charges(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        uninvoiced: bool | None = None,
    ) -> Connection[Charge]:
        return await charge_connection(
            info, first, after, account_id=self.pk, uninvoiced=uninvoiced
        )


@strawberry.input
class CreateAccountInput:
    customer_id: strawberry.ID
    number: str = strawberry.field(description="Unique across the installation.")
    product: str
    opening_balance: str | None = strawberry.field(
        default=None, description="Decimal amount owed on this account from elsewhere."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Required with openingBalance (it moves money). A replay returns the first "
        "result; the same key with other arguments is refused (IDEMPOTENCY_KEY_REUSED).",
    )


@strawberry.input(description="Fields left out (or null) keep their value.")
class UpdateAccountInput:
    id: strawberry.ID
    number: str | None = None
    product: str | None = None
    status: models.AccountStatus | None = None


@strawberry.type
class AccountPayload:
    account: Account | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, result: models.Account | UserError) -> AccountPayload:
        if isinstance(result, UserError):
            return cls(errors=user_errors(result))
        return cls(account=Account.from_model(result))


@strawberry.type
class AccountQueries:
    @strawberry.field(permission_classes=[IsAuthenticated])
    async def account(self, info: Info, id: strawberry.ID) -> Account | None:
        row = await resolve.account(info.context, id)
        return None if row is None else Account.from_model(row)


@strawberry.type
class AccountMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def create_account(self, info: Info, input: CreateAccountInput) -> AccountPayload:
        return AccountPayload.of(await resolve.create_account(info.context, input))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def update_account(self, info: Info, input: UpdateAccountInput) -> AccountPayload:
        return AccountPayload.of(await resolve.update_account(info.context, input))
