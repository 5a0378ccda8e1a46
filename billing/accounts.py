"""Service accounts (a phone number, a line, a subscription) that belong to a customer."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, idempotency, validation
from billing.access import Viewer, require_staff, require_write, visible
from billing.customers import (
    get_customer,
    post_opening_balance,
    require_distributor_sells_credit,
)
from billing.errors import NotFound, UserError
from billing.models import Account, AccountStatus, Customer, Role


async def get_account(session: AsyncSession, viewer: Viewer, account_id: int) -> Account:
    account = await session.scalar(visible(Account, viewer).where(Account.id == account_id))
    if account is None:
        raise NotFound("account")
    return account


async def get_account_and_lock_customer(
    session: AsyncSession, viewer: Viewer, account_id: int
) -> tuple[Account, Customer]:
    """The account and its customer, the customer's row locked to the end of the transaction
    and read afresh, as :func:`billing.customers.get_customer_for_update` leaves it — in one
    statement, for writes that start from an account (a charge: one of its few statements).
    NOT_FOUND for an account the viewer may not see."""
    query = visible(Account, viewer).add_columns(Customer).where(Account.id == account_id)
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        query = query.with_for_update(of=Customer)
    found = (await session.execute(query.execution_options(populate_existing=True))).one_or_none()
    if found is None:
        raise NotFound("account")
    account, customer = found
    return account, customer


def account_query(viewer: Viewer, customer_id: int | None = None) -> Select:  # type: ignore[type-arg]
    query = visible(Account, viewer)
    if customer_id is not None:
        query = query.where(Account.customer_id == customer_id)
    return query


async def _number_taken(session: AsyncSession, number: str) -> bool:
    return await session.scalar(select(Account.id).where(Account.number == number)) is not None


async def create_account(
    session: AsyncSession,
    viewer: Viewer,
    customer_id: int,
    number: str,
    product: str,
    opening_balance: int | None = None,
    idempotency_key: str | None = None,
) -> Account:
    """Open an account; with ``idempotency_key`` (required with an opening balance) a replay
    returns the account the first call made.

    A distributor opens accounts for its own customers, with the number typed in (there is
    no number inventory), and opening credit it sold books its sales commission.
    """
    if viewer.role == Role.DISTRIBUTOR:
        require_write(viewer)
    else:
        require_staff(viewer, write=True)
    idempotency.require_for_money(idempotency_key, opening_balance, "openingBalance")
    require_distributor_sells_credit(viewer, opening_balance)
    arguments = {
        "customer": customer_id,
        "number": number,
        "product": product,
        "opening_balance": opening_balance,
    }
    if idempotency_key:
        previous = await idempotency.replay(
            session, viewer.idempotency_scope, idempotency_key, "create_account", arguments
        )
        if previous is not None:
            return await get_account(session, viewer, previous)
    customer = await get_customer(session, viewer, customer_id)
    number = validation.required_text(number, "number", 64)
    product = validation.required_text(product, "product", 200)
    if await _number_taken(session, number):
        raise UserError("DUPLICATE_ACCOUNT", f"account {number} already exists", "number")
    now = await clock.now(session)
    account = Account(
        customer_id=customer.id,
        number=number,
        product=product,
        status=AccountStatus.ACTIVE,
        created_at=now,
    )
    session.add(account)
    await session.flush()
    if opening_balance:
        await post_opening_balance(session, customer, opening_balance, now, account.id)
    if idempotency_key:
        await idempotency.remember(
            session,
            viewer.idempotency_scope,
            idempotency_key,
            "create_account",
            arguments,
            account.id,
            now,
        )
    return account


async def update_account(
    session: AsyncSession,
    viewer: Viewer,
    account_id: int,
    product: str | None = None,
    status: AccountStatus | None = None,
    number: str | None = None,
) -> Account:
    require_staff(viewer, write=True)
    account = await get_account(session, viewer, account_id)
    if product is not None:
        account.product = validation.required_text(product, "product", 200)
    if status is not None:
        account.status = status
    if number is not None:
        number = validation.required_text(number, "number", 64)
        if number != account.number and await _number_taken(session, number):
            raise UserError("DUPLICATE_ACCOUNT", f"account {number} already exists", "number")
        account.number = number
    await session.flush()
    return account
