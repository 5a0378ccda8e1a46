"""A distributor's invoices and billing problems, for whoever may see the distributor (the
caller reached it through ``distributor`` or ``viewer.distributor``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from billing import distributor_billing
from billing.models import Distributor, RunFailure
from resolvers.context import Context


def invoice_list(ctx: Context, row: Distributor) -> Select[Any]:
    return distributor_billing.invoice_query(row)


async def billing_failure(ctx: Context, row: Distributor) -> RunFailure | None:
    """The open failure of its billing, for its administrators only (a distributor is
    invoiced when it is mended, and the words are for staff)."""
    if not ctx.viewer.is_staff:
        return None
    return await ctx.read(lambda session: distributor_billing.open_failure(session, row))
