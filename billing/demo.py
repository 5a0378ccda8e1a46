"""The demo provider that ``make run`` loads: a few months of believable history.

It is made through the real services and the test clock, exactly as a user would make it:
customers are created four months back, charges are posted month by month, the clock is
advanced so the bill run closes each period, and customers pay (or do not) in different
ways.  Loading twice changes nothing but the API key (a key's secret can only be shown once,
so each run makes a new one).

The history is laid out on whole calendar months counted back from the month it is loaded
in (:func:`demo_plan`), never on "N days ago", so the demo is the same whichever day it is
loaded: every customer is charged in every past month, and the demo customer signs in to
one invoice that is overdue, one partly paid and one still open.

The history is made on the frozen test clock; then the clock is left running with wall time
from the moment the demo was loaded, so work scheduled for later happens by itself (a card
payment that timed out is settled minutes later).  ``advanceTestClock`` still jumps it
forward to show bill runs and overdue marking, and can freeze it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import api_keys, bitcoin_payments, clock, gateway_billing, jobs, payment_systems, users
from billing.access import Viewer
from billing.accounts import account_query, create_account
from billing.bitcoin import SeenOutput, WatchedAddress
from billing.bitcoin_addresses import addresses_of, request_address
from billing.bitcoin_wallets import WalletInput, set_wallet
from billing.card_charges import within
from billing.charges import ChargeInput, post_charge
from billing.collection import SettingsInput
from billing.customers import (
    CustomerInput,
    create_customer,
    create_customer_class,
    create_reseller,
)
from billing.db import Database
from billing.distributors import (
    DistributorInput,
    create_distributor,
    record_distributor_payment,
)
from billing.invoices import close_period_out_of_turn, invoice_query, void_invoice
from billing.letterheads import LetterheadInput, set_letterhead
from billing.models import (
    ApiKeyScope,
    CardCharging,
    ChargeKind,
    Customer,
    Distributor,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    PaymentChannel,
    ProcessorAccount,
    Role,
)
from billing.payment_methods import add_card
from billing.payment_systems import MethodKind
from billing.payments import pay_with_payment_method, record_payment
from billing.periods import BillingPeriod, local_date, local_midnight_utc
from billing.processing import CardDetails
from billing.processor_accounts import AccountInput
from billing.processor_accounts import create_account as create_processor_account
from billing.processor_accounts import disable_account as disable_processor_account
from billing.processor_accounts import list_accounts as list_processor_accounts

ADMIN_LOGIN = ("admin@kassa.demo", "demo-admin-pass")
CUSTOMER_PASSWORD = "demo-customer-pass"
DISTRIBUTOR_LOGIN = ("distributor@kassa.demo", "demo-distributor-pass")
MONTHS_OF_HISTORY = 4
ADMIN = Viewer(role=Role.ADMIN, user_id=0)

#: name, e-mail, time zone, currency, class, plan fee (minor units), how the customer pays:
#: "auto" leaves regular invoices to auto-payment, "card" pays by card, "wire"/"cash" in full,
#: "partial" by cheque for half, "late" every other month, "never" not at all.
PEOPLE: list[tuple[str, str, str, str, str, int, str]] = [
    ("Ada Lovelace", "ada@example.com", "Europe/London", "USD", "Residential", 2999, "auto"),
    ("Alan Turing", "alan@example.com", "Europe/London", "USD", "Residential", 1999, "wire"),
    ("Grace Hopper", "grace@example.com", "America/New_York", "USD", "Business", 9900, "wire"),
    (
        "Edsger Dijkstra",
        "edsger@example.com",
        "Europe/Amsterdam",
        "EUR",
        "Residential",
        2500,
        "partial",
    ),
    ("Barbara Liskov", "barbara@example.com", "America/New_York", "USD", "Business", 14900, "card"),
    (
        "Donald Knuth",
        "donald@example.com",
        "America/Los_Angeles",
        "USD",
        "Residential",
        2999,
        "never",
    ),
    (
        "Margaret Hamilton",
        "margaret@example.com",
        "America/Chicago",
        "USD",
        "Business",
        7900,
        "cash",
    ),
    ("Chinua Achebe", "chinua@example.com", "Africa/Lagos", "NGN", "Residential", 750000, "cash"),
    ("Ngozi Okonjo", "ngozi@example.com", "Africa/Lagos", "NGN", "Business", 2500000, "partial"),
    ("Linus Torvalds", "linus@example.com", "Europe/Helsinki", "EUR", "Residential", 1500, "wire"),
    ("Yukihiro Matsumoto", "matz@example.com", "Asia/Tokyo", "USD", "Residential", 3900, "card"),
    ("Guido van Rossum", "guido@example.com", "Europe/Amsterdam", "EUR", "Business", 8900, "never"),
    (
        "Frances Allen",
        "frances@example.com",
        "America/New_York",
        "USD",
        "Residential",
        2499,
        "cash",
    ),
    ("John Backus", "john@example.com", "America/Denver", "USD", "Residential", 1999, "late"),
    ("Radia Perlman", "radia@example.com", "America/New_York", "USD", "Business", 12900, "wire"),
    ("Tim Berners-Lee", "tim@example.com", "Europe/London", "USD", "Residential", 2999, "partial"),
    ("Hedy Lamarr", "hedy@example.com", "Europe/Vienna", "EUR", "Residential", 1900, "card"),
    (
        "Katherine Johnson",
        "katherine@example.com",
        "America/New_York",
        "USD",
        "Residential",
        2999,
        "late",
    ),
    ("Ken Thompson", "ken@example.com", "America/Los_Angeles", "USD", "Business", 4900, "cash"),
    ("Sophie Wilson", "sophie@example.com", "Europe/London", "USD", "Residential", 2299, "wire"),
]
PERIODS = [BillingPeriod.MONTHLY, BillingPeriod.MONTHLY_ANNIVERSARY]

DISTRIBUTOR_NAME = "Corner Shop Distribution"
DISTRIBUTOR_ZONE = "America/New_York"
#: The customers the demo distributor signs up itself, in its own currency: name, the
#: number of their line (typed in: there is no number stock), and the credit it sold them
#: (cents; 0: postpaid).  Anniversary periods, so none closes before the demo's "now".
DISTRIBUTOR_SIGNUPS: list[tuple[str, str, int]] = [
    ("Amaka Obi", "+2348035550101", 2000),
    ("Bola Ade", "+2348035550102", 1000),
    ("Chidi Eze", "+2348035550103", 0),
]
#: Cash the distributor then takes from them (cents), and what it hands the provider.
DISTRIBUTOR_COLLECTIONS: list[tuple[str, int]] = [("Bola Ade", 500), ("Chidi Eze", 1500)]
DISTRIBUTOR_PAYMENT_TO_PROVIDER = 3000


async def _already_loaded(db: Database) -> bool:
    async with db.session() as session:
        return await users.get_user_by_email(session, ADMIN_LOGIN[0]) is not None


async def _new_api_key(db: Database) -> str:
    async with db.transaction() as session:
        _, token = await api_keys.create_api_key(session, "demo partner", ApiKeyScope.READ_WRITE)
    return token


#: A customer billed in naira signs in too (Payarena and Remita take NGN only).
NAIRA_LOGIN = "ngozi@example.com"


def _logins() -> list[tuple[str, str, str]]:
    return [
        ("administrator", *ADMIN_LOGIN),
        ("customer", PEOPLE[0][1], CUSTOMER_PASSWORD),
        ("customer", NAIRA_LOGIN, CUSTOMER_PASSWORD),
        ("distributor", *DISTRIBUTOR_LOGIN),
    ]


async def _create_parties(session: AsyncSession) -> list[Customer]:
    classes = {
        # Residential cards are charged on the due date, again 3 days later if declined.
        # Invoices closed early (one-off work) leave 60 days' grace before suspension.
        "Residential": await create_customer_class(
            session,
            ADMIN,
            "Residential",
            14,
            7,
            {
                InvoiceKind.REGULAR: SettingsInput(
                    card_charging=CardCharging.ON_DUE_DATE, attempt_days_after_due=[0, 3]
                ),
                InvoiceKind.OUT_OF_TURN: SettingsInput(grace_period_days=60),
            },
        ),
        # Invoices closed early for business customers wait for an administrator's review.
        "Business": await create_customer_class(
            session,
            ADMIN,
            "Business",
            30,
            10,
            {InvoiceKind.OUT_OF_TURN: SettingsInput(review=True)},
        ),
    }
    distributor = await create_distributor(
        session,
        ADMIN,
        DistributorInput(
            name=DISTRIBUTOR_NAME,
            accounting_email=DISTRIBUTOR_LOGIN[0],
            currency="USD",
            time_zone=DISTRIBUTOR_ZONE,
            credit_limit=50000,
            sales_commission_bps=1000,
            payment_commission_bps=500,
        ),
    )
    await users.create_user(session, *ADMIN_LOGIN, Role.ADMIN)
    await users.create_user(
        session, *DISTRIBUTOR_LOGIN, Role.DISTRIBUTOR, distributor_id=distributor.id
    )
    customers = []
    for index, (name, email, zone, currency, cls, _, _) in enumerate(PEOPLE):
        customer = await create_customer(
            session,
            ADMIN,
            CustomerInput(
                name=name,
                email=email,
                phone=f"+1 555 {1000 + index}",
                currency=currency,
                time_zone=zone,
                billing_period=PERIODS[index % 7 == 3],
                class_id=classes[cls].id,
                credit_limit=50000 if currency != "NGN" else 5000000,
                distributor_id=distributor.id if currency == "USD" and index % 5 == 2 else None,
                auto_payment=PEOPLE[index][6] in ("auto", "card"),
            ),
        )
        for line in range(1 + index % 2):
            await create_account(
                session,
                ADMIN,
                customer.id,
                f"+1555{index:03d}{line:04d}",
                "Mobile unlimited" if line == 0 else "Home fibre 500",
            )
        if PEOPLE[index][6] in ("auto", "card"):
            await add_card(
                session,
                ADMIN,
                customer.id,
                CardDetails(
                    number="4242424242424242", exp_month=12, exp_year=2031, cvc="123", holder=name
                ),
            )
        customers.append(customer)
    for email in (PEOPLE[0][1], NAIRA_LOGIN):
        [customer] = [c for c in customers if c.email == email]
        await users.create_user(
            session, email, CUSTOMER_PASSWORD, Role.CUSTOMER, customer_id=customer.id
        )
    return customers


async def _post_month(session: AsyncSession, customers: list[Customer], month: int) -> None:
    """Every customer's charges for history month ``month`` (0 = the oldest), dated now."""
    at = await clock.now(session)
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
                await post_charge(
                    session,
                    ADMIN,
                    ChargeInput(
                        account_id=account.id,
                        kind=kind,
                        description=text,
                        amount=amount,
                        currency=customer.currency,
                        service_at=at,
                        idempotency_key=f"demo-{account.id}-{month}-{n}",
                    ),
                )


