"""Invoice rules: numbers, dates, lines, figures, out-of-turn closing, voiding, overdue, scope."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from billing import jobs
from billing.accounts import update_account
from billing.collection import DEFAULT_PAYMENT_TERMS_DAYS, SettingsInput
from billing.customers import create_customer_class
from billing.db import Database
from billing.errors import Forbidden, UserError
from billing.invoices import (
    close_period_out_of_turn,
    get_invoice,
    invoice_lines,
    invoice_query,
    mark_overdue,
    next_invoice_numbers,
    payments_for_invoice,
    statement_figures,
    void_invoice,
)
from billing.models import (
    Charge,
    ChargeStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    LedgerEntry,
    LedgerTransaction,
    TransactionKind,
)
from tests.factories import (
    T0,
    admin_viewer,
    balance_of,
    customer_viewer,
    freeze_clock,
    invoices_of,
    issue_invoice,
    make_account,
    make_charge_at,
    make_customer,
    make_reseller,
    new_party,
    post_usage,
    reseller_viewer,
    settle_in_cash,
)

MARCH = datetime(2026, 3, 20, 12, tzinfo=UTC)
APRIL_1 = datetime(2026, 4, 1, 1, tzinfo=UTC)  # just after March closes at UTC midnight
APRIL = datetime(2026, 4, 10, 12, tzinfo=UTC)
MAY_1 = datetime(2026, 5, 1, 1, tzinfo=UTC)


async def _lines(db: Database, invoice_id: int) -> list[Charge]:
    async with db.session() as session:
        return (await invoice_lines(session, [invoice_id]))[invoice_id]


# --- numbers ------------------------------------------------------------------------------


async def test_invoice_numbers_are_consecutive_per_owner_and_a_rollback_leaves_no_gap(
    db: Database,
) -> None:
    async with db.transaction() as session:
        assert await next_invoice_numbers(session, "provider", 2) == ["INV-000001", "INV-000002"]
        assert await next_invoice_numbers(session, "reseller:7", 1) == ["R7-000001"]
        assert await next_invoice_numbers(session, "provider", 0) == []
        assert await next_invoice_numbers(session, "provider", 1) == ["INV-000003"]
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await next_invoice_numbers(session, "provider", 5)
            raise RuntimeError("the invoices were never made")
    async with db.transaction() as session:
        assert await next_invoice_numbers(session, "provider", 1) == ["INV-000004"]


async def test_provider_and_reseller_number_their_invoices_separately_without_gaps(
    db: Database,
) -> None:
    await freeze_clock(db)
    async with db.transaction() as session:
        reseller = await make_reseller(session)
        ours = [await make_customer(session, name=f"P{i}") for i in range(3)]
        theirs = [
            await make_customer(session, name=f"R{i}", reseller_id=reseller.id) for i in range(2)
        ]
        for customer in ours + theirs:  # a period with nothing on it makes no invoice
            await make_charge_at(session, await make_account(session, customer), 100, MARCH)
    await jobs.advance_clock(db, APRIL_1)
    provider_numbers = [i.number for c in ours for i in await invoices_of(db, c.id)]
    reseller_numbers = [i.number for c in theirs for i in await invoices_of(db, c.id)]
    assert provider_numbers == ["INV-000001", "INV-000002", "INV-000003"]
    assert reseller_numbers == [f"R{reseller.id}-000001", f"R{reseller.id}-000002"]


# --- dates --------------------------------------------------------------------------------


async def test_due_date_is_issue_date_plus_payment_terms(db: Database) -> None:
    await freeze_clock(db)
    async with db.transaction() as session:
        net30 = await create_customer_class(session, admin_viewer(), "Net 30", 30, 7)
        # The class's setting for regular invoices comes before its own terms.
        net10 = await create_customer_class(
            session,
            admin_viewer(),
            "Net 10 for regular invoices",
            30,
            7,
            {InvoiceKind.REGULAR: SettingsInput(payment_terms_days=10)},
        )
        with_class = await make_customer(session, class_id=net30.id)
        with_kind_terms = await make_customer(session, class_id=net10.id)
        without_class = await make_customer(session)
        for customer in (with_class, with_kind_terms, without_class):
            await make_charge_at(session, await make_account(session, customer), 100, MARCH)
    await jobs.advance_clock(db, APRIL_1)
    [invoice] = await invoices_of(db, with_class.id)
    assert invoice.issue_date == date(2026, 4, 1)
    assert invoice.due_date == date(2026, 5, 1)
    [invoice] = await invoices_of(db, with_kind_terms.id)
    assert invoice.due_date == date(2026, 4, 11)
    [invoice] = await invoices_of(db, without_class.id)
    assert invoice.due_date == date(2026, 4, 1) + timedelta(days=DEFAULT_PAYMENT_TERMS_DAYS)


# --- lines --------------------------------------------------------------------------------


async def test_lines_come_from_the_period_charges_and_later_ones_go_to_the_next_invoice(
    db: Database,
) -> None:
    customer = await new_party(db, account_number="+1 555 0100")
    await post_usage(db, customer, 1000, MARCH, "Calls in March")
    await post_usage(db, customer, 500, datetime(2026, 4, 2, tzinfo=UTC), "April subscription")
    await jobs.advance_clock(db, APRIL_1)
    # Posted in April for a service in March: the March invoice is already closed.
    late = datetime(2026, 3, 31, 23, tzinfo=UTC)
    await post_usage(db, customer, 70, late, "Late roaming record")
    await jobs.advance_clock(db, MAY_1)

    march, april = await invoices_of(db, customer.id)
    assert (march.period_start, march.period_end) == (date(2026, 3, 1), date(2026, 4, 1))
    assert [
        (line.account_number, line.description, line.amount) for line in await _lines(db, march.id)
    ] == [("+1 555 0100", "Calls in March", 1000)]
    assert march.total == 1000
    assert (april.period_start, april.period_end) == (date(2026, 4, 1), date(2026, 5, 1))
    assert [line.description for line in await _lines(db, april.id)] == [
        "Late roaming record",
        "April subscription",
    ]
    assert april.total == 570
    async with db.session() as session:
        uninvoiced = await session.scalar(
            select(func.count(Charge.id)).where(Charge.invoice_id.is_(None))
        )
    assert uninvoiced == 0


async def test_a_line_prints_the_account_number_its_charge_was_posted_under(db: Database) -> None:
    """An invoice's lines are its charges; renumbering the account later changes no line."""
    customer = await new_party(db, account_number="+1 555 0100")
    await post_usage(db, customer, 1000, MARCH, "Before the new number")
    async with db.transaction() as session:
        await update_account(session, admin_viewer(), customer.account.id, number="+1 555 0199")
    await post_usage(db, customer, 300, MARCH, "After the new number")
    await jobs.advance_clock(db, APRIL_1)
    async with db.transaction() as session:
        await update_account(session, admin_viewer(), customer.account.id, number="+1 555 0142")

    [march] = await invoices_of(db, customer.id)
    assert sorted(
        (line.description, line.account_number) for line in await _lines(db, march.id)
    ) == [
        ("After the new number", "+1 555 0199"),
        ("Before the new number", "+1 555 0100"),
    ]


