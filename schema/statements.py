"""A customer's statement: the ledger transactions that moved its balance."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from billing import models
from resolvers import statements as resolve
from resolvers.context import Info
from schema.money import Money
from schema.relay import Connection, encode_id, paginate

# The billing enum is the API's enum: registered here, then used as it is.
strawberry.enum(models.TransactionKind, name="LedgerTransactionKind")


@strawberry.type(description="One movement of the customer's balance, as the ledger holds it.")
class LedgerTransaction:
    id: strawberry.ID
    kind: models.TransactionKind
    description: str
    created_at: datetime
    amount: Money = strawberry.field(
        description="What it did to the balance: positive raised what the customer owes "
        "(a charge), negative lowered it (a payment)."
    )

    @classmethod
    def from_row(cls, row: Any) -> LedgerTransaction:
        """From a row of :func:`billing.statements.statement_query`."""
        return cls(
            id=encode_id("LedgerTransaction", row.id),
            kind=row.kind,
            description=row.description,
            created_at=row.created_at,
            amount=Money.of(int(row.amount), row.currency),
        )


async def ledger_transaction_connection(
    info: Info, first: int | None, after: str | None, customer_id: int
) -> Connection[LedgerTransaction]:
    """A page of the customer's statement, newest first."""
    query = resolve.statement_list(info.context, customer_id)
    return await paginate(
        info,
        query,
        models.LedgerTransaction.id,
        first,
        after,
        LedgerTransaction.from_row,
        whole_rows=True,
    )