async def _pay_open_invoices(session: AsyncSession, customers: list[Customer], month: int) -> None:
    """Each customer settles what is open now in their own way (see :data:`PEOPLE`)."""
    for index, customer in enumerate(customers):
        style = PEOPLE[index][6]
        open_invoices = (
            await session.scalars(
                invoice_query(ADMIN, customer_id=customer.id).where(
                    Invoice.status.in_([InvoiceStatus.UNPAID, InvoiceStatus.OVERDUE])
                )
            )
        ).all()
        for invoice in open_invoices:
            # A payment made for an earlier invoice in this loop may have settled this one
            # too (credit goes to the oldest open invoice first): pay what is left, if any.
            await session.refresh(invoice)
            if invoice.outstanding <= 0:
                continue
            key = f"demo-pay-{invoice.id}-{month}"
            if style == "card":
                await pay_with_payment_method(
                    within(session), ADMIN, customer.id, None, invoice.id, None, key
                )
            elif style in ("wire", "cash") or (style == "late" and month % 2 == 0):
                method = PaymentChannel.WIRE if style == "wire" else PaymentChannel.CASH
                await record_payment(
                    session,
                    ADMIN,
                    customer.id,
                    invoice.outstanding,
                    customer.currency,
                    method,
                    key,
                    reference="demo",
                )
            elif style == "partial" and invoice.outstanding > 1:
                await record_payment(
                    session,
                    ADMIN,
                    customer.id,
                    invoice.outstanding // 2,
                    customer.currency,
                    PaymentChannel.CHEQUE,
                    key,
                    reference=f"cheque {1000 + invoice.id}",
                )