# --- figures ------------------------------------------------------------------------------


def test_statement_figures_reconcile_with_the_balance() -> None:
    figures = statement_figures(
        balance=900, total=400, uninvoiced_after=100, payments_in_period=250, payments_after=50
    )
    # Owed as of the invoice: 900 − 100 not yet invoiced + 50 paid after the period.
    assert figures.previous_balance - figures.payments_in_period + figures.total == 850
    assert figures.previous_balance == 700


async def test_previous_balance_and_payments_in_period(db: Database) -> None:
    customer = await new_party(db, opening_balance=500)
    await post_usage(db, customer, 1000, MARCH)
    await settle_in_cash(db, customer, 300)  # received in March, before any invoice
    await jobs.advance_clock(db, APRIL_1)
    await post_usage(db, customer, 200, APRIL)
    payment = await settle_in_cash(db, customer, 1000)  # received in April
    await jobs.advance_clock(db, MAY_1)

    march, april = await invoices_of(db, customer.id)
    assert (march.previous_balance, march.payments_in_period, march.total) == (500, 300, 1000)
    assert march.balance_due == 1200
    assert (april.previous_balance, april.payments_in_period, april.total) == (1200, 1000, 200)
    async with db.session() as session:
        assert april.balance_due == await balance_of(session, customer.id) == 400
        # The March payment paid March's invoice in part when it was issued; April's paid the
        # rest, and its remaining credit paid April's invoice when that was issued.
        assert (march.amount_paid, march.status) == (1000, InvoiceStatus.PAID)
        assert (april.amount_paid, april.status, april.outstanding) == (200, InvoiceStatus.PAID, 0)
        assert [(p.id, amount) for p, amount in await payments_for_invoice(session, april.id)] == [
            (payment.id, 200)
        ]


