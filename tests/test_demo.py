"""The demo ``make run`` loads: the same story whichever day it is loaded, loaded once, ledger
sound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from billing import api_keys, clock, gateway_billing, jobs
from billing.bitcoin_payments import BITCOIN_SCAN_JOB
from billing.db import Database
from billing.demo import (
    CARD_PEOPLE,
    CARD_TERMS_DAYS,
    DIRECT_DEBIT_PERSON,
    PEOPLE,
    demo_plan,
    load_demo,
    month_start,
)
from billing.distributors import commission_this_period
from billing.models import (
    BitcoinPayment,
    BitcoinPaymentState,
    Charge,
    Customer,
    CustomerStatus,
    Distributor,
    GatewaySchedule,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Job,
    JobStatus,
    Payment,
    PaymentChannel,
    PaymentMethod,
    Reseller,
)
from billing.processor_accounts import list_accounts
from tests.factories import admin_viewer

#: Load dates that have broken date arithmetic before: the first days of a month, before its
#: charges are posted (the day CI went red), the last minutes of a month (UTC already past
#: midnight in Tokyo, not yet in Los Angeles), a leap day, and the night Europe moves its
#: clocks.  Each is a whole demo load (a minute or more), so the list stays this short.
LOAD_DATES = [
    datetime(2026, 12, 2, 18, 42, tzinfo=UTC),
    datetime(2027, 1, 31, 23, 30, tzinfo=UTC),
    datetime(2028, 2, 29, 12, 0, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
]


async def _counts(db: Database) -> dict[str, int]:
    async with db.session() as session:
        return {
            model.__tablename__: int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
            for model in (Customer, Invoice, Payment, Distributor)
        }


def test_month_start_counts_whole_months_back_across_years() -> None:
    at = datetime(2027, 2, 14, 5, 0, tzinfo=UTC)
    assert month_start(at, 0) == datetime(2027, 2, 1, tzinfo=UTC)
    assert month_start(at, 2) == datetime(2026, 12, 1, tzinfo=UTC)
    assert month_start(at, 14) == datetime(2025, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize("now", LOAD_DATES, ids=lambda at: at.strftime("%Y-%m-%dT%H:%M"))
async def test_demo_tells_the_same_story_on_any_day(demo_db: Database, now: datetime) -> None:
    db = demo_db
    await load_demo(db, now)
    plan = demo_plan(now)
    assert plan.start < min(at for at, _ in plan.steps) and max(at for at, _ in plan.steps) == now
    async with db.session() as session:
        # Left running from the load's instant, so scheduled work happens by itself.
        assert not await clock.is_frozen(session)
        assert now <= await clock.now(session) < now + timedelta(minutes=10)
        statuses = set((await session.scalars(select(Invoice.status).distinct())).all())
        assert statuses == set(InvoiceStatus)
        methods = set((await session.scalars(select(Payment.method).distinct())).all())
        assert len(methods) == 6  # card, cash, wire, cheque, bitcoin and direct debit

        ada = await session.scalar(select(Customer).where(Customer.email == PEOPLE[0][1]))
        assert ada is not None and ada.status == CustomerStatus.ACTIVE
        own = set(
            (
                await session.scalars(select(Invoice.status).where(Invoice.customer_id == ada.id))
            ).all()
        )
        assert {InvoiceStatus.UNPAID, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.OVERDUE} <= own

        # Bitcoin: a testnet wallet at a fixed rate; the demo customer has an address, one
        # payment confirmed and credited (0.0005 BTC = 32.50 USD), one still pending; the
        # scan waits for the server's watcher.
        bitcoin = (
            await session.execute(
                select(BitcoinPayment.state, BitcoinPayment.satoshis, Payment.amount)
                .join(Payment, Payment.id == BitcoinPayment.payment_id)
                .where(Payment.customer_id == ada.id)
                .order_by(BitcoinPayment.id)
            )
        ).all()
        assert [tuple(row) for row in bitcoin] == [
            (BitcoinPaymentState.CREDITED, 50_000, 3250),
            (BitcoinPaymentState.PENDING, 23_456, 1525),
        ]
        scan_due = await session.scalar(
            select(Job.due_at).where(
                Job.unique_key == BITCOIN_SCAN_JOB, Job.status == JobStatus.PENDING
            )
        )
        assert scan_due is not None and scan_due > now

        # Every regular invoice bills something: charges are posted in every month.
        empty = await session.scalar(
            select(func.count(Invoice.id)).where(
                Invoice.kind == InvoiceKind.REGULAR,
                ~select(Charge.id).where(Charge.invoice_id == Invoice.id).exists(),
            )
        )
        assert empty == 0
        # ... and every customer was charged in each of the four whole months before this one.
        for months_back in range(1, 5):
            charged = await session.scalar(
                select(func.count(func.distinct(Charge.customer_id))).where(
                    Charge.service_at >= month_start(now, months_back),
                    Charge.service_at < month_start(now, months_back - 1),
                    Charge.customer_id.in_(
                        select(Customer.id).where(Customer.email.in_([p[1] for p in PEOPLE]))
                    ),
                )
            )
            assert charged == len(PEOPLE), f"month -{months_back}"

        # The distributor's own business, all in its current period: 10 % of 20.00 and
        # 10.00 of credit sold, 5 % of 5.00 and 15.00 of cash collected, 30.00 handed in.
        distributor = await session.scalar(
            select(Distributor).options(selectinload(Distributor.ledger_account))
        )
        assert distributor is not None
        assert distributor.balance == 1800 + 900 + 475 + 1425 - 3000
        assert await commission_this_period(session, distributor) == 200 + 100 + 25 + 75

        # Direct debit: her installation invoice was collected by a one-off schedule that a
        # poll saw Settled, each status once, with the poll's cursor kept.
        mary = select(Customer.id).where(Customer.email == DIRECT_DEBIT_PERSON[1])
        [(invoice_status, payment_method)] = (
            await session.execute(
                select(Invoice.status, Payment.method)
                .join(Payment, Payment.invoice_id == Invoice.id)
                .where(Invoice.customer_id.in_(mary))
            )
        ).all()
        assert (invoice_status, payment_method) == (InvoiceStatus.PAID, PaymentChannel.DIRECT_DEBIT)
        [schedule] = await session.scalars(select(GatewaySchedule))
        seen = (await gateway_billing.history_of(session, [schedule.id]))[schedule.id]
        assert schedule.status == "Settled"
        assert [s.status for s in seen] == ["Unattempted", "Pending", "Cleared", "Settled"]
        assert seen[-1].outcome == "COMPLETED"


async def test_demo_loads_only_once(demo_db: Database) -> None:
    db = demo_db
    first = await load_demo(db, LOAD_DATES[0])
    assert first.loaded
    assert {role for role, _, _ in first.logins} == {"administrator", "customer", "distributor"}
    async with db.session() as session:
        assert await api_keys.authenticate_api_key(session, first.api_key) is not None
    counts = await _counts(db)
    assert counts["customers"] == 26 and counts["distributors"] == 1
    # The administrator sees the configured payment systems: the simulator, kept (disabled)
    # for the cards of the demo's history, and every installed processor at its fake.
    async with db.session() as session:
        accounts = await list_accounts(session, admin_viewer())
        for reseller in await session.scalars(select(Reseller)):
            accounts += await list_accounts(session, admin_viewer(), reseller.id)
        processors = set(await session.scalars(select(PaymentMethod.processor).distinct()))
    by_processor = {account.processor: account for account in accounts}
    simulator = by_processor.pop("simulator")
    assert (simulator.enabled, simulator.credentials_set) == (False, ("webhook_secret",))
    assert {system.processor for system in first.payment_systems} == set(by_processor)
    assert {"stripe", "authorize_net"} <= set(by_processor)
    assert all(account.enabled for account in by_processor.values())
    assert by_processor["authorize_net"].reseller_id is not None
    assert by_processor["stripe"].base_url == f"{db.settings.public_url}/fakes/stripe"
    # Cards at the simulator (the history's), at Stripe's fake and at Authorize.Net's.
    assert processors == {"simulator", "stripe", "authorize_net", "debitsuccess"}
    # The collection run charges the two new cards on their invoices' due date.
    card_customers = select(Customer.id).where(
        Customer.email.in_([email for _, email, _, _ in CARD_PEOPLE])
    )
    due = select(Invoice.status).where(Invoice.customer_id.in_(card_customers))
    async with db.session() as session:
        assert list(await session.scalars(due)) == [InvoiceStatus.UNPAID] * 2
    async with db.transaction() as session:  # stopped first: the demo leaves it running
        await clock.freeze(session, await clock.now(session) + timedelta(seconds=1))
    await jobs.advance_clock(db, LOAD_DATES[0] + timedelta(days=CARD_TERMS_DAYS, hours=16))
    async with db.session() as session:
        assert list(await session.scalars(due)) == [InvoiceStatus.PAID] * 2

    counts = await _counts(db)
    again = await load_demo(db)
    assert not again.loaded
    assert again.logins == first.logins
    assert again.api_key != first.api_key
    assert await _counts(db) == counts
