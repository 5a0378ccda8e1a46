"""The one set of factories for tests and benchmarks: viewers for each role, rows made
through the real services, people who can sign in, and bulk rows for benchmarks.

Shared by every test module, the browser tests and ``bench/``; extend it rather than writing
private twins.  Functions taking a ``session`` work inside the caller's transaction; those
taking a ``db`` commit a transaction of their own, as a separate request would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, invoices, ledger
from billing.access import Viewer
from billing.accounts import create_account
from billing.charges import ChargeInput, post_charge
from billing.collection import SettingsInput
from billing.customers import (
    CustomerInput,
    create_customer,
    create_customer_class,
    create_reseller,
)
from billing.db import Database
from billing.distributors import DistributorInput, create_distributor
from billing.models import (
    Account,
    Base,
    Charge,
    ChargeKind,
    Customer,
    CustomerClass,
    CustomerStatus,
    Distributor,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    LedgerAccount,
    LedgerAccountKind,
    Payment,
    PaymentChannel,
    PaymentMethod,
    Reseller,
    Role,
)
from billing.payment_methods import add_card
from billing.payments import record_payment
from billing.periods import BillingPeriod
from billing.processing import CardDetails
from billing.users import create_user

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


async def make_distributor(
    session: AsyncSession,
    name: str = "Kiosk",
    reseller_id: int | None = None,
    currency: str = "USD",
    **fields: Any,
) -> Distributor:
    """A distributor made by its owner's administrator (``fields``: :class:`DistributorInput`)."""
    return await create_distributor(
        session,
        admin_viewer(reseller_id),
        DistributorInput(name=name, currency=currency, **fields),
    )


async def make_customer(
    session: AsyncSession, viewer: Viewer | None = None, **fields: Any
) -> Customer:
    """A customer made by ``create_customer``: USD, UTC, monthly unless ``fields`` say else."""
    data = CustomerInput(
        **{"name": "Ada Lovelace", "currency": "USD", "time_zone": "UTC", **fields}
    )
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
        owner_key=ledger.system_owner_key(customer.reseller_id),
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


async def new_party(db: Database, account_number: str | None = None, **fields: Any) -> Party:
    """A customer (``fields`` as for :func:`make_customer`) and an account, made in their own
    transaction with the clock frozen at :data:`T0` (unless a test froze it already)."""
    async with db.transaction() as session:
        if not await clock.is_frozen(session):
            await clock.freeze(session, T0)
        customer = await make_customer(session, **fields)
        account = await make_account(session, customer, number=account_number)
    return Party(customer, account)


async def post_usage(
    db: Database, party: Party, amount: int, service_at: datetime, description: str = "Usage"
) -> Charge:
    """:func:`make_charge_at` on the party's account, in a transaction of its own."""
    async with db.transaction() as session:
        return await make_charge_at(session, party.account, amount, service_at, description)


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


# --- people who sign in (portal, browser and API tests) --------------------------------------

#: Every test user's password: long enough for the password rules, and plainly a test value.
PASSWORD = "correct horse battery staple"
CUSTOMER_EMAIL = "ada@example.com"
ADMIN_EMAIL = "admin@kassa.test"


@dataclass(frozen=True)
class Login(Party):
    """A customer with one service account, and the e-mail address its portal user signs in
    with (the password is :data:`PASSWORD`)."""

    email: str


async def user_with_login(db: Database, email: str, role: Role, **links: int | None) -> str:
    """A user of ``role`` made by ``create_user`` (``links``: its reseller, customer or
    distributor); returns the e-mail address to sign in with, with :data:`PASSWORD`."""
    async with db.transaction() as session:
        await create_user(session, email, PASSWORD, role, **links)
    return email


async def customer_with_login(db: Database, email: str = CUSTOMER_EMAIL, **fields: Any) -> Login:
    """A customer (``fields`` as for :func:`make_customer`) with one account, and a CUSTOMER
    user for it who signs in with ``email``."""
    party = await new_party(db, email=email, **fields)
    await user_with_login(db, email, Role.CUSTOMER, customer_id=party.id)
    return Login(party.customer, party.account, email)


async def admin_with_login(
    db: Database, email: str = ADMIN_EMAIL, reseller_id: int | None = None
) -> str:
    """An administrator of the provider (sees every customer) or of ``reseller_id``; returns
    the e-mail address to sign in with."""
    return await user_with_login(db, email, Role.ADMIN, reseller_id=reseller_id)


# --- cards, invoices, cash and classes, each in a transaction of its own ---------------------