async def test_existing_credit_pays_a_new_invoice_in_part(db: Database) -> None:
    customer = await new_party(db)
    await post_usage(db, customer, 1000, MARCH)
    await settle_in_cash(db, customer, 300)
    await jobs.advance_clock(db, APRIL_1)
    [march] = await invoices_of(db, customer.id)
    assert (march.amount_paid, march.status, march.outstanding) == (
        300,
        InvoiceStatus.PARTIALLY_PAID,
        700,
    )


# --- out of turn --------------------------------------------------------------------------


async def test_out_of_turn_invoice_takes_the_charges_so_far_and_the_regular_one_the_rest(
    db: Database,
) -> None:
    customer = await new_party(db)
    await post_usage(db, customer, 100, T0, "Day 16")
    await post_usage(db, customer, 200, datetime(2026, 3, 17, 10, tzinfo=UTC), "Day 17")
    await post_usage(db, customer, 900, datetime(2026, 4, 5, tzinfo=UTC), "Next period")
    await jobs.advance_clock(db, MARCH)
    async with db.transaction() as session:
        early = await close_period_out_of_turn(session, admin_viewer(), customer.id)
        assert early.kind == InvoiceKind.OUT_OF_TURN
        assert (early.period_start, early.period_end) == (date(2026, 3, 1), date(2026, 3, 21))
        assert (early.issue_date, early.due_date) == (date(2026, 3, 20), date(2026, 4, 3))
        assert (early.previous_balance, early.total, early.status) == (0, 300, InvoiceStatus.UNPAID)
    assert [line.description for line in await _lines(db, early.id)] == ["Day 16", "Day 17"]
    await post_usage(db, customer, 50, datetime(2026, 3, 25, tzinfo=UTC), "Day 25")
    await jobs.advance_clock(db, APRIL_1)

    _, regular = await invoices_of(db, customer.id)
    assert regular.kind == InvoiceKind.REGULAR
    assert (regular.period_start, regular.period_end) == (date(2026, 3, 1), date(2026, 4, 1))
    assert [line.description for line in await _lines(db, regular.id)] == ["Day 25"]
    assert (regular.previous_balance, regular.total) == (300, 50)


async def test_out_of_turn_with_nothing_to_invoice_is_refused(db: Database) -> None:
    customer = await new_party(db)
    async with db.transaction() as session:
        with pytest.raises(UserError) as error:
            await close_period_out_of_turn(session, admin_viewer(), customer.id)
    assert error.value.code == "NOTHING_TO_INVOICE"


async def test_out_of_turn_is_for_staff_only(db: Database) -> None:
    customer = await new_party(db)
    await post_usage(db, customer, 100, T0)
    async with db.transaction() as session:
        with pytest.raises(Forbidden):
            await close_period_out_of_turn(session, customer_viewer(customer.id), customer.id)


# --- void ---------------------------------------------------------------------------------


