"""Payments: recording, settling invoices, refunds, voids, card payments and their rules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import payment_methods, payments, settlement
from billing.access import Viewer
from billing.card_charges import within
from billing.db import Database
from billing.errors import Forbidden, UserError
from billing.models import (
    ApiKeyScope,
    IdempotencyRecord,
    Invoice,
    InvoiceStatus,
    LedgerTransaction,
    Payment,
    PaymentChannel,
    PaymentStatus,
    Role,
    TransactionKind,
)
from processors import simulator
from processors.simulator import SimulatorProcessor
from tests.factories import (
    APPROVE,
    DECLINE,
    INSUFFICIENT,
    T0,
    Party,
    admin_viewer,
    balance_of,
    card_details,
    customer_viewer,
    insert_invoice,
    ledger_problems,
    make_charge_at,
    make_reseller,
    new_party,
    pay_cash,
    reseller_viewer,
)

ADMIN = admin_viewer()
DAY1 = date(2026, 3, 10)
DAY2 = date(2026, 3, 11)


async def record(db: Database, party: Party, amount: int, key: str | None = None) -> Payment:
    """A cash payment in its own transaction, under ``key`` or a fresh idempotency key."""
    async with db.transaction() as session:
        return await payments.record_payment(
            session,
            ADMIN,
            party.id,
            amount,
            "USD",
            PaymentChannel.CASH,
            key or uuid4().hex,
        )


async def invoices(db: Database, party: Party, *totals_by_day: tuple[int, date]) -> list[int]:
    """Open invoices of the given totals and issue dates, settled with any credit at once."""
    async with db.transaction() as session:
        made = [
            await insert_invoice(session, party.customer, total, day)
            for total, day in totals_by_day
        ]
        await settlement.apply_credit(session, party.customer, T0)
    return [invoice.id for invoice in made]


async def invoice_state(db: Database, invoice_id: int) -> tuple[int, InvoiceStatus]:
    async with db.session() as session:
        invoice = await session.get(Invoice, invoice_id)
        assert invoice is not None
        return invoice.amount_paid, invoice.status


async def balance(db: Database, party: Party) -> int:
    async with db.session() as session:
        return await balance_of(session, party.id)


async def payment_count(db: Database) -> int:
    async with db.session() as session:
        return await session.scalar(select(func.count()).select_from(Payment)) or 0


async def add_card(db: Database, party: Party, number: str = APPROVE) -> int:
    async with db.transaction() as session:
        method = await payment_methods.add_card(session, ADMIN, party.id, card_details(number))
    return method.id


async def pay_by_card(
    db: Database,
    party: Party,
    amount: int | None = None,
    invoice_id: int | None = None,
    key: str = "card-1",
) -> Payment:
    return await payments.pay_with_payment_method(
        db.transaction, customer_viewer(party.id), party.id, amount, invoice_id, None, key
    )


@pytest.fixture(autouse=True)
async def healthy_ledger(db: Database):  # type: ignore[no-untyped-def]
    """Every test must leave the books equal to their entries and every transaction balanced."""
    yield
    async with db.session() as session:
        assert await ledger_problems(session) == []


async def assert_refused(
    db: Database, party: Party, code: str, call: Callable[[AsyncSession], Awaitable[object]]
) -> None:
    """``call`` fails with ``code`` and leaves no payment row and the balance unchanged."""
    balance_before, count_before = await balance(db, party), await payment_count(db)
    with pytest.raises(UserError) as caught:
        async with db.transaction() as session:
            await call(session)
    assert caught.value.code == code
    assert await balance(db, party) == balance_before
    assert await payment_count(db) == count_before


# --- recording and settlement -----------------------------------------------------------------


async def test_payment_settles_open_invoices_oldest_first_and_the_rest_is_credit(
    db: Database,
) -> None:
    party = await new_party(db)
    # Inserted newest first: the order comes from the issue date, not the row id.
    newer, older = await invoices(db, party, (80, DAY2), (100, DAY1))
    payment = await record(db, party, 250)
    assert payment.status == PaymentStatus.COMPLETED
    assert await invoice_state(db, older) == (100, InvoiceStatus.PAID)
    assert await invoice_state(db, newer) == (80, InvoiceStatus.PAID)
    async with db.session() as session:
        allocations = (await payments.allocations_for_payments(session, [payment.id]))[payment.id]
        assert [(a.invoice_id, a.amount) for a in allocations] == [(older, 100), (newer, 80)]
        unapplied = await settlement.unapplied_payments(session, party.id)
        assert [(p.id, free) for p, free in unapplied] == [(payment.id, 70)]
    assert await balance(db, party) == -250


async def test_a_short_payment_leaves_the_newer_invoice_partially_paid(db: Database) -> None:
    party = await new_party(db)
    older, newer = await invoices(db, party, (100, DAY1), (80, DAY2))
    await record(db, party, 150)
    assert await invoice_state(db, older) == (100, InvoiceStatus.PAID)
    assert await invoice_state(db, newer) == (50, InvoiceStatus.PARTIALLY_PAID)


async def test_a_later_invoice_consumes_credit(db: Database) -> None:
    party = await new_party(db)
    await record(db, party, 100)
    first, second = await invoices(db, party, (60, DAY1), (60, DAY2))
    assert await invoice_state(db, first) == (60, InvoiceStatus.PAID)
    assert await invoice_state(db, second) == (40, InvoiceStatus.PARTIALLY_PAID)


async def test_payment_books_customer_down_and_cash_up(db: Database) -> None:
    party = await new_party(db)
    async with db.transaction() as session:
        await make_charge_at(session, party.account, 500, T0)
    payment = await record(db, party, 200)
    assert await balance(db, party) == 300
    async with db.session() as session:
        txn = await session.get(LedgerTransaction, payment.transaction_id)
        assert txn is not None and txn.kind == TransactionKind.PAYMENT
        assert sorted(entry.amount for entry in txn.entries) == [-200, 200]


# --- refunds ----------------------------------------------------------------------------------


async def test_full_refund_reopens_the_invoices_it_paid_and_moves_the_balance_back(
    db: Database,
) -> None:
    party = await new_party(db)
    async with db.transaction() as session:
        await make_charge_at(session, party.account, 100, T0)
    (invoice,) = await invoices(db, party, (100, DAY1))
    payment = await record(db, party, 100)
    assert await balance(db, party) == 0
    async with db.transaction() as session:
        refunded = await payments.refund_payment(
            session, ADMIN, payment.id, None, "r1", "customer left"
        )
    assert (refunded.status, refunded.refunded_amount) == (PaymentStatus.REFUNDED, 100)
    assert await invoice_state(db, invoice) == (0, InvoiceStatus.UNPAID)
    assert await balance(db, party) == 100
    async with db.session() as session:
        refund = await session.scalar(
            select(LedgerTransaction).where(LedgerTransaction.kind == TransactionKind.REFUND)
        )
        assert refund is not None and refund.reverses_id == payment.transaction_id


async def test_partial_refund_takes_money_back_off_the_newest_invoice_first(
    db: Database,
) -> None:
    party = await new_party(db)
    older, newer = await invoices(db, party, (60, DAY1), (40, DAY2))
    payment = await record(db, party, 100)
    async with db.transaction() as session:
        partly = await payments.refund_payment(session, ADMIN, payment.id, 30, "r1", "goodwill")
    assert (partly.status, partly.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 30)
    assert await invoice_state(db, older) == (60, InvoiceStatus.PAID)
    assert await invoice_state(db, newer) == (10, InvoiceStatus.PARTIALLY_PAID)
    assert await balance(db, party) == -70
    async with db.transaction() as session:
        rest = await payments.refund_payment(session, ADMIN, payment.id, None, "r2", "closing")
    assert (rest.status, rest.refunded_amount) == (PaymentStatus.REFUNDED, 100)
    assert await invoice_state(db, older) == (0, InvoiceStatus.UNPAID)
    assert await balance(db, party) == 0


async def test_refunding_unapplied_credit_leaves_paid_invoices_alone(db: Database) -> None:
    party = await new_party(db)
    (invoice,) = await invoices(db, party, (30, DAY1))
    payment = await record(db, party, 100)
    async with db.transaction() as session:
        await payments.refund_payment(session, ADMIN, payment.id, 70, "r1", "overpaid")
    assert await invoice_state(db, invoice) == (30, InvoiceStatus.PAID)


async def test_an_invoice_reopened_by_a_refund_is_covered_by_other_credit(db: Database) -> None:
    party = await new_party(db)
    (invoice,) = await invoices(db, party, (100, DAY1))
    first = await record(db, party, 100)
    await record(db, party, 50)
    async with db.transaction() as session:
        await payments.refund_payment(session, ADMIN, first.id, None, "r1", "wrong account")
    assert await invoice_state(db, invoice) == (50, InvoiceStatus.PARTIALLY_PAID)


async def test_refund_beyond_what_is_left_is_refused(db: Database) -> None:
    party = await new_party(db)
    payment = await record(db, party, 100)

    def refund(amount: int | None, key: str) -> Callable[[AsyncSession], Awaitable[object]]:
        return lambda session: payments.refund_payment(
            session, ADMIN, payment.id, amount, key, "why"
        )

    await assert_refused(db, party, "REFUND_EXCEEDS_PAYMENT", refund(101, "r1"))
    await assert_refused(db, party, "AMOUNT_NOT_POSITIVE", refund(0, "r2"))
    async with db.transaction() as session:
        await payments.refund_payment(session, ADMIN, payment.id, None, "r3", "all of it")
    await assert_refused(db, party, "REFUND_EXCEEDS_PAYMENT", refund(None, "r4"))


async def test_replayed_refund_refunds_once(db: Database) -> None:
    party = await new_party(db)
    payment = await record(db, party, 100)
    for _ in range(2):
        async with db.transaction() as session:
            refunded = await payments.refund_payment(session, ADMIN, payment.id, 40, "r1", "why")
        assert refunded.refunded_amount == 40
    assert await balance(db, party) == -60


async def test_card_refund_goes_through_the_processor(db: Database) -> None:
    party = await new_party(db)
    await add_card(db, party)
    payment = await pay_by_card(db, party, 500)
    async with db.transaction() as session:
        refunded = await payments.refund_payment(session, ADMIN, payment.id, 200, "r1", "why")
    assert refunded.status == PaymentStatus.PARTIALLY_REFUNDED
    assert await balance(db, party) == -300


async def test_a_refund_the_processor_refuses_writes_nothing(db: Database) -> None:
    party = await new_party(db)
    await add_card(db, party)
    payment = await pay_by_card(db, party, 500)
    simulator.reset()  # the processor no longer knows the charge, so it refuses the refund
    await assert_refused(
        db,
        party,
        "REFUND_FAILED",
        lambda session: payments.refund_payment(session, ADMIN, payment.id, None, "r1", "why"),
    )
    async with db.session() as session:
        unchanged = await session.get(Payment, payment.id)
        assert unchanged is not None and unchanged.status == PaymentStatus.COMPLETED


# --- voids ------------------------------------------------------------------------------------


async def test_void_reverses_the_payment_and_reopens_its_invoices(db: Database) -> None:
    party = await new_party(db)
    (invoice,) = await invoices(db, party, (100, DAY1))
    payment = await record(db, party, 100)
    async with db.transaction() as session:
        voided = await payments.void_payment(session, ADMIN, payment.id, "bounced cheque")
    assert voided.status == PaymentStatus.VOIDED
    assert await invoice_state(db, invoice) == (0, InvoiceStatus.UNPAID)
    assert await balance(db, party) == 0
    async with db.session() as session:
        void = await session.scalar(
            select(LedgerTransaction).where(LedgerTransaction.kind == TransactionKind.VOID)
        )
        assert void is not None and void.reverses_id == payment.transaction_id


async def test_an_invoice_reopened_by_a_void_is_covered_by_other_credit(db: Database) -> None:
    party = await new_party(db)
    (invoice,) = await invoices(db, party, (100, DAY1))
    first = await record(db, party, 100)
    await record(db, party, 100)
    async with db.transaction() as session:
        await payments.void_payment(session, ADMIN, first.id, "entered twice")
    assert await invoice_state(db, invoice) == (100, InvoiceStatus.PAID)
    assert await balance(db, party) == -100


async def test_only_unrefunded_cash_payments_can_be_voided(db: Database) -> None:
    party = await new_party(db)
    refunded = await record(db, party, 100)
    async with db.transaction() as session:
        await payments.refund_payment(session, ADMIN, refunded.id, 10, "r1", "why")
    await assert_refused(
        db, party, "NOT_VOIDABLE", lambda s: payments.void_payment(s, ADMIN, refunded.id, "why")
    )
    voided = await record(db, party, 100)
    async with db.transaction() as session:
        await payments.void_payment(session, ADMIN, voided.id, "why")
    await assert_refused(
        db, party, "NOT_VOIDABLE", lambda s: payments.void_payment(s, ADMIN, voided.id, "again")
    )
    await add_card(db, party)
    card = await pay_by_card(db, party, 100)
    await assert_refused(
        db, party, "NOT_VOIDABLE", lambda s: payments.void_payment(s, ADMIN, card.id, "why")
    )


# --- card payments ----------------------------------------------------------------------------


async def test_approved_card_payment_pays_the_chosen_invoice_first(db: Database) -> None:
    party = await new_party(db)
    older, chosen = await invoices(db, party, (100, DAY1), (50, DAY2))
    await add_card(db, party)
    payment = await pay_by_card(db, party, invoice_id=chosen)
    assert (payment.status, payment.amount, payment.method) == (
        PaymentStatus.COMPLETED,
        50,
        PaymentChannel.CARD,
    )
    assert payment.processor_reference is not None
    assert await invoice_state(db, chosen) == (50, InvoiceStatus.PAID)
    assert await invoice_state(db, older) == (0, InvoiceStatus.UNPAID)
    assert await balance(db, party) == -50
    assert [c.amount for c in SimulatorProcessor().charges()] == [50]


async def test_card_top_up_becomes_credit_for_the_oldest_invoices(db: Database) -> None:
    party = await new_party(db)
    older, newer = await invoices(db, party, (100, DAY1), (50, DAY2))
    await add_card(db, party)
    await pay_by_card(db, party, 120)
    assert await invoice_state(db, older) == (100, InvoiceStatus.PAID)
    assert await invoice_state(db, newer) == (20, InvoiceStatus.PARTIALLY_PAID)


@pytest.mark.parametrize(
    ("number", "code", "decline_code"),
    [
        (DECLINE, "CARD_DECLINED", "card_declined"),
        (INSUFFICIENT, "INSUFFICIENT_FUNDS", "insufficient_funds"),
    ],
)
async def test_declined_card_fails_in_plain_words_and_moves_no_money(
    db: Database, number: str, code: str, decline_code: str
) -> None:
    party = await new_party(db)
    (invoice,) = await invoices(db, party, (100, DAY1))
    await add_card(db, party, number)
    payment = await pay_by_card(db, party, invoice_id=invoice)
    assert (payment.status, payment.decline_code, payment.transaction_id) == (
        PaymentStatus.FAILED,
        decline_code,
        None,
    )
    error = payments.payment_error(payment)
    assert error is not None and error.code == code and error.message == payment.message
    assert await invoice_state(db, invoice) == (0, InvoiceStatus.UNPAID)
    assert await balance(db, party) == 0


async def test_a_completed_payment_has_no_payment_error(db: Database) -> None:
    party = await new_party(db)
    assert payments.payment_error(await record(db, party, 10)) is None


async def test_replayed_card_payment_charges_once(db: Database) -> None:
    party = await new_party(db)
    await add_card(db, party)
    first = await pay_by_card(db, party, 100, key="same")
    again = await pay_by_card(db, party, 100, key="same")
    assert again.id == first.id
    assert len(SimulatorProcessor().charges()) == 1
    assert await balance(db, party) == -100


async def test_the_ledger_names_payments_as_their_payer_knows_them(db: Database) -> None:
    """A card by brand and last digits, a transfer by its reference: never kassa's row ids."""
    party = await new_party(db)
    await add_card(db, party)
    card = await pay_by_card(db, party, 500)
    async with db.transaction() as session:
        wire = await payments.record_payment(
            session, ADMIN, party.id, 300, "USD", PaymentChannel.WIRE, "w1", reference="77-A"
        )
        await payments.refund_payment(session, ADMIN, card.id, 200, "r1", "goodwill")
        await payments.void_payment(session, ADMIN, wire.id, "wrong customer")
    async with db.session() as session:
        descriptions = list(
            await session.scalars(
                select(LedgerTransaction.description)
                .where(LedgerTransaction.customer_id == party.id)
                .order_by(LedgerTransaction.id)
            )
        )
    last4 = APPROVE[-4:]
    assert descriptions[-4:] == [
        f"Card payment (Visa ending {last4})",
        "Bank transfer (ref 77-A)",
        f"Refund of card payment (Visa ending {last4}): goodwill",
        "Void of bank transfer (ref 77-A): wrong customer",
    ]
    assert not any(str(card.id) in text.split() for text in descriptions)


