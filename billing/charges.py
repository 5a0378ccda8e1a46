"""Pre-rated charges (xDRs) posted to an account: subscription fees, usage, one-offs.

Posting a charge raises the customer's balance (customer book +, revenue −) in one ledger
transaction; the charge waits, uninvoiced, for the bill run to put it on an invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, idempotency, ledger, validation
from billing.access import Viewer, require_staff, visible
from billing.accounts import get_account_and_lock_customer
from billing.errors import NotFound, UserError
from billing.models import Account, Charge, ChargeKind, LedgerAccountKind, TransactionKind
from billing.money import validate_currency


@dataclass(frozen=True)
class ChargeInput:
    account_id: int
    kind: ChargeKind
    description: str
    amount: int
    currency: str
    idempotency_key: str
    service_at: datetime | None = None


async def post_charge(session: AsyncSession, viewer: Viewer, data: ChargeInput) -> Charge:
    """Post one charge; a replayed idempotency key returns the first charge unchanged."""
    require_staff(viewer, write=True)
    currency = validate_currency(data.currency)  # before the key's arguments: "usd" is USD
    arguments = {
        "account": data.account_id,
        "kind": data.kind.value,
        "description": data.description,
        "amount": data.amount,
        "currency": currency,
        "service_at": data.service_at.isoformat() if data.service_at else None,
    }
    scope = viewer.idempotency_scope
    previous = await idempotency.replay(session, scope, data.idempotency_key, "charge", arguments)
    if previous is not None:
        charge = await session.get(Charge, previous)
        assert charge is not None
        return charge
    now = await clock.now(session)  # read before the customer's lock: it needs none
    account, customer = await get_account_and_lock_customer(session, viewer, data.account_id)
    description = validation.required_text(data.description, "description", 500)
    if data.amount <= 0:
        raise UserError("AMOUNT_NOT_POSITIVE", "amount must be greater than zero", "amount")
    if currency != customer.currency:
        raise UserError(
            "CURRENCY_MISMATCH", f"the customer is billed in {customer.currency}", "currency"
        )
    service_at = data.service_at or now
    if service_at.tzinfo is None:
        raise UserError("INVALID_TIME", "serviceAt must include a UTC offset", "serviceAt")
    revenue = await ledger.system_book(
        session, LedgerAccountKind.REVENUE, customer.reseller_id, customer.currency
    )
    # The charge and its idempotency record are written inside the posting, before the
    # balances move: the revenue book, shared by every customer, is locked only from there
    # to the commit (see ledger.posting).
    async with ledger.posting(
        session,
        TransactionKind.CHARGE,
        [
            ledger.Posting(customer.ledger_account_id, data.amount, customer.currency, account.id),
            ledger.Posting(revenue, -data.amount, customer.currency, account.id),
        ],
        at=now,
        description=description,
        customer_id=customer.id,
    ) as txn:
        charge = Charge(
            customer_id=customer.id,
            account_id=account.id,
            account_number=account.number,
            kind=data.kind,
            description=description,
            amount=data.amount,
            currency=customer.currency,
            service_at=service_at,
            posted_at=now,
            transaction_id=txn.id,
        )
        session.add(charge)
        await session.flush()
        await idempotency.remember(
            session, scope, data.idempotency_key, "charge", arguments, charge.id, now
        )
    return charge


async def get_charge(session: AsyncSession, viewer: Viewer, charge_id: int) -> Charge:
    charge = await session.scalar(visible(Charge, viewer).where(Charge.id == charge_id))
    if charge is None:
        raise NotFound("charge")
    return charge


def charge_query(
    viewer: Viewer,
    *,
    customer_id: int | None = None,
    account_id: int | None = None,
    uninvoiced: bool | None = None,
) -> Select:  # type: ignore[type-arg]
    query = visible(Charge, viewer)
    if customer_id is not None:
        query = query.where(Charge.customer_id == customer_id)
    if account_id is not None:
        # Through the account's customer: the charges' index leads with the customer (an
        # index on account_id would cost every charge write for this one listing).
        owner = select(Account.customer_id).where(Account.id == account_id).scalar_subquery()
        query = query.where(Charge.customer_id == owner, Charge.account_id == account_id)
    if uninvoiced is True:
        query = query.where(Charge.invoice_id.is_(None))
    elif uninvoiced is False:
        query = query.where(Charge.invoice_id.is_not(None))
    return query