async def test_void_reverses_the_charges_and_releases_payments_to_other_invoices(
    db: Database,
) -> None:
    customer = await new_party(db)
    async with db.transaction() as session:
        line_1 = customer.account
        line_2 = await make_account(session, customer.customer)
        await make_charge_at(session, line_1, 300, MARCH)
        await make_charge_at(session, line_2, 200, MARCH)
        await make_charge_at(session, line_1, 400, APRIL)
    await jobs.advance_clock(db, APRIL_1)
    payment = await settle_in_cash(db, customer, 500)
    await jobs.advance_clock(db, MAY_1)
    march, april = await invoices_of(db, customer.id)
    assert (march.status, april.status) == (InvoiceStatus.PAID, InvoiceStatus.UNPAID)

    async with db.transaction() as session:
        voided = await void_invoice(session, admin_viewer(), march.id, "billed twice")
        assert (voided.status, voided.voided_at, voided.amount_paid) == (
            InvoiceStatus.VOID,
            MAY_1,
            0,
        )

    async with db.session() as session:
        assert await balance_of(session, customer.id) == 900 - 500 - 500
        statuses = (
            await session.scalars(select(Charge.status).where(Charge.invoice_id == march.id))
        ).all()
        assert set(statuses) == {ChargeStatus.VOIDED}
        [void_txn] = (
            await session.scalars(
                select(LedgerTransaction).where(LedgerTransaction.kind == TransactionKind.VOID)
            )
        ).all()
        customer_legs = (
            await session.execute(
                select(LedgerEntry.account_id, LedgerEntry.amount)
                .where(
                    LedgerEntry.transaction_id == void_txn.id,
                    LedgerEntry.ledger_account_id == customer.customer.ledger_account_id,
                )
                .order_by(LedgerEntry.account_id)
            )
        ).all()
        assert [tuple(leg) for leg in customer_legs] == [(line_1.id, -300), (line_2.id, -200)]
        refreshed = await session.get(Invoice, april.id)
        assert refreshed is not None
        assert (refreshed.amount_paid, refreshed.status) == (400, InvoiceStatus.PAID)
        assert await payments_for_invoice(session, march.id) == []
        assert [(p.id, amount) for p, amount in await payments_for_invoice(session, april.id)] == [
            (payment.id, 400)
        ]


async def test_voiding_twice_is_refused(db: Database) -> None:
    invoice = await issue_invoice(db, await new_party(db), 100, service_at=T0)
    async with db.transaction() as session:
        await void_invoice(session, admin_viewer(), invoice.id, "mistake")
        with pytest.raises(UserError) as error:
            await void_invoice(session, admin_viewer(), invoice.id, "mistake")
    assert error.value.code == "ALREADY_VOID"


async def test_void_needs_a_reason(db: Database) -> None:
    invoice = await issue_invoice(db, await new_party(db), 100, service_at=T0)
    async with db.transaction() as session:
        with pytest.raises(UserError) as error:
            await void_invoice(session, admin_viewer(), invoice.id, "  ")
    assert error.value.field == "reason"


# --- overdue ------------------------------------------------------------------------------