async def _invoice_at_once(
    session: AsyncSession, customer: Customer, kind: ChargeKind, description: str, amount: int
) -> Invoice:
    """Charge ``customer``'s first account and close the period out of turn straight away."""
    account = (await session.scalars(account_query(ADMIN, customer.id))).first()
    assert account is not None
    await post_charge(
        session,
        ADMIN,
        ChargeInput(
            account_id=account.id,
            kind=kind,
            description=description,
            amount=amount,
            currency=customer.currency,
            idempotency_key=f"demo-{description}",
        ),
    )
    return await close_period_out_of_turn(session, ADMIN, customer.id)


async def _demo_customer_overdue(session: AsyncSession, customers: list[Customer]) -> None:
    """A visit invoiced on its own a month ago, never paid: OVERDUE (its 60 days' grace keep
    the line active)."""
    await _invoice_at_once(session, customers[0], ChargeKind.ONE_OFF, "Installation visit", 4900)


async def _demo_customer_partly_paid(session: AsyncSession, customers: list[Customer]) -> None:
    """A router invoiced today, half of it paid by card: PARTIALLY_PAID."""
    ada = customers[0]
    invoice = await _invoice_at_once(session, ada, ChargeKind.ONE_OFF, "Router replacement", 6900)
    await pay_with_payment_method(
        within(session),
        ADMIN,
        ada.id,
        invoice.outstanding // 2,
        invoice.id,
        None,
        f"demo-pay-{invoice.id}",
    )


async def _demo_customer_open(session: AsyncSession, customers: list[Customer]) -> None:
    """A roaming pack invoiced an hour ago: UNPAID, the one the demo customer pays first."""
    await _invoice_at_once(session, customers[0], ChargeKind.USAGE, "Roaming pack 5 GB", 1500)


