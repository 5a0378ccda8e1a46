"""Fixed reads (billing.fixed_reads): asyncpg's own rows, outside a transaction on PostgreSQL,
are the session's rows — values and their Python types (enums, aware instants, dates) — and
inside a transaction, or on SQLite, the statement goes through the session."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select
from sqlalchemy.exc import MultipleResultsFound
from sqlalchemy.ext.asyncio import AsyncSession

from billing.db import Database
from billing.fixed_reads import FixedRead
from billing.models import Customer, Invoice, InvoiceStatus
from tests.factories import insert_invoice, new_party

#: A statement with a plain, an expanding and an enum-typed expanding parameter, and columns
#: of every kind the hot reads return (enum, date, UTC instant, integers, text, nulls).
INVOICES = FixedRead(
    select(*Invoice.__table__.c)
    .where(
        Invoice.__table__.c.customer_id.in_(bindparam("customer_ids", expanding=True)),
        Invoice.__table__.c.status.in_(bindparam("statuses", expanding=True)),
        Invoice.__table__.c.total >= bindparam("at_least"),
    )
    .order_by(Invoice.__table__.c.id)
)


class _Statements:
    """Counts the statements SQLAlchemy sends (asyncpg's own fetches are not among them)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_: Any) -> None:
        self.count += 1


@pytest.fixture
def through_the_session(db: Database) -> Iterator[_Statements]:
    counter = _Statements()
    event.listen(db.engine.sync_engine, "before_cursor_execute", counter)
    yield counter
    event.remove(db.engine.sync_engine, "before_cursor_execute", counter)


async def _invoices(db: Database) -> tuple[int, int]:
    first, second = await new_party(db), await new_party(db, account_number="B-2")
    async with db.transaction() as session:
        for party, total in ((first, 500), (first, 700), (second, 900), (first, 50)):
            customer = await session.get(Customer, party.customer.id)
            assert customer is not None
            await insert_invoice(session, customer, total, date(2026, 11, 1))
    return first.customer.id, second.customer.id


PARAMS = {"statuses": [InvoiceStatus.UNPAID, InvoiceStatus.PAID], "at_least": 100}


async def _autocommit(session: AsyncSession) -> None:
    await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


async def test_the_rows_are_the_sessions_rows(
    db: Database, is_postgres: bool, through_the_session: _Statements
) -> None:
    first, second = await _invoices(db)
    params = PARAMS | {"customer_ids": [first, second]}
    async with db.session() as session:
        expected = (await session.execute(INVOICES.statement, params)).all()
    async with db.session() as session:
        if is_postgres:
            await _autocommit(session)
        before = through_the_session.count
        rows = await INVOICES.rows(session, params)
        read_by_the_session = through_the_session.count - before
    assert [r.total for r in rows] == [500, 700, 900]  # the 50 is under at_least
    assert [tuple(r) for r in rows] == [tuple(r) for r in expected]
    for row, want in zip(rows, expected, strict=True):
        assert [type(v) for v in row] == [type(v) for v in want]
        assert row.status is InvoiceStatus.UNPAID and row.created_at.tzinfo is not None
        assert row[2:4] == tuple(want)[2:4]
    assert read_by_the_session == (0 if is_postgres else 1)


async def test_in_a_transaction_the_session_reads(
    db: Database, through_the_session: _Statements
) -> None:
    first, _ = await _invoices(db)
    async with db.transaction() as session:
        before = through_the_session.count
        rows = await INVOICES.rows(session, PARAMS | {"customer_ids": [first]})
        assert through_the_session.count - before == 1
    assert [r.total for r in rows] == [500, 700]


async def test_one_or_none(db: Database, is_postgres: bool) -> None:
    first, _ = await _invoices(db)
    async with db.session() as session:
        if is_postgres:
            await _autocommit(session)
        none = await INVOICES.one_or_none(session, PARAMS | {"customer_ids": [first + 99]})
        again = await INVOICES.one_or_none(
            session, {"customer_ids": [first], "statuses": [InvoiceStatus.UNPAID], "at_least": 600}
        )
        with pytest.raises(MultipleResultsFound):
            await INVOICES.one_or_none(session, PARAMS | {"customer_ids": [first]})
    assert none is None
    assert again is not None and again.total == 700


async def test_a_transaction_begun_after_the_reads_reads_through_the_session(
    db: Database, is_postgres: bool, through_the_session: _Statements
) -> None:
    """What a mutation does (``Context.transaction``): reads outside a transaction, then a
    transaction of its own on the same session, where a fixed read must be one of its
    statements."""
    first, _ = await _invoices(db)
    params = PARAMS | {"customer_ids": [first]}
    async with db.session() as session:
        if is_postgres:
            await _autocommit(session)
        outside = through_the_session.count
        await INVOICES.rows(session, params)
        await INVOICES.rows(session, params)
        outside = through_the_session.count - outside
        await session.rollback()
        async with session.begin():
            inside = through_the_session.count
            rows = await INVOICES.rows(session, params)
            inside = through_the_session.count - inside
    assert outside == (0 if is_postgres else 2)
    assert inside == 1
    assert [r.total for r in rows] == [500, 700]