async def test_invoice_becomes_overdue_after_the_due_date_in_the_customer_zone(
    db: Database,
) -> None:
    auckland = await new_party(db, time_zone="Pacific/Auckland")
    los_angeles = await new_party(db, time_zone="America/Los_Angeles")
    paid = await new_party(db, time_zone="Pacific/Auckland")
    for customer in (auckland, los_angeles, paid):
        await post_usage(db, customer, 1000, MARCH)
    await settle_in_cash(db, paid, 1000)
    # Both invoices are issued on local 1 April and due on local 15 April.
    auckland_overdue = datetime(2026, 4, 15, 12, tzinfo=UTC)  # 16 April 00:00 NZST
    los_angeles_overdue = datetime(2026, 4, 16, 7, tzinfo=UTC)  # 16 April 00:00 PDT

    await jobs.advance_clock(db, auckland_overdue - timedelta(seconds=1))
    [invoice] = await invoices_of(db, auckland.id)
    assert (invoice.due_date, invoice.status) == (date(2026, 4, 15), InvoiceStatus.UNPAID)

    await jobs.advance_clock(db, auckland_overdue)
    assert (await invoices_of(db, auckland.id))[0].status == InvoiceStatus.OVERDUE
    assert (await invoices_of(db, los_angeles.id))[0].status == InvoiceStatus.UNPAID

    await jobs.advance_clock(db, los_angeles_overdue)
    assert (await invoices_of(db, los_angeles.id))[0].status == InvoiceStatus.OVERDUE
    assert (await invoices_of(db, paid.id))[0].status == InvoiceStatus.PAID

    async with db.transaction() as session:  # running it again changes nothing
        await mark_overdue(session, los_angeles_overdue)
    assert [(await invoices_of(db, c.id))[0].status for c in (auckland, los_angeles, paid)] == [
        InvoiceStatus.OVERDUE,
        InvoiceStatus.OVERDUE,
        InvoiceStatus.PAID,
    ]


# --- reading and scope --------------------------------------------------------------------


async def test_unknown_invoice_is_not_found(db: Database) -> None:
    async with db.transaction() as session:
        for attempt in (
            get_invoice(session, admin_viewer(), 424242),
            void_invoice(session, admin_viewer(), 424242, "why"),
        ):
            with pytest.raises(UserError) as error:
                await attempt
            assert error.value.code == "NOT_FOUND"


async def test_another_resellers_invoice_is_not_found(db: Database) -> None:
    await freeze_clock(db)
    async with db.transaction() as session:
        ours = await make_reseller(session, "Ours")
        theirs = await make_reseller(session, "Theirs")
        customer = await make_customer(session, reseller_viewer(theirs.id))
        await make_charge_at(
            session,
            await make_account(session, customer),
            100,
            T0,
            viewer=reseller_viewer(theirs.id),
        )
        invoice = await close_period_out_of_turn(session, reseller_viewer(theirs.id), customer.id)
        assert invoice.number == f"R{theirs.id}-000001"
        for attempt in (
            get_invoice(session, reseller_viewer(ours.id), invoice.id),
            void_invoice(session, reseller_viewer(ours.id), invoice.id, "why"),
        ):
            with pytest.raises(UserError) as error:
                await attempt
            assert error.value.code == "NOT_FOUND"
        assert (await session.scalars(invoice_query(reseller_viewer(ours.id)))).all() == []
        assert (await get_invoice(session, reseller_viewer(theirs.id), invoice.id)).id == invoice.id


async def test_invoice_query_filters_by_customer_status_and_issue_date(db: Database) -> None:
    customer = await new_party(db)
    other = await new_party(db)
    for party in (customer, other):
        await post_usage(db, party, 100, MARCH)
    await jobs.advance_clock(db, MAY_1)
    async with db.session() as session:
        mine = (
            await session.scalars(invoice_query(customer_viewer(customer.id)).order_by(Invoice.id))
        ).all()
        assert [i.customer_id for i in mine] == [customer.id, customer.id]
        march, april = mine
        paid = await session.scalars(
            invoice_query(admin_viewer(), customer_id=customer.id, status=InvoiceStatus.PAID)
        )
        assert [i.id for i in paid] == [april.id]
        issued_on_april_1 = await session.scalars(
            invoice_query(
                admin_viewer(),
                customer_id=customer.id,
                issued_from=date(2026, 4, 1),
                issued_to=date(2026, 4, 1),
            )
        )
        assert [i.id for i in issued_on_april_1] == [march.id]
        everyone = (await session.scalars(invoice_query(admin_viewer()))).all()
        assert {i.customer_id for i in everyone} == {customer.id, other.id}
        lines = await invoice_lines(session, [march.id, april.id])
        assert [len(lines[march.id]), len(lines[april.id])] == [1, 0]