async def _finishing_touches(session: AsyncSession, customers: list[Customer]) -> None:
    """A voided invoice and an early invoice waiting in PENDING_REVIEW."""
    paid = (
        await session.scalars(
            invoice_query(ADMIN, customer_id=customers[1].id)
            .where(Invoice.status == InvoiceStatus.PAID)
            .order_by(Invoice.id)
        )
    ).first()
    assert paid is not None, "the wire customer pays every month"
    await void_invoice(session, ADMIN, paid.id, "Billed twice by mistake (demo)")
    reviewed = customers[2]
    [account] = (await session.scalars(account_query(ADMIN, reviewed.id))).all()
    await post_charge(
        session,
        ADMIN,
        ChargeInput(
            account_id=account.id,
            kind=ChargeKind.ONE_OFF,
            description="Router upgrade",
            amount=12900,
            currency=reviewed.currency,
            idempotency_key="demo-review",
        ),
    )
    await close_period_out_of_turn(session, ADMIN, reviewed.id)


async def _distributor_viewer(session: AsyncSession) -> tuple[Viewer, Distributor]:
    """The demo distributor, and the viewer its portal login acts as."""
    distributor = await session.scalar(
        select(Distributor).where(Distributor.name == DISTRIBUTOR_NAME)
    )
    user = await users.get_user_by_email(session, DISTRIBUTOR_LOGIN[0])
    assert distributor is not None and user is not None
    return Viewer(
        role=Role.DISTRIBUTOR, user_id=user.id, distributor_id=distributor.id
    ), distributor


async def _distributor_sells(session: AsyncSession, customers: list[Customer]) -> None:
    """The distributor signs up customers of its own, as in its portal: two prepaid with
    credit it sold (a sale each, at its sales commission), one postpaid."""
    viewer, distributor = await _distributor_viewer(session)
    for name, number, credit in DISTRIBUTOR_SIGNUPS:
        customer = await create_customer(
            session,
            viewer,
            CustomerInput(
                name=name,
                phone=number,
                currency=distributor.currency,
                time_zone="Africa/Lagos",
                billing_period=BillingPeriod.MONTHLY_ANNIVERSARY,
                opening_balance=-credit if credit else None,
            ),
            f"demo-signup-{number}" if credit else None,
        )
        await create_account(session, viewer, customer.id, number, "Mobile prepaid")


async def _distributor_collects(session: AsyncSession, customers: list[Customer]) -> None:
    """The distributor takes cash from two of its customers (collections, at its payment
    commission) and hands part of what it owes to the provider."""
    viewer, distributor = await _distributor_viewer(session)
    for name, amount in DISTRIBUTOR_COLLECTIONS:
        customer = await session.scalar(
            select(Customer).where(Customer.distributor_id == distributor.id, Customer.name == name)
        )
        assert customer is not None
        await record_payment(
            session,
            viewer,
            customer.id,
            amount,
            customer.currency,
            PaymentChannel.CASH,
            f"demo-collect-{customer.id}",
            reference=f"receipt {customer.id:04d}",
        )
    await record_distributor_payment(
        session,
        ADMIN,
        distributor.id,
        DISTRIBUTOR_PAYMENT_TO_PROVIDER,
        "demo-distributor-payment",
        reference="cash handed in",
    )


Step = Callable[[AsyncSession, list[Customer]], Awaitable[None]]


@dataclass(frozen=True)
class OnDatabase:
    """A step that opens its own transactions (the bitcoin scan does, per customer)."""

    run: Callable[[Database, list[Customer], datetime], Awaitable[None]]


@dataclass(frozen=True)
class DemoPlan:
    """When the demo's customers are created, and each later step with the instant it runs."""

    start: datetime
    steps: list[tuple[datetime, Step | OnDatabase]]
    #: When the bitcoin scan job first runs: just after the load, by the server's watcher.
    first_scan: datetime


# --- bitcoin ---------------------------------------------------------------------------------

#: The demo provider's wallet: the account key of BIP84's published test mnemonic
#: ("abandon … about"), on testnet — a key whose coins nobody keeps, as a demo's must be.
DEMO_BITCOIN_KEY = "vpub5YvMuJNjRSYon44z9QmCfdf8SqJRVNvz6m55Qy5iVjZQxDfUgtiQjnc7CC1fAbED2tAGCZRERUfvtn2DstZGU6HMns6dXXH2wujSc2wfi2x"
#: The fixed price of one bitcoin in the demo's currencies.
DEMO_BITCOIN_RATES = [("USD", "65000.00"), ("EUR", "60000.00"), ("GBP", "52000.00")]
#: The demo customer's bitcoin payments, in satoshi: 0.0005 BTC (32.50 USD) confirmed and
#: credited, 0.00023456 BTC (15.25 USD) still waiting for its confirmation.
DEMO_BITCOIN_CREDITED = 50_000
DEMO_BITCOIN_PENDING = 23_456
#: Their transaction ids: fixed, so the demo is the same on every load.
DEMO_BITCOIN_TXIDS = (
    hashlib.sha256(b"kassa-demo-bitcoin-credited").hexdigest(),
    hashlib.sha256(b"kassa-demo-bitcoin-pending").hexdigest(),
)


