"""The demo provider that ``make run`` loads: a few months of believable history.

It is made through the real services and the test clock, exactly as a user would make it:
customers are created four months back, charges are posted month by month, the clock is
advanced so the bill run closes each period, and customers pay (or do not) in different
ways, which leaves invoices in every status.  Loading twice changes nothing but the API key
(a key's secret can only be shown once, so each run makes a new one).

The test clock is left frozen at the moment the demo was loaded: move it on with the
``advanceTestClock`` mutation to see bill runs and overdue marking happen.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from kassa.billing import api_keys, clock, jobs, users
from kassa.billing.access import Viewer
from kassa.billing.accounts import account_query, create_account
from kassa.billing.charges import ChargeInput, post_charge
from kassa.billing.customers import CustomerInput, create_customer, create_customer_class
from kassa.billing.collection import SettingsInput
from kassa.billing.invoices import close_period_out_of_turn, invoice_query, void_invoice
from kassa.billing.models import (
    ApiKeyScope,
    BillingPeriodKind,
    CardCharging,
    ChargeKind,
    Customer,
    Distributor,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    PaymentMethodKind,
    Role,
)
from kassa.billing.payment_methods import add_card
from kassa.billing.payments import pay_with_payment_method, record_payment
from kassa.billing.processing import CardDetails
from kassa.db import Database

ADMIN_LOGIN = ("admin@kassa.demo", "demo-admin-pass")
CUSTOMER_PASSWORD = "demo-customer-pass"
DISTRIBUTOR_LOGIN = ("distributor@kassa.demo", "demo-distributor-pass")
MONTHS_OF_HISTORY = 4
ADMIN = Viewer(role=Role.ADMIN, user_id=0)

#: name, e-mail, time zone, currency, class, plan fee (minor units), how the customer pays
PEOPLE: list[tuple[str, str, str, str, str, int, str]] = [
    ("Ada Lovelace", "ada@example.com", "Europe/London", "USD", "Residential", 2999, "card"),
    ("Alan Turing", "alan@example.com", "Europe/London", "USD", "Residential", 1999, "wire"),
    ("Grace Hopper", "grace@example.com", "America/New_York", "USD", "Business", 9900, "wire"),
    ("Edsger Dijkstra", "edsger@example.com", "Europe/Amsterdam", "EUR", "Residential", 2500,
     "partial"),
    ("Barbara Liskov", "barbara@example.com", "America/New_York", "USD", "Business", 14900,
     "card"),
    ("Donald Knuth", "donald@example.com", "America/Los_Angeles", "USD", "Residential", 2999,
     "never"),
    ("Margaret Hamilton", "margaret@example.com", "America/Chicago", "USD", "Business", 7900,
     "cash"),
    ("Chinua Achebe", "chinua@example.com", "Africa/Lagos", "NGN", "Residential", 750000,
     "cash"),
    ("Ngozi Okonjo", "ngozi@example.com", "Africa/Lagos", "NGN", "Business", 2500000, "partial"),
    ("Linus Torvalds", "linus@example.com", "Europe/Helsinki", "EUR", "Residential", 1500,
     "wire"),
    ("Yukihiro Matsumoto", "matz@example.com", "Asia/Tokyo", "USD", "Residential", 3900,
     "card"),
    ("Guido van Rossum", "guido@example.com", "Europe/Amsterdam", "EUR", "Business", 8900,
     "never"),
    ("Frances Allen", "frances@example.com", "America/New_York", "USD", "Residential", 2499,
     "cash"),
    ("John Backus", "john@example.com", "America/Denver", "USD", "Residential", 1999, "late"),
    ("Radia Perlman", "radia@example.com", "America/New_York", "USD", "Business", 12900,
     "wire"),
    ("Tim Berners-Lee", "tim@example.com", "Europe/London", "USD", "Residential", 2999,
     "partial"),
    ("Hedy Lamarr", "hedy@example.com", "Europe/Vienna", "EUR", "Residential", 1900, "card"),
    ("Katherine Johnson", "katherine@example.com", "America/New_York", "USD", "Residential",
     2999, "late"),
    ("Ken Thompson", "ken@example.com", "America/Los_Angeles", "USD", "Business", 4900, "cash"),
    ("Sophie Wilson", "sophie@example.com", "Europe/London", "USD", "Residential", 2299,
     "wire"),
]
PERIODS = [BillingPeriodKind.MONTHLY, BillingPeriodKind.MONTHLY_ANNIVERSARY]


async def _already_loaded(db: Database) -> bool:
    async with db.session() as session:
        return await users.get_user_by_email(session, ADMIN_LOGIN[0]) is not None


async def _new_api_key(db: Database) -> str:
    async with db.transaction() as session:
        _, token = await api_keys.create_api_key(session, "demo partner", ApiKeyScope.READ_WRITE)
    return token


def _logins() -> list[tuple[str, str, str]]:
    return [
        ("administrator", *ADMIN_LOGIN),
        ("customer", PEOPLE[0][1], CUSTOMER_PASSWORD),
        ("distributor", *DISTRIBUTOR_LOGIN),
    ]


async def _create_parties(session: AsyncSession) -> list[Customer]:
    classes = {
        # Residential cards are charged on the due date, again 3 days later if declined.
        "Residential": await create_customer_class(
            session, ADMIN, "Residential", 14, 7, {InvoiceKind.REGULAR: SettingsInput(
                card_charging=CardCharging.ON_DUE_DATE, attempt_days_after_due=[0, 3])}),
        # Invoices closed early for business customers wait for an administrator's review.
        "Business": await create_customer_class(
            session, ADMIN, "Business", 30, 10,
            {InvoiceKind.OUT_OF_TURN: SettingsInput(review=True)}),
    }
    distributor = Distributor(name="Corner Shop Distribution", email=DISTRIBUTOR_LOGIN[0],
                              currency="USD", time_zone="America/New_York",
                              commission_rate="0.05")
    session.add(distributor)
    await session.flush()
    await users.create_user(session, *ADMIN_LOGIN, Role.ADMIN)
    await users.create_user(session, *DISTRIBUTOR_LOGIN, Role.DISTRIBUTOR,
                            distributor_id=distributor.id)
    customers = []
    for index, (name, email, zone, currency, cls, _, _) in enumerate(PEOPLE):
        customer = await create_customer(session, ADMIN, CustomerInput(
            name=name, email=email, phone=f"+1 555 {1000 + index}", currency=currency,
            time_zone=zone, billing_period=PERIODS[index % 7 == 3],
            class_id=classes[cls].id, credit_limit=50000 if currency != "NGN" else 5000000,
            distributor_id=distributor.id if currency == "USD" and index % 5 == 2 else None,
            auto_payment=PEOPLE[index][6] == "card",
        ))
        for line in range(1 + index % 2):
            await create_account(session, ADMIN, customer.id, f"+1555{index:03d}{line:04d}",
                                 "Mobile unlimited" if line == 0 else "Home fibre 500")
        if PEOPLE[index][6] == "card":
            await add_card(session, ADMIN, customer.id, CardDetails(
                number="4242424242424242", exp_month=12, exp_year=2031, cvc="123",
                holder=name))
        customers.append(customer)
    await users.create_user(session, PEOPLE[0][1], CUSTOMER_PASSWORD, Role.CUSTOMER,
                            customer_id=customers[0].id)
    return customers


async def _post_month(session: AsyncSession, customers: list[Customer], month: int,
                      at: datetime) -> None:
    for index, customer in enumerate(customers):
        fee = PEOPLE[index][5]
        accounts = (await session.scalars(account_query(ADMIN, customer.id))).all()
        for account in accounts:
            charges = [(ChargeKind.SUBSCRIPTION, f"{account.product}, monthly fee", fee)]
            if (index + month) % 3 == 0:
                charges.append((ChargeKind.USAGE, "Roaming data 1.2 GB", fee // 4 + 117))
            if (index + month) % 5 == 1:
                charges.append((ChargeKind.ONE_OFF, "Late installation visit", fee // 2))
            for n, (kind, text, amount) in enumerate(charges):
                await post_charge(session, ADMIN, ChargeInput(
                    account_id=account.id, kind=kind, description=text, amount=amount,
                    currency=customer.currency, service_at=at,
                    idempotency_key=f"demo-{account.id}-{month}-{n}"))


async def _pay_open_invoices(session: AsyncSession, customers: list[Customer], month: int
                             ) -> None:
    for index, customer in enumerate(customers):
        style = PEOPLE[index][6]
        open_invoices = (await session.scalars(
            invoice_query(ADMIN, customer_id=customer.id)
            .where(Invoice.status.in_([InvoiceStatus.UNPAID, InvoiceStatus.OVERDUE]))
        )).all()
        for invoice in open_invoices:
            key = f"demo-pay-{invoice.id}-{month}"
            if style == "card":
                await pay_with_payment_method(session, ADMIN, customer.id, None, invoice.id,
                                              None, key)
            elif style in ("wire", "cash") or (style == "late" and month % 2 == 0):
                method = PaymentMethodKind.WIRE if style == "wire" else PaymentMethodKind.CASH
                await record_payment(session, ADMIN, customer.id, invoice.outstanding,
                                     customer.currency, method, key, reference="demo")
            elif style == "partial" and invoice.outstanding > 1:
                await record_payment(session, ADMIN, customer.id, invoice.outstanding // 2,
                                     customer.currency, PaymentMethodKind.CHEQUE, key,
                                     reference=f"cheque {1000 + invoice.id}")


async def load_demo(db: Database) -> tuple[list[tuple[str, str, str]], str]:
    """Load the demo once; return the logins (role, e-mail, password) and a fresh API key."""
    if await _already_loaded(db):
        return _logins(), await _new_api_key(db)
    real_now = clock.wall_now().replace(microsecond=0)
    start = (real_now - timedelta(days=31 * MONTHS_OF_HISTORY)).replace(
        day=1, hour=9, minute=0, second=0, tzinfo=UTC)
    async with db.transaction() as session:
        await clock.freeze(session, start)
        customers = await _create_parties(session)
    for month in range(MONTHS_OF_HISTORY):
        at = start + timedelta(days=31 * month + 3)
        if at >= real_now:
            break
        await jobs.advance_clock(db, at)
        async with db.transaction() as session:
            await _post_month(session, customers, month, at)
        await jobs.advance_clock(db, min(at + timedelta(days=20), real_now))
        async with db.transaction() as session:
            await _pay_open_invoices(session, customers, month)
    await jobs.advance_clock(db, real_now)
    async with db.transaction() as session:
        # The newest invoices are not due yet: paying them now leaves some PARTIALLY_PAID.
        await _pay_open_invoices(session, customers, MONTHS_OF_HISTORY)
        paid = (await session.scalars(
            invoice_query(ADMIN, customer_id=customers[1].id)
            .where(Invoice.status == InvoiceStatus.PAID).order_by(Invoice.id))).first()
        if paid is not None:
            await void_invoice(session, ADMIN, paid.id, "Billed twice by mistake (demo)")
        # A business customer's early invoice, waiting in PENDING_REVIEW for approval.
        reviewed = customers[2]
        [account] = (await session.scalars(account_query(ADMIN, reviewed.id))).all()
        await post_charge(session, ADMIN, ChargeInput(
            account_id=account.id, kind=ChargeKind.ONE_OFF, description="Router upgrade",
            amount=12900, currency=reviewed.currency, idempotency_key="demo-review"))
        await close_period_out_of_turn(session, ADMIN, reviewed.id)
    return _logins(), await _new_api_key(db)