async def store_card(
    db: Database,
    party: Party,
    number: str = APPROVE,
    make_default: bool = False,
    viewer: Viewer | None = None,
) -> PaymentMethod:
    """A card stored through ``add_card`` (the simulator tokenizes it) by ``viewer`` (the
    provider's administrator unless given), for tests whose subject is not the card form."""
    async with db.transaction() as session:
        return await add_card(
            session, viewer or admin_viewer(), party.id, card_details(number), make_default
        )


#: When :func:`issue_invoice`'s charges were used: the day before :data:`T0`.
DAY_BEFORE_T0 = T0 - timedelta(days=1)


async def issue_invoice(
    db: Database,
    party: Party,
    *amounts: int,
    description: str = "Usage",
    service_at: datetime = DAY_BEFORE_T0,
) -> Invoice:
    """A real invoice: one usage charge per amount (minor units) posted through
    ``post_charge`` for ``service_at``, then the period closed out of turn (at "now")."""
    async with db.transaction() as session:
        for amount in amounts:
            await make_charge_at(session, party.account, amount, service_at, description)
        return await invoices.close_period_out_of_turn(session, admin_viewer(), party.id)


async def settle_in_cash(db: Database, party: Party, amount: int) -> Payment:
    """Cash at the counter (:func:`pay_cash`), settled against the oldest open invoice first."""
    async with db.transaction() as session:
        return await pay_cash(session, party.customer, amount)


async def make_customer_class(
    session: AsyncSession,
    name: str = "Collected",
    payment_terms_days: int = 14,
    grace_period_days: int = 7,
    issue_empty_invoices: bool = False,
    **out_of_turn: Any,
) -> CustomerClass:
    """A provider's class whose out-of-turn invoices (what :func:`issue_invoice` makes) are
    collected as ``out_of_turn`` says (fields of ``SettingsInput``: card charging, attempts,
    review)."""
    settings = {InvoiceKind.OUT_OF_TURN: SettingsInput(**out_of_turn)}
    return await create_customer_class(
        session,
        admin_viewer(),
        name,
        payment_terms_days,
        grace_period_days,
        settings,
        issue_empty_invoices=issue_empty_invoices,
    )


async def customer_class(db: Database, name: str = "Collected", **fields: Any) -> int:
    """:func:`make_customer_class` in a transaction of its own; returns the class's id."""
    async with db.transaction() as session:
        return (await make_customer_class(session, name, **fields)).id


# --- bulk rows for benchmarks ----------------------------------------------------------------
# Core inserts, not the services: seeding a hundred thousand customers is not what a
# benchmark measures.  Ids are given, so related rows can name each other.

#: Rows per INSERT statement and per transaction.
BULK_CHUNK = 5000


async def insert_rows(db: Database, table: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """``rows`` into ``table``, :data:`BULK_CHUNK` at a time, each chunk committed."""
    for start in range(0, len(rows), BULK_CHUNK):
        async with db.transaction() as session:
            await session.execute(insert(table), rows[start : start + BULK_CHUNK])


async def insert_customers(
    db: Database,
    ids: range,
    period_start: date,
    next_bill_at: datetime,
    created_at: datetime,
    balance: Callable[[int], int] = lambda _: 0,
    email: Callable[[int], str | None] = lambda _: None,
    **columns: Any,
) -> None:
    """Active monthly USD customers ``ids`` in UTC, each with the ledger account of the same
    id holding ``balance(id)`` and the address ``email(id)``; ``columns`` set other customer
    columns for all of them."""
    await insert_rows(
        db,
        LedgerAccount,
        [
            {
                "id": i,
                "kind": LedgerAccountKind.CUSTOMER,
                "owner_key": f"customer:{i}",
                "currency": "USD",
                "balance": balance(i),
            }
            for i in ids
        ],
    )
    defaults = {
        "currency": "USD",
        "time_zone": "UTC",
        "billing_period": BillingPeriod.MONTHLY,
        "billing_anchor": period_start,
        "period_start": period_start,
        "next_bill_at": next_bill_at,
        "credit_limit": 0,
        "status": CustomerStatus.ACTIVE,
        "auto_payment": False,
        "created_at": created_at,
        "updated_at": created_at,
        **columns,
    }
    await insert_rows(
        db,
        Customer,
        [
            {
                **defaults,
                "id": i,
                "name": f"Customer {i}",
                "email": email(i),
                "ledger_account_id": i,
            }
            for i in ids
        ],
    )