async def test_card_payment_amount_rules(db: Database) -> None:
    party = await new_party(db)
    (invoice,) = await invoices(db, party, (100, DAY1))

    def pay(
        amount: int | None, invoice_id: int | None, method_id: int | None = None
    ) -> Callable[[AsyncSession], Awaitable[object]]:
        return lambda session: payments.pay_with_payment_method(
            within(session), ADMIN, party.id, amount, invoice_id, method_id, "k"
        )

    await assert_refused(db, party, "NO_PAYMENT_METHOD", pay(10, None))
    await add_card(db, party)
    await assert_refused(db, party, "AMOUNT_EXCEEDS_OUTSTANDING", pay(101, invoice))
    await assert_refused(db, party, "REQUIRED", pay(None, None))
    await assert_refused(db, party, "AMOUNT_NOT_POSITIVE", pay(0, None))
    await assert_refused(db, party, "NOT_FOUND", pay(10, invoice + 1000))
    other = await new_party(db, name="Other")
    other_card = await add_card(db, other)
    await assert_refused(db, party, "NOT_FOUND", pay(10, None, other_card))
    await pay_by_card(db, party, invoice_id=invoice)
    await assert_refused(db, party, "INVOICE_NOT_OPEN", pay(None, invoice))


async def test_a_customer_cannot_pay_for_another_customer(db: Database) -> None:
    party, other = await new_party(db), await new_party(db, name="Other")
    await add_card(db, other)
    await assert_refused(
        db,
        other,
        "NOT_FOUND",
        lambda session: payments.pay_with_payment_method(
            within(session), customer_viewer(party.id), other.id, 10, None, None, "k"
        ),
    )


