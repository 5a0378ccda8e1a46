"""Distributor billing (issue 10): each distributor's period closes at midnight of its own
time zone with an invoice whose figures come from the ledger, and its statistics e-mail
goes out as set — through the outbox, to a real SMTP server — once per period.

The world: on 16 March 2026 a distributor (15 % on sales, 10 % on collections) sells a
customer 10.00 of credit (8.50 owed, 1.50 kept), collects 10.00 in cash (9.00 owed, 1.00
kept) and pays the provider 5.00: it owes 12.50 at the end of March.  The ledger check
after every test (``conftest.py``) is ``kassa check``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import Message
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import func, select

from billing import clock, distributor_billing, jobs
from billing.db import Database
from billing.distributors import record_distributor_payment
from billing.models import (
    Distributor,
    DistributorInvoice,
    DistributorInvoiceStatus,
    OutboxMessage,
    RunFailure,
    RunKind,
    StatisticsEmail,
)
from billing.periods import BillingPeriod
from schema.relay import encode_id
from settings import Settings
from tests.factories import (
    T0,
    admin_viewer,
    admin_with_login,
    distributor_viewer,
    make_customer,
    make_customer_class,
    make_distributor,
    make_reseller,
    pay_cash,
)
from tests.graphql_support import Api, api_key, signed_in_api
from tests.portal_support import Browser, Mailbox, text_of

pytest_plugins = ["tests.portal_fixtures", "tests.graphql_fixtures"]

#: Midnight of 1 April 2026 in Lagos (UTC+1) and in New York (EDT, UTC−4).
LAGOS_MIDNIGHT = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
NEW_YORK_MIDNIGHT = datetime(2026, 4, 1, 4, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture
async def mail_db(settings: Settings, db: Database, mailbox: Mailbox) -> AsyncIterator[Database]:
    """The test database, opened with settings that send mail to the ``mailbox``."""
    database = Database(
        settings.with_(
            smtp_host=mailbox.host, smtp_port=mailbox.port, smtp_from="billing@kassa.test"
        )
    )
    yield database
    await database.dispose()


async def _distributor(
    db: Database, name: str, time_zone: str, statistics: StatisticsEmail, **fields: Any
) -> int:
    """A monthly distributor that sells, collects and pays the provider on 16 March."""
    async with db.transaction() as session:
        await clock.freeze(session, T0)
        distributor = await make_distributor(
            session,
            name,
            time_zone=time_zone,
            billing_period=BillingPeriod.MONTHLY,
            credit_limit=100_000,
            sales_commission_bps=1500,
            payment_commission_bps=1000,
            accounting_email=f"{name.lower().replace(' ', '.')}@example.test",
            statistics_email=statistics,
            **fields,
        )
        customer = await make_customer(
            session, distributor_viewer(distributor.id), opening_balance=-1000
        )
        await pay_cash(session, customer, 1000, viewer=distributor_viewer(distributor.id))
        await record_distributor_payment(
            session, admin_viewer(), distributor.id, 500, f"paid-{uuid4().hex}"
        )
        return distributor.id


async def _invoices(db: Database, distributor_id: int) -> list[DistributorInvoice]:
    async with db.session() as session:
        rows = await session.scalars(
            select(DistributorInvoice)
            .where(DistributorInvoice.distributor_id == distributor_id)
            .order_by(DistributorInvoice.period_start)
        )
        return list(rows.all())


async def _outbox(db: Database) -> list[OutboxMessage]:
    async with db.session() as session:
        return list((await session.scalars(select(OutboxMessage))).all())


def _figures(invoice: DistributorInvoice) -> dict[str, Any]:
    return {
        "period": (invoice.period_start, invoice.period_end),
        "previous": invoice.previous_balance,
        "sales": (invoice.sales_gross, invoice.sales_commission),
        "collections": (invoice.collections_gross, invoice.collections_commission),
        "reversals": (invoice.reversals_gross, invoice.reversals_commission),
        "payments": invoice.payments,
        "other": invoice.other,
        "due": invoice.balance_due,
    }


MARCH = {
    "period": (date(2026, 3, 1), date(2026, 4, 1)),
    "previous": 0,
    "sales": (1000, 150),
    "collections": (1000, 100),
    "reversals": (0, 0),
    "payments": 500,
    "other": 0,
    "due": 1250,
}


def _csv_part(mail: Message) -> tuple[str, str] | None:
    for part in mail.walk():
        if part.get_content_type() == "text/csv":
            content = part.get_payload(decode=True)
            assert isinstance(content, bytes)
            return str(part.get_filename()), content.decode()
    return None


async def test_each_distributor_is_invoiced_at_its_own_midnight(
    mail_db: Database, mailbox: Mailbox
) -> None:
    lagos = await _distributor(mail_db, "Lagos Kiosk", "Africa/Lagos", StatisticsEmail.SUMMARY)
    new_york = await _distributor(mail_db, "Bronx Shop", "America/New_York", StatisticsEmail.NONE)

    await jobs.advance_clock(mail_db, LAGOS_MIDNIGHT - SECOND)
    assert await _invoices(mail_db, lagos) == [] and await _invoices(mail_db, new_york) == []

    await jobs.advance_clock(mail_db, LAGOS_MIDNIGHT)
    [march] = await _invoices(mail_db, lagos)
    assert _figures(march) == MARCH
    assert march.closed_at == LAGOS_MIDNIGHT
    assert (march.number, march.issue_date, march.due_date) == (
        "INV-000001",
        date(2026, 4, 1),
        date(2026, 4, 15),  # net 14: no class
    )
    assert march.status == DistributorInvoiceStatus.OPEN
    assert await _invoices(mail_db, new_york) == []

    await jobs.advance_clock(mail_db, NEW_YORK_MIDNIGHT - SECOND)
    assert await _invoices(mail_db, new_york) == []
    await jobs.advance_clock(mail_db, NEW_YORK_MIDNIGHT)
    [new_york_march] = await _invoices(mail_db, new_york)
    assert _figures(new_york_march) == MARCH
    # One numbering with customer invoices: the two customers' (UTC) took 2 and 3.
    assert new_york_march.number == "INV-000004"
    assert new_york_march.closed_at == NEW_YORK_MIDNIGHT

    async with mail_db.session() as session:
        moved = {
            d.id: (d.period_start, d.next_bill_at)
            for d in await session.scalars(select(Distributor))
        }
    assert moved == {
        lagos: (date(2026, 4, 1), datetime(2026, 4, 30, 23, 0, tzinfo=UTC)),
        new_york: (date(2026, 4, 1), datetime(2026, 5, 1, 4, 0, tzinfo=UTC)),
    }

    # SUMMARY: one mail with the figures; NONE: nothing.
    [mail] = await mailbox.received()
    assert mail["To"] == "lagos.kiosk@example.test"
    assert mail["Subject"] == "Lagos Kiosk: invoice INV-000001, 12.50 USD due"
    assert _csv_part(mail) is None
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode()
    assert "billing period 2026-03-01 to 2026-03-31 (Africa/Lagos time)" in text
    lines = [line.split() for line in text.splitlines()]
    assert ["Sales", "10.00", "1.50", "8.50"] in lines
    assert ["Collections", "10.00", "1.00", "9.00"] in lines
    assert ["Payments", "to", "us", "-5.00"] in lines
    assert ["Balance", "due", "12.50"] in lines
    assert "You earned 2.50 USD in commission this period." in text
    assert "Please pay 12.50 USD by 2026-04-15." in text


async def test_full_statistics_attach_the_periods_transactions_as_csv(
    mail_db: Database, mailbox: Mailbox
) -> None:
    lagos = await _distributor(
        mail_db, "Lagos Kiosk", "Africa/Lagos", StatisticsEmail.FULL_WITH_CSV
    )
    await jobs.advance_clock(mail_db, LAGOS_MIDNIGHT)
    [march] = await _invoices(mail_db, lagos)

    [mail] = await mailbox.received()
    found = _csv_part(mail)
    assert found is not None
    name, content = found
    assert name == f"transactions-{march.number}.csv"
    rows = list(csv.DictReader(io.StringIO(content)))
    assert [row["kind"] for row in rows] == ["SALE", "COLLECTION", "PAYMENT_TO_PROVIDER"]
    total = sum(Decimal(row["amount"]) for row in rows)
    assert total == Decimal(march.balance_due - march.previous_balance) / 100
    assert sum(Decimal(row["commission"]) for row in rows) == Decimal("2.50")
    assert all(row["date"].endswith("+01:00") for row in rows)  # Lagos time


async def test_a_period_is_invoiced_and_mailed_once_however_often_the_job_runs(
    mail_db: Database,
) -> None:
    lagos = await _distributor(mail_db, "Lagos Kiosk", "Africa/Lagos", StatisticsEmail.SUMMARY)
    await jobs.advance_clock(mail_db, LAGOS_MIDNIGHT + timedelta(hours=1))
    for _ in range(2):
        async with mail_db.transaction() as session:
            assert await distributor_billing.run_distributor_billing(session, LAGOS_MIDNIGHT) == 0
        await jobs.run_due(mail_db)
    assert len(await _invoices(mail_db, lagos)) == 1
    assert len(await _outbox(mail_db)) == 1


async def test_a_late_run_invoices_each_missed_period_with_its_own_figures(
    mail_db: Database,
) -> None:
    lagos = await _distributor(mail_db, "Lagos Kiosk", "Africa/Lagos", StatisticsEmail.NONE)
    async with mail_db.transaction() as session:
        closed = await distributor_billing.run_distributor_billing(
            session, datetime(2026, 5, 15, tzinfo=UTC)
        )
    assert closed == 2
    march, april = await _invoices(mail_db, lagos)
    assert _figures(march) == MARCH
    assert _figures(april) == {
        "period": (date(2026, 4, 1), date(2026, 5, 1)),
        "previous": 1250,
        "sales": (0, 0),
        "collections": (0, 0),
        "reversals": (0, 0),
        "payments": 0,
        "other": 0,
        "due": 1250,
    }
    assert (april.issue_date, april.due_date) == (date(2026, 5, 1), date(2026, 5, 15))
    assert await _outbox(mail_db) == []


async def test_the_class_sets_the_due_date_and_payments_to_the_provider_pay_invoices(
    mail_db: Database,
) -> None:
    async with mail_db.transaction() as session:
        class_id = (await make_customer_class(session, "Net 30", payment_terms_days=30)).id
    lagos = await _distributor(
        mail_db, "Lagos Kiosk", "Africa/Lagos", StatisticsEmail.NONE, class_id=class_id
    )
    await jobs.advance_clock(mail_db, LAGOS_MIDNIGHT + timedelta(days=31))  # April closed too
    march, april = await _invoices(mail_db, lagos)
    assert march.due_date == date(2026, 5, 1)
    assert (march.status, april.status) == (DistributorInvoiceStatus.OPEN,) * 2

    async with mail_db.transaction() as session:
        # 10.00 of March's 12.50: both stay open.
        await record_distributor_payment(session, admin_viewer(), lagos, 1000, "part")
    march, april = await _invoices(mail_db, lagos)
    assert (march.status, april.status) == (DistributorInvoiceStatus.OPEN,) * 2
    async with mail_db.transaction() as session:
        # The rest pays March; April owes the same 12.50 (the payments came after April
        # ended), so it is paid too.
        await record_distributor_payment(session, admin_viewer(), lagos, 250, "rest")
    march, april = await _invoices(mail_db, lagos)
    assert (march.status, april.status) == (DistributorInvoiceStatus.PAID,) * 2
    assert march.paid_at is not None

    # May owes nothing: its invoice is paid as it is issued.
    await jobs.advance_clock(mail_db, datetime(2026, 5, 31, 23, 0, tzinfo=UTC))
    may = (await _invoices(mail_db, lagos))[-1]
    assert (may.previous_balance, may.payments, may.balance_due) == (1250, 1250, 0)
    assert may.status == DistributorInvoiceStatus.PAID


async def test_a_failing_distributor_does_not_stop_the_others(mail_db: Database) -> None:
    broken = await _distributor(mail_db, "Broken", "Africa/Lagos", StatisticsEmail.SUMMARY)
    lagos = await _distributor(mail_db, "Lagos Kiosk", "Africa/Lagos", StatisticsEmail.SUMMARY)
    async with mail_db.transaction() as session:
        row = await session.get(Distributor, broken)
        assert row is not None
        row.time_zone = "Mars/Olympus_Mons"  # what a bad import could leave behind

    await jobs.advance_clock(mail_db, LAGOS_MIDNIGHT)
    assert len(await _invoices(mail_db, lagos)) == 1
    assert await _invoices(mail_db, broken) == []
    async with mail_db.session() as session:
        [failure] = (await session.scalars(select(RunFailure))).all()
    assert (failure.kind, failure.distributor_id, failure.customer_id) == (
        RunKind.DISTRIBUTOR_BILLING,
        broken,
        None,
    )
    assert failure.code == "INVALID_TIME_ZONE" and failure.resolved_at is None
    assert [m.to for m in await _outbox(mail_db)] == ["lagos.kiosk@example.test"]

    # Mended, it is invoiced on the next retry, which resolves the failure.
    async with mail_db.transaction() as session:
        row = await session.get(Distributor, broken)
        assert row is not None
        row.time_zone = "Africa/Lagos"
    await jobs.advance_clock(mail_db, failure.next_retry_at)
    [march] = await _invoices(mail_db, broken)
    assert _figures(march) == MARCH
    async with mail_db.session() as session:
        resolved = await session.get(RunFailure, failure.id)
        assert resolved is not None and resolved.resolved_at == failure.next_retry_at
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 2


RUN_FAILURES = """{ runFailures(first: 10) { totalCount edges { node { kind code
    customer { id } distributor { id name } } } } }"""


async def test_a_failing_distributor_is_on_the_run_problems_list_of_its_administrators(
    mail_db: Database, db: Database, http: httpx.AsyncClient, admin: Browser
) -> None:
    """``runFailures`` and /admin/run-failures name the distributor and link to its page; a
    reseller's administrators, whose distributor it is not, do not see it."""
    broken = await _distributor(mail_db, "Broken", "Africa/Lagos", StatisticsEmail.NONE)
    async with mail_db.transaction() as session:
        row = await session.get(Distributor, broken)
        assert row is not None
        row.time_zone = "Mars/Olympus_Mons"
        reseller = await make_reseller(session)
    await jobs.advance_clock(mail_db, LAGOS_MIDNIGHT)

    provider = Api(http, await api_key(db))
    listed = (await provider.run(RUN_FAILURES))["runFailures"]
    assert listed["totalCount"] == 1
    assert listed["edges"][0]["node"] == {
        "kind": "DISTRIBUTOR_BILLING",
        "code": "INVALID_TIME_ZONE",
        "customer": None,
        "distributor": {"id": encode_id("Distributor", broken), "name": "Broken"},
    }
    staff = await signed_in_api(http, await admin_with_login(db, "r@run.example", reseller.id))
    assert (await staff.run(RUN_FAILURES))["runFailures"]["totalCount"] == 0

    page = await admin.open("/admin/run-failures")
    problems = text_of(page.text, "run-failure-list")
    assert "Broken" in problems and "INVALID_TIME_ZONE" in problems
    assert f'href="/admin/distributors/{encode_id("Distributor", broken)}"' in page.text


