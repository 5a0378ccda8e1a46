"""Many writers on one customer at once: the customer row lock keeps money exact.

PostgreSQL only: SQLite lets one writer in at a time, so there is no race to lose there.
Each operation runs in its own session and transaction, as concurrent requests would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import payment_methods, payments, settlement
from billing.card_charges import within
from billing.db import Database
from billing.errors import UserError
from billing.models import Charge, Invoice, Payment, PaymentAllocation, PaymentChannel
from processors.simulator import SimulatorProcessor
from tests.factories import (
    T0,
    Party,
    admin_viewer,
    balance_of,
    card_details,
    insert_invoice,
    ledger_problems,
    make_charge_at,
    new_party,
    pay_cash,
)

ADMIN = admin_viewer()
OPERATIONS = 200
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _postgres_only(is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("concurrent writers need PostgreSQL; SQLite admits one writer at a time")


async def in_own_transaction(db: Database, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async with db.sessions() as session, session.begin():
        return await work(session)


async def run_together(
    db: Database, works: list[Callable[[AsyncSession], Awaitable[T]]]
) -> list[T | BaseException]:
    return await asyncio.gather(
        *(in_own_transaction(db, work) for work in works), return_exceptions=True
    )


async def count(db: Database, model: type) -> int:
    async with db.session() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_concurrent_charges_and_payments_leave_the_exact_balance(db: Database) -> None:
    party = await new_party(db)
    async with db.transaction() as session:
        for day in (1, 2, 3):
            await insert_invoice(session, party.customer, 5_000, date(2026, 3, 10 + day))

    def charge(amount: int) -> Callable[[AsyncSession], Awaitable[object]]:
        return lambda session: make_charge_at(session, party.account, amount, T0)

    def pay(amount: int) -> Callable[[AsyncSession], Awaitable[object]]:
        return lambda session: pay_cash(session, party.customer, amount)

    charged = [7 * (i + 1) for i in range(0, OPERATIONS, 2)]
    paid = [3 * (i + 1) for i in range(1, OPERATIONS, 2)]
    works = [charge(amount) for amount in charged] + [pay(amount) for amount in paid]
    outcomes = await run_together(db, works)

    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert await count(db, Charge) == len(charged)
    assert await count(db, Payment) == len(paid)
    async with db.session() as session:
        assert await balance_of(session, party.id) == sum(charged) - sum(paid)
        assert await ledger_problems(session) == []
        allocated = await session.scalar(select(func.sum(PaymentAllocation.amount)))
        assert allocated == min(sum(paid), 15_000)
        for invoice in (await session.scalars(select(Invoice))).all():
            on_invoice = await session.scalar(
                select(func.sum(PaymentAllocation.amount)).where(
                    PaymentAllocation.invoice_id == invoice.id
                )
            )
            assert invoice.amount_paid == (on_invoice or 0) <= invoice.total
        assert not (
            await settlement.open_invoices(session, party.id)
            and await settlement.unapplied_payments(session, party.id)
        )


async def test_concurrent_double_submits_make_one_payment(db: Database) -> None:
    party = await new_party(db)
    outcomes = await run_together(
        db,
        [
            lambda session: payments.record_payment(
                session, ADMIN, party.id, 100, "USD", PaymentChannel.CASH, "same-key"
            )
            for _ in range(20)
        ],
    )
    assert {o.id for o in outcomes if isinstance(o, Payment)} == {1}
    assert len([o for o in outcomes if isinstance(o, Payment)]) == 20
    assert await count(db, Payment) == 1
    async with db.session() as session:
        assert await balance_of(session, party.id) == -100


async def test_concurrent_card_double_submits_charge_the_card_once(db: Database) -> None:
    party = await new_party(db)
    async with db.transaction() as session:
        await payment_methods.add_card(session, ADMIN, party.id, card_details())
    outcomes = await run_together(
        db,
        [
            lambda session: payments.pay_with_payment_method(
                within(session), ADMIN, party.id, 100, None, None, "same-key"
            )
            for _ in range(20)
        ],
    )
    assert len({o.id for o in outcomes if isinstance(o, Payment)}) == 1
    assert len(SimulatorProcessor().charges()) == 1
    async with db.session() as session:
        assert await balance_of(session, party.id) == -100


async def test_concurrent_refunds_never_give_back_more_than_was_paid(db: Database) -> None:
    party: Party = await new_party(db)
    async with db.transaction() as session:
        payment = await payments.record_payment(
            session, ADMIN, party.id, 100, "USD", PaymentChannel.CASH, "pay"
        )
    outcomes = await run_together(
        db,
        [
            (
                lambda key: (
                    lambda session: payments.refund_payment(
                        session, ADMIN, payment.id, 30, key, "race"
                    )
                )
            )(f"refund-{n}")
            for n in range(10)
        ],
    )
    refused = [o for o in outcomes if isinstance(o, UserError)]
    assert len(refused) == 7
    assert {error.code for error in refused} == {"REFUND_EXCEEDS_PAYMENT"}
    async with db.session() as session:
        refunded = await session.get(Payment, payment.id)
        assert refunded is not None and refunded.refunded_amount == 90
        assert await balance_of(session, party.id) == -10
        assert await ledger_problems(session) == []
