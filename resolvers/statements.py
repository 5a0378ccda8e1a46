"""A customer's statement: the ledger transactions on its book."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from billing import statements
from resolvers.context import Context


def statement_list(ctx: Context, customer_id: int) -> Select[*tuple[Any, ...]]:
    """The statement's rows for ``customer_id`` (already resolved, so already in scope)."""
    return statements.statement_query(ctx.viewer, customer_id)