@dataclass
class DemoChain:
    """The chain as the demo tells it (a :class:`billing.bitcoin.ChainWatcher`): what it was
    told was paid, with its confirmations.  ``kassa serve`` with the fake watcher later
    rebuilds the same transactions on its fake chain from the recorded payments."""

    seen: list[SeenOutput]

    async def outputs(self, addresses: Sequence[WatchedAddress]) -> list[SeenOutput]:
        watched = {a.address for a in addresses}
        return [output for output in self.seen if output.address in watched]

    async def confirmations(self, txid: str) -> int | None:
        return next((o.confirmations for o in self.seen if o.txid == txid), None)


async def _demo_address(db: Database, customers: list[Customer]) -> str:
    async with db.session() as session:
        address = await session.scalar(addresses_of([customers[0].id]).limit(1))
    assert address is not None, "the demo customer has a bitcoin address by now"
    return address.address


async def _demo_customer_bitcoin_credited(
    db: Database, customers: list[Customer], at: datetime
) -> None:
    """The provider takes bitcoin (testnet, fixed rates, one confirmation); the demo customer
    has an address and topped up 0.0005 BTC, confirmed and credited."""
    async with db.transaction() as session:
        await set_wallet(
            session, ADMIN, WalletInput(DEMO_BITCOIN_KEY, fixed_rates=DEMO_BITCOIN_RATES)
        )
        address = await request_address(session, ADMIN, customers[0].id)
    seen = SeenOutput(DEMO_BITCOIN_TXIDS[0], 0, address.address, DEMO_BITCOIN_CREDITED, 6)
    await bitcoin_payments.scan(db, at, DemoChain([seen]))


async def _demo_customer_bitcoin_pending(
    db: Database, customers: list[Customer], at: datetime
) -> None:
    """A second payment to the same address, in the mempool: pending until confirmed."""
    address = await _demo_address(db, customers)
    chain = DemoChain(
        [
            SeenOutput(DEMO_BITCOIN_TXIDS[0], 0, address, DEMO_BITCOIN_CREDITED, 6),
            SeenOutput(DEMO_BITCOIN_TXIDS[1], 0, address, DEMO_BITCOIN_PENDING, 0),
        ]
    )
    await bitcoin_payments.scan(db, at, chain)


def month_start(at: datetime, months_back: int) -> datetime:
    """Midnight UTC on the first of the month ``months_back`` months before ``at``'s."""
    index = at.year * 12 + at.month - 1 - months_back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def demo_plan(now: datetime) -> DemoPlan:
    """The demo's history for a load at ``now``, on whole months so any day gives the same.

    Month ``k`` (counted back from the current one) is charged on its 3rd (09:00 UTC: the
    3rd in every customer's zone) and paid on its 21st; the current month only once its
    3rd has passed.  The demo customer's three open invoices are dated from ``now``, so
    they are open, partly paid and overdue whatever the day.
    """
    steps: list[tuple[datetime, Step | OnDatabase]] = []
    for k in range(MONTHS_OF_HISTORY, -1, -1):
        month = MONTHS_OF_HISTORY - k
        charged_at = month_start(now, k) + timedelta(days=2, hours=9)
        paid_at = min(month_start(now, k) + timedelta(days=20), now - timedelta(hours=4))
        if charged_at > now - timedelta(hours=3):
            break
        steps.append((charged_at, partial(_post_month, month=month)))
        if paid_at > charged_at:
            steps.append((paid_at, partial(_pay_open_invoices, month=month)))
    # After last month's regular invoice, before last month's charges: only the visit.
    steps.append((month_start(now, 1) + timedelta(days=1, hours=9), _demo_customer_overdue))
    # Closing early takes every charge not yet invoiced, so both come after the demo
    # customer's last regular invoice: otherwise that invoice would be left empty.
    zone = PEOPLE[0][2]
    last_regular = local_midnight_utc(local_date(now, zone).replace(day=1), zone)
    steps.append((max(now - timedelta(hours=2), last_regular), _demo_customer_partly_paid))
    steps.append((max(now - timedelta(hours=1), last_regular), _demo_customer_open))
    steps.append((now, _finishing_touches))
    # The distributor's own business, within its current local month (its commission this
    # period then counts all of it, whatever the day): sales, then collections.
    its_month = local_midnight_utc(
        local_date(now, DISTRIBUTOR_ZONE).replace(day=1), DISTRIBUTOR_ZONE
    )
    steps.append((max(now - timedelta(hours=3), its_month), _distributor_sells))
    steps.append((max(now - timedelta(minutes=90), its_month), _distributor_collects))
    start = month_start(now, MONTHS_OF_HISTORY) + timedelta(days=1, hours=9)
    # Bitcoin: before the first charge a credited top-up (so no invoice's story changes),
    # and a payment still waiting for its confirmation from just before the load.
    steps.append((start + timedelta(hours=12), OnDatabase(_demo_customer_bitcoin_credited)))
    steps.append((now - timedelta(minutes=30), OnDatabase(_demo_customer_bitcoin_pending)))
    # Direct debit: on-boarded early enough that her invoice's schedule is settled and seen
    # by a poll before the load's "now".
    steps.append((now - DIRECT_DEBIT_BACK, OnDatabase(_direct_debit_customer)))
    steps.sort(key=lambda step: step[0])
    return DemoPlan(start=start, steps=steps, first_scan=now + bitcoin_payments.POLL_EVERY)


