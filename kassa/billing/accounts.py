"""Service accounts (a phone number, a line, a subscription) that belong to a customer."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from kassa.billing import clock, validation
from kassa.billing.access import Viewer, require_staff, visible
from kassa.billing.customers import get_customer, post_opening_balance
from kassa.billing.errors import NotFound, UserError
from kassa.billing.models import Account, AccountStatus


async def get_account(session: AsyncSession, viewer: Viewer, account_id: int) -> Account:
    account = await session.scalar(visible(Account, viewer).where(Account.id == account_id))
    if account is None:
        raise NotFound("account")
    return account


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
) -> Account:
    require_staff(viewer, write=True)
    customer = await get_customer(session, viewer, customer_id)
    number = validation.required_text(number, "number", 64)
    product = validation.required_text(product, "product", 200)
    if await _number_taken(session, number):
        raise UserError("DUPLICATE_ACCOUNT", f"account {number} already exists", "number")
    now = await clock.now(session)
    account = Account(customer_id=customer.id, number=number, product=product,
                      status=AccountStatus.ACTIVE, created_at=now)
    session.add(account)
    await session.flush()
    if opening_balance:
        await post_opening_balance(session, customer, opening_balance, now, account.id)
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