# --- idempotency ------------------------------------------------------------------------------


async def test_double_submit_with_the_same_key_makes_one_payment(db: Database) -> None:
    party = await new_party(db)
    first = await record(db, party, 100, key="once")
    second = await record(db, party, 100, key="once")
    assert second.id == first.id
    assert await payment_count(db) == 1
    assert await balance(db, party) == -100


async def test_key_reused_with_a_different_amount_is_refused_and_writes_nothing(
    db: Database,
) -> None:
    party = await new_party(db)
    await record(db, party, 100, key="once")
    await assert_refused(
        db,
        party,
        "IDEMPOTENCY_KEY_REUSED",
        lambda session: payments.record_payment(
            session, ADMIN, party.id, 101, "USD", PaymentChannel.CASH, "once"
        ),
    )
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1


# --- bad input and scope ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "method", "code"),
    [
        (0, "USD", PaymentChannel.CASH, "AMOUNT_NOT_POSITIVE"),
        (-5, "USD", PaymentChannel.CASH, "AMOUNT_NOT_POSITIVE"),
        (100, "EUR", PaymentChannel.CASH, "CURRENCY_MISMATCH"),
        (100, "XXX", PaymentChannel.WIRE, "INVALID_CURRENCY"),
        (100, "USD", PaymentChannel.CARD, "INVALID_METHOD"),
    ],
)
async def test_bad_payment_input_is_refused_and_writes_nothing(
    db: Database, amount: int, currency: str, method: PaymentChannel, code: str
) -> None:
    party = await new_party(db)
    await assert_refused(
        db,
        party,
        code,
        lambda session: payments.record_payment(
            session, ADMIN, party.id, amount, currency, method, "k"
        ),
    )


