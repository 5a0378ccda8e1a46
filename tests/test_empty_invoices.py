"""A period with nothing on it gets no invoice, unless the customer's class asks for one.

"Nothing on it" (:func:`billing.invoices.is_empty`): no lines, nothing carried over (no debt
and no credit from before) and nothing paid during the period.  A customer who owes, holds
credit or paid gets the invoice all the same: it is their statement.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from billing import jobs
from billing.db import Database
from billing.invoices import StatementFigures, is_empty
from billing.models import Customer, InvoiceStatus
from tests.factories import (
    ADMIN_EMAIL,
    customer_class,
    freeze_clock,
    invoices_of,
    new_party,
    post_usage,
    settle_in_cash,
)
from tests.portal_support import Browser, customer_api, form_fields

pytest_plugins = ["tests.portal_fixtures"]

MARCH_10 = datetime(2026, 3, 10, tzinfo=UTC)
APRIL_1 = datetime(2026, 4, 1, tzinfo=UTC)
MAY_1 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("figures", "lines", "empty"),
    [
        (StatementFigures(previous_balance=0, payments_in_period=0, total=0), 0, True),
        (StatementFigures(previous_balance=0, payments_in_period=0, total=100), 1, False),
        (StatementFigures(previous_balance=250, payments_in_period=0, total=0), 0, False),
        (StatementFigures(previous_balance=-250, payments_in_period=0, total=0), 0, False),
        (StatementFigures(previous_balance=0, payments_in_period=250, total=0), 0, False),
    ],
    ids=["nothing", "charged", "owes", "credit", "paid"],
)
def test_empty_means_no_lines_nothing_carried_over_and_nothing_paid(
    figures: StatementFigures, lines: int, empty: bool
) -> None:
    assert is_empty(figures, lines) is empty


async def test_nothing_charged_and_nothing_owed_makes_no_invoice_and_the_period_moves_on(
    db: Database,
) -> None:
    quiet = await new_party(db)
    await jobs.advance_clock(db, MAY_1)
    assert await invoices_of(db, quiet.id) == []
    async with db.session() as session:
        refreshed = await session.get(Customer, quiet.id)
        assert refreshed is not None and refreshed.period_start == date(2026, 5, 1)


async def test_a_class_that_asks_for_them_gets_paid_zero_invoices(db: Database) -> None:
    statements = await customer_class(db, "Statements", issue_empty_invoices=True)
    customer = await new_party(db, class_id=statements)
    await jobs.advance_clock(db, APRIL_1)
    [invoice] = await invoices_of(db, customer.id)
    assert (invoice.total, invoice.previous_balance, invoice.status) == (0, 0, InvoiceStatus.PAID)


async def test_a_customer_who_still_owes_gets_a_statement_without_charges(db: Database) -> None:
    customer = await new_party(db)
    await post_usage(db, customer, 1000, MARCH_10)
    await jobs.advance_clock(db, MAY_1)
    march, april = await invoices_of(db, customer.id)
    assert (march.total, march.status) == (1000, InvoiceStatus.OVERDUE)
    assert (april.total, april.previous_balance, april.balance_due) == (0, 1000, 1000)


async def test_a_customer_in_credit_gets_a_statement_without_charges(db: Database) -> None:
    customer = await new_party(db, opening_balance=-500)
    await jobs.advance_clock(db, APRIL_1)
    [march] = await invoices_of(db, customer.id)
    assert (march.total, march.previous_balance, march.balance_due) == (0, -500, -500)


async def test_a_payment_in_the_period_gets_a_statement_without_charges(db: Database) -> None:
    customer = await new_party(db)
    await settle_in_cash(db, customer, 700)  # paid ahead: nothing was owed yet
    await jobs.advance_clock(db, APRIL_1)
    [march] = await invoices_of(db, customer.id)
    assert (march.previous_balance, march.payments_in_period, march.balance_due) == (0, 700, -700)


async def test_an_empty_period_between_two_billed_ones_is_skipped_without_a_number_gap(
    db: Database,
) -> None:
    """Several periods behind at once: March billed and paid, April empty, May billed."""
    customer = await new_party(db)
    await post_usage(db, customer, 300, MARCH_10)
    await post_usage(db, customer, 500, datetime(2026, 5, 10, tzinfo=UTC))
    await settle_in_cash(db, customer, 300)
    # The worker was down: the clock jumps past three period ends without running jobs.
    await freeze_clock(db, datetime(2026, 6, 15, tzinfo=UTC))
    await jobs.run_due(db)
    march, may = await invoices_of(db, customer.id)
    assert [(i.period_start, i.number, i.total) for i in (march, may)] == [
        (date(2026, 3, 1), "INV-000001", 300),
        (date(2026, 5, 1), "INV-000002", 500),
    ]
    assert (march.payments_in_period, march.balance_due) == (300, 0)
    assert (may.previous_balance, may.balance_due) == (0, 500)


async def test_the_class_form_and_the_api_set_the_setting(admin: Browser) -> None:
    await admin.open("/admin/classes")
    response = await admin.submit(
        "/admin/classes",
        {
            "name": "Statements",
            "paymentTermsDays": "14",
            "gracePeriodDays": "7",
            "issueEmptyInvoices": "on",
            "regularInvoices.cardCharging": "NEVER",
            "outOfTurnInvoices.cardCharging": "NEVER",
        },
    )
    assert response.status_code == 200, response.text
    path = response.text.split('href="/admin/classes/', 1)[1].split('"')[0]
    page = await admin.open(f"/admin/classes/{path}")
    assert form_fields(page.text, f"/admin/classes/{path}")["issueEmptyInvoices"] == "on"

    api = await customer_api(admin, ADMIN_EMAIL)
    query = "{ customerClasses { edges { node { id issueEmptyInvoices } } } }"
    [node] = [edge["node"] for edge in (await api.run(query))["customerClasses"]["edges"]]
    assert node["issueEmptyInvoices"] is True
    changed = await api.run(
        "mutation($input: UpdateCustomerClassInput!) { updateCustomerClass(input: $input) {"
        " customerClass { issueEmptyInvoices } errors { code } } }",
        {"input": {"id": node["id"], "issueEmptyInvoices": False}},
    )
    assert changed["updateCustomerClass"] == {
        "customerClass": {"issueEmptyInvoices": False},
        "errors": [],
    }