# --- payment systems --------------------------------------------------------------------------

#: The fakes' public test credentials (``processors/fakes``; served under ``/fakes/<name>`` by
#: ``KASSA_FAKE_PROCESSORS``), the demo's processor accounts are given: nothing here is secret.
#: ``{fakes}`` is the fakes' address under the configured public URL.  Each entry: the fake's
#: mount name (None: no fake), the account's name, its processor, whose it is, where its API
#: is (``{fakes}``-relative, None: not called), its credentials, and (currency, minimum) pairs.
DEMO_TERMINAL_SECRET = "demo-terminal-network-secret"
DEMO_RESELLER = "Corner Telecom"
PAYMENT_SYSTEMS: list[
    tuple[str | None, str, str, str, str | None, dict[str, str], list[tuple[str, str]]]
] = [
    (
        "stripe",
        "Stripe",
        "stripe",
        "provider",
        "{fakes}/stripe",
        {
            "secret_key": "sk_test_kassa_fake",
            "publishable_key": "pk_test_kassa_fake",
            "webhook_secret": "whsec_kassa_fake",
            "stripe_js_url": "{fakes}/stripe/v3/",
        },
        [("USD", "0.50"), ("EUR", "0.50")],
    ),
    (
        "authorize-net",
        "Authorize.Net",
        "authorize_net",
        "reseller",
        "{fakes}/authorize-net/xml/v1/request.api",
        {
            "api_login_id": "fake-login",
            "transaction_key": "fake-transaction-key",
            "signature_key": "FAKESIGNATUREKEY",
            "client_key": "fake-client-key",
            "accept_js_url": "{fakes}/authorize-net/v1/Accept.js",
        },
        [("USD", "0")],
    ),
    (
        "paypal",
        "PayPal",
        "paypal",
        "provider",
        "{fakes}/paypal",
        {
            "client_id": "kassa-fake-client",
            "client_secret": "kassa-fake-secret",
            "webhook_id": "8PT597110X687430LKGECATA",
        },
        [("USD", "1.00"), ("EUR", "1.00")],
    ),
    (
        "skrill",
        "Skrill",
        "skrill",
        "provider",
        "{fakes}/skrill",
        {
            "merchant_email": "merchant@kassa.test",
            "merchant_id": "40009999",
            "secret_word": "kassa-fake-secret",
            "mqi_password": "kassa-fake-mqi",
        },
        [("EUR", "1.00"), ("USD", "1.00")],
    ),
    (
        "payarena",
        "Payarena",
        "payarena",
        "provider",
        "{fakes}/payarena",
        {"merchant_id": "UPSLTEST0001", "secret_key": "payarena-fake-secret-key"},
        [("NGN", "100.00")],
    ),
    (
        "remita",
        "Remita",
        "remita",
        "provider",
        "{fakes}/remita",
        {"merchant_id": "2547916", "service_type_id": "4430731", "api_key": "1946"},
        [("NGN", "50.00")],
    ),
    (
        "paynearme",
        "PayNearMe",
        "paynearme",
        "provider",
        "{fakes}/paynearme",
        {"site_identifier": "S9900000001", "secret_key": "kassa-fake-paynearme-secret"},
        [("USD", "1.00")],
    ),
    (
        None,
        "City Kiosks",
        "cash_terminal",
        "provider",
        None,
        {"signing_secret": DEMO_TERMINAL_SECRET},
        [("USD", "0"), ("NGN", "0")],
    ),
]
#: The customers who store their cards through Stripe (the provider's) and Authorize.Net (the
#: reseller's): name, e-mail, whose customer, plan fee.  Each has an invoice due in
#: :data:`CARD_TERMS_DAYS` that the collection run charges on its due date.
CARD_PEOPLE = [
    ("Annie Easley", "annie@example.com", "provider", 3499),
    ("Evelyn Boyd Granville", "evelyn@example.com", "reseller", 2799),
]
CARD_TERMS_DAYS = 14


@dataclass(frozen=True)
class PaymentSystem:
    """A demo processor account: the fake it talks to (its mount name) and its id, whose
    ``/callbacks/{id}`` the fake delivers to."""

    fake: str | None
    name: str
    processor: str
    account_id: int


