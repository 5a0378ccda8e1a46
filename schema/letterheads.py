"""Letterheads: who an invoice is from, as its PDF prints it and a portal's header shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from billing.errors import UserError
from billing.letterheads import LetterheadDetails
from resolvers import letterheads as resolve
from resolvers.context import Info
from schema.errors import UserErrorType, user_errors
from schema.permissions import IsAuthenticated
from schema.relay import encode_id


@strawberry.type(
    description="What an owner of customers (the provider, or a reseller) prints at the head "
    "of its customers' invoices and shows in its portal's header. An owner that has set none "
    "has its name alone."
)
class Letterhead:
    reseller_id: strawberry.ID | None = strawberry.field(
        description="The reseller whose letterhead this is; null for the provider's."
    )
    name: str
    address: str | None = strawberry.field(description="One line per line of the address.")
    tax_id: str | None
    email: str | None
    phone: str | None
    website: str | None
    payment_instructions: str | None = strawberry.field(
        description="How to pay; printed on invoices with something still due."
    )
    updated_at: datetime | None = strawberry.field(description="Null until first set.")

    @classmethod
    def of(cls, details: LetterheadDetails) -> Letterhead:
        return cls(
            reseller_id=None
            if details.reseller_id is None
            else encode_id("Reseller", details.reseller_id),
            name=details.name,
            address=details.address,
            tax_id=details.tax_id,
            email=details.email,
            phone=details.phone,
            website=details.website,
            payment_instructions=details.payment_instructions,
            updated_at=details.updated_at,
        )


@strawberry.input(
    description="Every detail is replaced: one left out (or null) is no longer printed."
)
class SetLetterheadInput:
    reseller_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Whose letterhead: a reseller (the provider's administrators only). "
        "Omitted: your own — the provider's for its staff, a reseller's for its staff.",
    )
    name: str
    address: str | None = strawberry.field(default=None, description="At most 5 lines.")
    tax_id: str | None = None
    email: str | None = None
    phone: str | None = None
    website: str | None = None
    payment_instructions: str | None = strawberry.field(
        default=None, description="At most 10 lines."
    )


@strawberry.type
class LetterheadPayload:
    letterhead: Letterhead | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class LetterheadQueries:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="The letterhead on your invoices (your reseller's, or the provider's), "
        "or, for the provider's staff, any reseller's.",
    )
    async def letterhead(
        self,
        info: Info,
        reseller_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Omitted: the letterhead of whoever bills you."),
        ] = None,
    ) -> Letterhead | None:
        found = await resolve.letterhead(info.context, reseller_id)
        return None if found is None else Letterhead.of(found)


@strawberry.type
class LetterheadMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Set the provider's or a reseller's letterhead (administrators; a "
        "reseller's only its own). Its invoice PDFs are drawn again with it.",
    )
    async def set_letterhead(self, info: Info, input: SetLetterheadInput) -> LetterheadPayload:
        result = await resolve.set_letterhead(info.context, input)
        if isinstance(result, UserError):
            return LetterheadPayload(errors=user_errors(result))
        return LetterheadPayload(letterhead=Letterhead.of(result))