async def test_a_payment_received_in_the_future_is_refused(db: Database) -> None:
    party = await new_party(db)
    await assert_refused(
        db,
        party,
        "INVALID_TIME",
        lambda session: payments.record_payment(
            session,
            ADMIN,
            party.id,
            100,
            "USD",
            PaymentChannel.CHEQUE,
            "k",
            received_at=T0 + timedelta(days=1),
        ),
    )


async def test_payments_to_unknown_or_out_of_scope_customers_are_not_found(db: Database) -> None:
    party = await new_party(db)
    async with db.transaction() as session:
        reseller = await make_reseller(session)
    cases = [
        (ADMIN, party.id + 1000),  # no such customer
        (reseller_viewer(reseller.id), party.id),  # another owner's customer
    ]
    for viewer, customer_id in cases:

        def pay_cash_for(
            session: AsyncSession, viewer: Viewer = viewer, customer_id: int = customer_id
        ) -> Awaitable[Payment]:
            return payments.record_payment(
                session, viewer, customer_id, 100, "USD", PaymentChannel.CASH, "k"
            )

        await assert_refused(db, party, "NOT_FOUND", pay_cash_for)
    payment = await record(db, party, 100)
    with pytest.raises(UserError, match="payment not found"):
        async with db.session() as session:
            await payments.get_payment(session, customer_viewer(party.id + 1000), payment.id)