async def _payment_systems(db: Database) -> list[PaymentSystem]:
    """Every installed processor's account, pointing at its fake; the two card customers
    store a card each through their owner's account (over HTTP, to the fakes) and get an
    invoice.  The simulator account is disabled first: it keeps charging the cards stored
    through it, new cards go to Stripe."""
    made: list[PaymentSystem] = []
    async with db.transaction() as session:
        fakes = f"{session.info['settings'].public_url}/fakes"
        for account in await list_processor_accounts(session, ADMIN):
            if account.processor == "simulator":  # not the history's direct-debit gateway
                await disable_processor_account(session, ADMIN, account.id)
        reseller = await create_reseller(session, ADMIN, DEMO_RESELLER, "billing@corner.example")
        for fake, name, processor, owner, base, credentials, minimums in PAYMENT_SYSTEMS:
            info = payment_systems.catalog().describe(processor)
            if info is None:  # not installed here
                continue
            account = await create_processor_account(
                session,
                ADMIN,
                AccountInput(
                    name=name,
                    processor=processor,
                    credentials={k: v.format(fakes=fakes) for k, v in credentials.items()},
                    base_url=None if base is None else base.format(fakes=fakes),
                    minimums=minimums,
                    method_kinds=sorted(info.method_kinds - {MethodKind.MAESTRO}),
                ),
                reseller.id if owner == "reseller" else None,
            )
            made.append(PaymentSystem(fake, name, processor, account.id))
    for name, email, owner, fee in CARD_PEOPLE:
        async with db.transaction() as session:
            await _card_customer(
                session, reseller.id if owner == "reseller" else None, name, email, fee
            )
    return made


async def _card_customer(
    session: AsyncSession, reseller_id: int | None, name: str, email: str, fee: int
) -> None:
    """A USD customer of ``reseller_id`` (None: the provider's) whose card goes through the
    owner's account, with an invoice charged on its due date by the collection run."""
    staff = Viewer(role=Role.ADMIN, user_id=0, reseller_id=reseller_id)
    class_id = await _due_date_class(session, staff, "Card on file", CARD_TERMS_DAYS)
    customer = await _portal_customer(session, staff, class_id, name, email, ("9000", "Fibre 1000"))
    await add_card(
        session,
        staff,
        customer.id,
        CardDetails(number="4111111111111111", exp_month=12, exp_year=2031, cvc="123", holder=name),
    )
    await _invoice_at_once(session, customer, ChargeKind.ONE_OFF, f"{name}: installation", fee)


async def _due_date_class(session: AsyncSession, staff: Viewer, name: str, terms_days: int) -> int:
    """A class whose invoices closed early are collected on their due date: by the card on
    file, or through the gateway the class is billed by (the card and direct-debit
    customers' classes).  Returns its id."""
    made = await create_customer_class(
        session,
        staff,
        name,
        terms_days,
        7,
        {InvoiceKind.OUT_OF_TURN: SettingsInput(card_charging=CardCharging.ON_DUE_DATE)},
    )
    return made.id


async def _portal_customer(
    session: AsyncSession,
    staff: Viewer,
    class_id: int,
    name: str,
    email: str,
    line: tuple[str, str],
    billing_period: BillingPeriod | None = None,
) -> Customer:
    """A USD customer in New York on auto-payment who signs in to the portal with the demo
    customer password, with one line: ``line`` is its number's last four digits and its
    product.  The customer of ``staff``'s reseller when it acts for one."""
    customer = await create_customer(
        session,
        staff,
        CustomerInput(
            name=name,
            email=email,
            currency="USD",
            time_zone="America/New_York",
            class_id=class_id,
            credit_limit=50000,
            auto_payment=True,
            reseller_id=staff.reseller_id,
            billing_period=billing_period,
        ),
    )
    digits, product = line
    await create_account(session, staff, customer.id, f"+1555{customer.id:03d}{digits}", product)
    await users.create_user(
        session, email, CUSTOMER_PASSWORD, Role.CUSTOMER, customer_id=customer.id
    )
    return customer


# --- direct debit (docs/gateway-billing.md) -------------------------------------------------

#: Debitsuccess's fake's public test credentials (``processors/fakes/debitsuccess``).
DIRECT_DEBIT_CREDENTIALS = {
    "username": "kassa-fake-ds-user",
    "password": "kassa-fake-ds-password",
    "business_id": "B10001",
}
#: The customer billed through the gateway: name, e-mail, the bank account she enters on
#: its hosted form, and her installation fee (cents), invoiced with these payment terms.
DIRECT_DEBIT_PERSON = ("Mary Jackson", "mary@example.com", "0212345678901", 4900)
DIRECT_DEBIT_TERMS_DAYS = 2
#: How long before the load she is on-boarded: her invoice falls due two days later, and the
#: fake reports its schedule Settled four days after that.
DIRECT_DEBIT_BACK = timedelta(days=9)


