"""A customer's statement: every ledger transaction that moved its balance, and by how much.

Why a query of its own rather than a list of charges and payments: the ledger is the one
record of every movement (charges, payments, refunds, voids, opening balances, reversals),
so a statement read from it always adds up to the balance, whatever kinds of movement are
added later.  A transaction's amount here is the net of its entries on the customer's own
book (a voided invoice posts one entry per account): positive raised what the customer owes,
negative lowered it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select

from billing.access import Viewer, acts_for_customer, scope_customers
from billing.errors import Forbidden
from billing.models import Customer, LedgerEntry, LedgerTransaction


def statement_query(viewer: Viewer, customer_id: int) -> Select[*tuple[Any, ...]]:
    """The transactions on ``customer_id``'s book, one row each: ``id``, ``kind``,
    ``description``, ``created_at``, ``amount`` (minor units) and ``currency``.

    Unordered: callers page it by ``LedgerTransaction.id`` (newest first).  A customer the
    viewer does not see gives no rows; a viewer who sees the customer but may not act for it
    (a distributor, who sees its customers but not their money's every movement, as with
    their cards) is refused with :class:`~billing.errors.Forbidden`.
    """
    if not acts_for_customer(viewer, customer_id):
        raise Forbidden("only the customer or an administrator may see its ledger")
    query = (
        select(
            LedgerTransaction.id,
            LedgerTransaction.kind,
            LedgerTransaction.description,
            LedgerTransaction.created_at,
            func.sum(LedgerEntry.amount).label("amount"),
            Customer.currency,
        )
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(Customer, Customer.ledger_account_id == LedgerEntry.ledger_account_id)
        .where(Customer.id == customer_id)
        .group_by(
            LedgerTransaction.id,
            LedgerTransaction.kind,
            LedgerTransaction.description,
            LedgerTransaction.created_at,
            Customer.currency,
        )
    )
    return scope_customers(query, viewer)
