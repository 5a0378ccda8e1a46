"""Test helpers: viewers for each role and rows made through the real services.

Shared by every test module; extend it (append) rather than writing private twins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, ledger
from billing.access import Viewer
from billing.accounts import create_account
from billing.charges import ChargeInput, post_charge
from billing.customers import CustomerInput, create_customer, create_reseller
from billing.db import Database
from billing.models import (
    Account,
    Charge,
    ChargeKind,
    Customer,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    LedgerAccount,
    Payment,
    PaymentChannel,
    Reseller,
    Role,
)
from billing.payments import record_payment
from billing.processing import CardDetails

#: A fixed instant tests can freeze the clock at (a Monday, mid-month, no DST change near).
T0 = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


def admin_viewer(reseller_id: int | None = None, user_id: int = 1) -> Viewer:
    """The provider's administrator (sees everything), or a reseller's administrator."""
    return Viewer(role=Role.ADMIN, user_id=user_id, reseller_id=reseller_id)


def reseller_viewer(reseller_id: int, user_id: int = 2) -> Viewer:
    return Viewer(role=Role.RESELLER, user_id=user_id, reseller_id=reseller_id)


def customer_viewer(customer_id: int, user_id: int = 3) -> Viewer:
    return Viewer(role=Role.CUSTOMER, user_id=user_id, customer_id=customer_id)


def distributor_viewer(distributor_id: int, user_id: int = 4) -> Viewer:
    return Viewer(role=Role.DISTRIBUTOR, user_id=user_id, distributor_id=distributor_id)


async def make_reseller(session: AsyncSession, name: str = "Reseller") -> Reseller:
    return await create_reseller(session, admin_viewer(), name, None)


async def make_customer(
    session: AsyncSession, viewer: Viewer | None = None, **fields: object
) -> Customer:
    """A customer made by ``create_customer``: USD, UTC, monthly unless ``fields`` say else."""
    data = CustomerInput(
        **{"name": "Ada Lovelace", "currency": "USD", "time_zone": "UTC", **fields}
    )  # type: ignore[arg-type]
    key = f"customer-{uuid4().hex}" if data.opening_balance else None
    return await create_customer(session, viewer or admin_viewer(), data, key)


async def make_account(
    session: AsyncSession,
    customer: Customer,
    viewer: Viewer | None = None,
    number: str | None = None,
    product: str = "Mobile",
) -> Account:
    return await create_account(
        session,
        viewer or admin_viewer(customer.reseller_id),
        customer.id,
        number or f"ACC-{uuid4().hex[:12]}",
        product,
    )


async def insert_invoice(
    session: AsyncSession,
    customer: Customer,
    total: int,
    issue_date: date,
    due_in_days: int = 14,
) -> Invoice:
    """An open invoice row written directly (no charges, no ledger), for settlement tests.

    Invoices move no money in the ledger, so this only gives payments something to settle.
    """
    invoice = Invoice(
        customer_id=customer.id,
        owner_key="test",
        number=f"T-{uuid4().hex[:12]}",
        kind=InvoiceKind.OUT_OF_TURN,
        currency=customer.currency,
        period_start=issue_date - timedelta(days=30),
        period_end=issue_date,
        issue_date=issue_date,
        due_date=issue_date + timedelta(days=due_in_days),
        previous_balance=0,
        payments_in_period=0,
        total=total,
        amount_paid=0,
        status=InvoiceStatus.UNPAID,
        created_at=datetime.now(UTC),
    )
    session.add(invoice)
    await session.flush()
    return invoice


# --- money: charges, cards, ledger health (payments tests) -----------------------------------

#: The simulator's test cards (Stripe's published numbers).
APPROVE = "4242424242424242"
DECLINE = "4000000000000002"
INSUFFICIENT = "4000000000009995"
TIMEOUT = "4000000000000119"


def card_details(number: str = APPROVE, cvc: str = "123") -> CardDetails:
    return CardDetails(number=number, exp_month=12, exp_year=2030, cvc=cvc, holder="Ada")


async def balance_of(session: AsyncSession, customer_id: int) -> int:
    """The customer's balance as stored now (not a possibly stale loaded object's)."""
    balance = await session.scalar(
        select(LedgerAccount.balance)
        .join(Customer, Customer.ledger_account_id == LedgerAccount.id)
        .where(Customer.id == customer_id)
    )
    assert balance is not None
    return balance


async def ledger_problems(session: AsyncSession) -> list[object]:
    """Cached balances that differ from their entries plus unbalanced transactions."""
    return [*await ledger.verify_balances(session), *await ledger.unbalanced_transactions(session)]


# --- invoicing: charges for a service time, cash payments (invoice and bill-run tests) -------


async def make_charge_at(
    session: AsyncSession,
    account: Account,
    amount: int,
    service_at: datetime,
    description: str = "Usage",
    viewer: Viewer | None = None,
    currency: str = "USD",
) -> Charge:
    """A usage charge through ``post_charge`` for a given service time (it decides the period)."""
    data = ChargeInput(
        account_id=account.id,
        kind=ChargeKind.USAGE,
        description=description,
        amount=amount,
        currency=currency,
        service_at=service_at,
        idempotency_key=f"charge-{uuid4().hex}",
    )
    return await post_charge(session, viewer or admin_viewer(), data)


async def pay_cash(
    session: AsyncSession,
    customer: Customer,
    amount: int,
    received_at: datetime | None = None,
    viewer: Viewer | None = None,
) -> Payment:
    """A cash payment through ``record_payment`` (booked, then settled oldest invoice first)."""
    return await record_payment(
        session,
        viewer or admin_viewer(customer.reseller_id),
        customer.id,
        amount,
        customer.currency,
        PaymentChannel.CASH,
        f"pay-{uuid4().hex}",
        received_at=received_at,
    )


@dataclass(frozen=True)
class Party:
    """A customer with one service account, as most money tests need."""

    customer: Customer
    account: Account

    @property
    def id(self) -> int:
        return self.customer.id


async def new_party(db: Database, **fields: object) -> Party:
    """A customer (``fields`` as for :func:`make_customer`) and an account, made in their own
    transaction with the clock frozen at :data:`T0` (unless a test froze it already)."""
    async with db.transaction() as session:
        if not await clock.is_frozen(session):
            await clock.freeze(session, T0)
        customer = await make_customer(session, **fields)
        account = await make_account(session, customer)
    return Party(customer, account)


async def freeze_clock(db: Database, at: datetime = T0) -> None:
    """Start the test clock at ``at``: "now" for every service until it is moved on."""
    async with db.transaction() as session:
        await clock.freeze(session, at)


async def invoices_of(db: Database, customer_id: int) -> list[Invoice]:
    """A customer's invoices, oldest first."""
    async with db.session() as session:
        return list(
            (
                await session.scalars(
                    select(Invoice).where(Invoice.customer_id == customer_id).order_by(Invoice.id)
                )
            ).all()
        )