async def _direct_debit_customer(db: Database, customers: list[Customer], at: datetime) -> None:
    """A customer of a class billed through Debitsuccess's fake, on-boarded through its
    hosted form over HTTP (as her browser would), with an installation invoice that the
    collection run submits as a one-off schedule on its due date and a later poll settles."""
    name, email, bank_account, fee = DIRECT_DEBIT_PERSON
    async with db.transaction() as session:
        public_url = session.info["settings"].public_url
        gateway = await create_processor_account(
            session,
            ADMIN,
            AccountInput(
                name="Debitsuccess",
                processor="debitsuccess",
                credentials=DIRECT_DEBIT_CREDENTIALS,
                base_url=f"{public_url}/fakes/debitsuccess",
                minimums=[("USD", "1.00")],
                method_kinds=[MethodKind.DIRECT_DEBIT],
            ),
        )
        await gateway_billing.save_settings(
            session,
            ADMIN,
            gateway.id,
            gateway_billing.SettingsInput(gateway_billing.PaidOn.SETTLED, "25.00", "USD", "1.5"),
        )
        class_id = await _due_date_class(session, ADMIN, "Direct debit", DIRECT_DEBIT_TERMS_DAYS)
        await gateway_billing.bill_class_through(session, ADMIN, class_id, gateway.id)
        customer = await _portal_customer(
            session,
            ADMIN,
            class_id,
            name,
            email,
            ("7000", "Fibre 500"),
            # No regular period closes before the load's "now": no empty statement.
            billing_period=BillingPeriod.MONTHLY_ANNIVERSARY,
        )
        form = await gateway_billing.start_enrollment(
            session, ADMIN, customer.id, f"{public_url}/portal/direct-debit/return"
        )
    async with httpx.AsyncClient(timeout=10) as browser:
        entered = await browser.post(
            form.url, data={"accountHolder": name, "accountNumber": bank_account}
        )
        if not entered.is_redirect:  # the form sends her back to kassa when it took them
            raise RuntimeError(f"Debitsuccess's form refused the demo's bank account: {entered}")
    async with db.transaction() as session:
        await gateway_billing.complete_enrollment(session, ADMIN, customer.id)
        await _invoice_at_once(session, customer, ChargeKind.ONE_OFF, f"{name}: installation", fee)


async def _direct_debit_systems(db: Database) -> list[PaymentSystem]:
    """The gateway account :func:`_direct_debit_customer` made (no callbacks: it is polled)."""
    async with db.session() as session:
        found = await session.scalars(
            select(ProcessorAccount).where(ProcessorAccount.processor == "debitsuccess")
        )
        return [PaymentSystem(None, a.name, a.processor, a.id) for a in found]


@dataclass(frozen=True)
class DemoAccess:
    """How to get into the demo: the logins (role, e-mail, password), a fresh API key, and
    whether this call loaded the demo (False: it was already there and is left as it was)."""

    logins: list[tuple[str, str, str]]
    api_key: str
    loaded: bool
    #: The processor accounts this load made (none when the demo was already there).
    payment_systems: list[PaymentSystem] = field(default_factory=list)


#: The provider's card processor account: the simulator, taking every demo currency (no
#: minimum, so no payment of the demo's story is refused), signing its callbacks with this
#: public demo secret (docs/payments.md posts one to /callbacks/1 with it).
DEMO_WEBHOOK_SECRET = "demo-webhook-secret"


def _processor_account() -> AccountInput:
    currencies = sorted({person[3] for person in PEOPLE} | {"USD"})
    return AccountInput(
        name="Cards (simulator)",
        processor="simulator",
        credentials={"webhook_secret": DEMO_WEBHOOK_SECRET},
        minimums=[(currency, "0") for currency in currencies],
        method_kinds=[
            MethodKind.VISA,
            MethodKind.MASTERCARD,
            MethodKind.AMEX,
            MethodKind.DISCOVER,
            MethodKind.MAESTRO,
        ],
    )


def _letterhead(provider_name: str) -> LetterheadInput:
    """The provider's letterhead on the demo's invoices, under its configured name."""
    return LetterheadInput(
        name=provider_name,
        address="1 Demo Street\nSpringfield 12345",
        tax_id="DEMO-123456789",
        email="billing@kassa.demo",
        phone="+1 555 0100",
        website="https://kassa.demo",
        payment_instructions="Pay in the customer portal by card, or by bank transfer to "
        "kassa Demo Bank, account 0123456789, quoting the invoice number.",
    )


async def load_demo(db: Database, now: datetime | None = None) -> DemoAccess:
    """Load the demo once, as at ``now`` (the wall clock's); return how to get into it."""
    if await _already_loaded(db):
        return DemoAccess(_logins(), await _new_api_key(db), loaded=False)
    plan = demo_plan((now or clock.wall_now()).replace(microsecond=0))
    async with db.transaction() as session:
        await clock.freeze(session, plan.start)
        await set_letterhead(session, ADMIN, _letterhead(session.info["settings"].provider_name))
        # Before any card is stored: every demo card goes through the provider's account.
        await create_processor_account(session, ADMIN, _processor_account())
        customers = await _create_parties(session)
    for at, step in plan.steps:
        await jobs.advance_clock(db, at)
        if isinstance(step, OnDatabase):
            await step.run(db, customers, at)
            # The scan job waits for the server: not one scan a minute through the history.
            async with db.transaction() as session:
                await bitcoin_payments.schedule_scan(session, plan.first_scan)
            continue
        async with db.transaction() as session:
            await step(session, customers)
    systems = await _payment_systems(db) + await _direct_debit_systems(db)
    async with db.transaction() as session:
        await clock.run(session)
    return DemoAccess(_logins(), await _new_api_key(db), loaded=True, payment_systems=systems)