async def test_customers_and_read_only_keys_cannot_record_payments(db: Database) -> None:
    party = await new_party(db)
    read_only = Viewer(role=Role.ADMIN, api_key_id=7, scope=ApiKeyScope.READ)
    for viewer in (customer_viewer(party.id), read_only):
        with pytest.raises(Forbidden):
            async with db.transaction() as session:
                await payments.record_payment(
                    session, viewer, party.id, 100, "USD", PaymentChannel.CASH, "k"
                )
    assert await payment_count(db) == 0


async def test_payment_query_filters_within_the_viewers_scope(db: Database) -> None:
    party, other = await new_party(db), await new_party(db, name="Other")
    mine = await record(db, party, 100)
    await record(db, other, 100)
    async with db.transaction() as session:
        wire = await payments.record_payment(
            session,
            ADMIN,
            party.id,
            5,
            "USD",
            PaymentChannel.WIRE,
            "w",
            received_at=T0 - timedelta(days=3),
        )

    async def ids(viewer: Viewer | None = None, **filters: object) -> set[int]:
        viewer = viewer or customer_viewer(party.id)
        async with db.session() as session:
            query = payments.payment_query(viewer, **filters)  # type: ignore[arg-type]
            return {payment.id for payment in await session.scalars(query)}

    assert await ids() == {mine.id, wire.id}
    assert await ids(method=PaymentChannel.WIRE) == {wire.id}
    assert await ids(received_to=T0 - timedelta(days=1)) == {wire.id}
    assert await ids(received_from=T0) == {mine.id}
    assert await ids(status=PaymentStatus.VOIDED) == set()
    assert len(await ids(ADMIN, customer_id=other.id)) == 1


