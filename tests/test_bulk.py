"""Rows of parameters as a table (billing.bulk): the same rows come back on either database,
NULLs and the stored forms of dates and instants included, so joins compare like with like."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, String, select, update
from sqlalchemy.types import TypeEngine

from billing.bulk import rows_table
from billing.db import Database
from billing.models import Customer, UTCDateTime, table_of
from tests.factories import freeze_clock, new_party

COLUMNS: list[tuple[str, TypeEngine[Any]]] = [
    ("id", BigInteger()),
    ("day", Date()),
    ("at", UTCDateTime()),
    ("note", String()),
]


async def test_rows_come_back_as_they_went_in(db: Database) -> None:
    rows = [
        (1, date(2026, 2, 28), datetime(2026, 3, 1, 23, 30, tzinfo=UTC), "first"),
        (2, None, None, None),
        (9_007_199_254_740_993, date(1999, 12, 31), datetime(2000, 1, 1, tzinfo=UTC), "x'; --"),
    ]
    async with db.session() as session:
        table = rows_table(session, "given", COLUMNS, rows)
        back = (await session.execute(select(table).order_by(table.c.id))).all()
    assert [tuple(row) for row in back] == rows


async def test_an_update_joins_the_rows_by_key_and_compares_instants(db: Database) -> None:
    """Only the customer whose row names it and whose instant is later than the stored one
    changes: comparisons with stored instants hold on both databases."""
    await freeze_clock(db)
    first, second = await new_party(db), await new_party(db)
    customers = table_of(Customer)
    async with db.transaction() as session:
        stored = await session.scalar(
            select(customers.c.next_bill_at).where(customers.c.id == first.id)
        )
        moves = rows_table(
            session,
            "move",
            [("id", BigInteger()), ("after", UTCDateTime()), ("start", Date())],
            [
                (first.id, stored, date(2030, 1, 1)),
                (second.id, datetime(1990, 1, 1, tzinfo=UTC), date(2031, 1, 1)),
            ],
        )
        result = await session.execute(
            update(customers)
            .where(customers.c.id == moves.c.id, moves.c.after < customers.c.next_bill_at)
            .values(period_start=moves.c.start)
        )
        assert result.rowcount == 1  # type: ignore[attr-defined]
        starts = dict(
            (await session.execute(select(customers.c.id, customers.c.period_start))).all()
        )
    assert starts[second.id] == date(2031, 1, 1)
    assert starts[first.id] != date(2030, 1, 1)