INVOICES = """query($id: ID!) { distributor(id: $id) { invoices(first: 10) { totalCount
    edges { node { number status periodStart periodEnd issueDate dueDate paidAt
    previousBalance { amount currency } sales { gross { amount } commission { amount }
    net { amount } } collections { gross { amount } commission { amount } net { amount } }
    reversals { net { amount } } paymentsToProvider { amount } otherMovements { amount }
    balanceDue { amount } } } } } }"""


async def test_the_invoices_over_graphql(
    mail_db: Database, http: httpx.AsyncClient, db: Database
) -> None:
    lagos = await _distributor(mail_db, "Lagos Kiosk", "Africa/Lagos", StatisticsEmail.NONE)
    await jobs.advance_clock(mail_db, LAGOS_MIDNIGHT)
    api = Api(http, await api_key(db))
    data = await api.run(INVOICES, {"id": encode_id("Distributor", lagos)})
    connection = data["distributor"]["invoices"]
    assert connection["totalCount"] == 1
    assert connection["edges"][0]["node"] == {
        "number": "INV-000001",
        "status": "OPEN",
        "periodStart": "2026-03-01",
        "periodEnd": "2026-04-01",
        "issueDate": "2026-04-01",
        "dueDate": "2026-04-15",
        "paidAt": None,
        "previousBalance": {"amount": "0.00", "currency": "USD"},
        "sales": {
            "gross": {"amount": "10.00"},
            "commission": {"amount": "1.50"},
            "net": {"amount": "8.50"},
        },
        "collections": {
            "gross": {"amount": "10.00"},
            "commission": {"amount": "1.00"},
            "net": {"amount": "9.00"},
        },
        "reversals": {"net": {"amount": "0.00"}},
        "paymentsToProvider": {"amount": "5.00"},
        "otherMovements": {"amount": "0.00"},
        "balanceDue": {"amount": "12.50"},
    }