# --- the balance property ---------------------------------------------------------------------

#: (what, amount, which earlier payment a refund or void picks).
Operation = tuple[str, int, int]

operations = st.lists(
    st.tuples(
        st.sampled_from(["charge", "payment", "card", "invoice", "refund", "void"]),
        st.integers(1, 10_000),
        st.integers(0, 20),
    ),
    max_size=10,
)


async def apply_operation(
    session: AsyncSession, party: Party, op: Operation
) -> tuple[int, int, int]:
    """Run one drawn operation; returns how it moved (charged, paid, refunded)."""
    kind, amount, pick = op
    key = uuid4().hex
    if kind == "charge":
        await make_charge_at(session, party.account, amount, T0)
        return amount, 0, 0
    if kind == "payment":
        await pay_cash(session, party.customer, amount)
        return 0, amount, 0
    if kind == "card":
        await payments.pay_with_payment_method(
            within(session), ADMIN, party.id, amount, None, None, key
        )
        return 0, amount, 0
    if kind == "invoice":
        await insert_invoice(session, party.customer, amount, T0.date())
        await settlement.apply_credit(session, party.customer, T0)
        return 0, 0, 0
    made = (
        await session.scalars(
            select(Payment).where(Payment.customer_id == party.id).order_by(Payment.id)
        )
    ).all()
    if not made:
        return 0, 0, 0
    payment = made[pick % len(made)]
    left = payment.amount - payment.refunded_amount
    if kind == "refund" and payment.status in settlement.SETTLED_PAYMENT_STATUSES and left:
        refund = min(amount, left)
        await payments.refund_payment(session, ADMIN, payment.id, refund, key, "property")
        return 0, 0, refund
    if (
        kind == "void"
        and payment.method != PaymentChannel.CARD
        and payment.status == PaymentStatus.COMPLETED
        and not payment.refunded_amount
    ):
        await payments.void_payment(session, ADMIN, payment.id, "property")
        return 0, -payment.amount, 0
    return 0, 0, 0


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
async def test_balance_is_charges_minus_payments_plus_refunds(
    db: Database, ops: list[Operation]
) -> None:
    party = await new_party(db)
    await add_card(db, party)
    charged = paid = refunded = 0
    for op in ops:
        async with db.transaction() as session:
            moved = await apply_operation(session, party, op)
        charged, paid, refunded = charged + moved[0], paid + moved[1], refunded + moved[2]
    async with db.session() as session:
        assert await balance_of(session, party.id) == charged - paid + refunded
        assert await ledger_problems(session) == []
        made = (await session.scalars(select(Payment).where(Payment.customer_id == party.id))).all()
        allocations = await payments.allocations_for_payments(session, [p.id for p in made])
        on_invoice: dict[int, int] = {}
        for payment in made:
            allocated = sum(a.amount for a in allocations[payment.id])
            kept = (
                payment.amount - payment.refunded_amount
                if payment.status in settlement.SETTLED_PAYMENT_STATUSES
                else 0
            )
            assert 0 <= allocated <= kept
            for allocation in allocations[payment.id]:
                on_invoice[allocation.invoice_id] = (
                    on_invoice.get(allocation.invoice_id, 0) + allocation.amount
                )
        for invoice in (
            await session.scalars(select(Invoice).where(Invoice.customer_id == party.id))
        ).all():
            assert invoice.amount_paid == on_invoice.get(invoice.id, 0)
            assert 0 <= invoice.amount_paid <= invoice.total
        # Credit never sits unused while an invoice is open.
        assert not (
            await settlement.open_invoices(session, party.id)
            and await settlement.unapplied_payments(session, party.id)
        )
