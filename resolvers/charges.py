"""Charges posted to service accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Select

from billing import charges
from billing.errors import UserError
from billing.models import Charge
from billing.money import parse_amount
from resolvers.context import Context
from schema.relay import decode_id

if TYPE_CHECKING:
    from schema.charges import PostChargeInput


def charge_list(
    ctx: Context, customer_id: int | None, account_id: int | None, uninvoiced: bool | None
) -> Select[Any]:
    return charges.charge_query(
        ctx.viewer, customer_id=customer_id, account_id=account_id, uninvoiced=uninvoiced
    )


async def post_charge(ctx: Context, input: PostChargeInput) -> Charge | UserError:
    return await ctx.attempt(
        lambda session: charges.post_charge(
            session,
            ctx.viewer,
            charges.ChargeInput(
                account_id=decode_id(input.account_id, "Account", "accountId"),
                kind=input.kind,
                description=input.description,
                # Parsed in the currency the caller says; the service then insists it is
                # the customer's, so a EUR amount never lands on a USD customer.
                amount=parse_amount(input.amount, input.currency),
                currency=input.currency,
                idempotency_key=input.idempotency_key,
                service_at=input.service_at,
            ),
        ),
        id_field="accountId",
    )
