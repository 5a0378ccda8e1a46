"""Many rows of parameters as one table in one statement: how bulk work joins its own data.

Set-based work (the bill run, above all) has a value per customer or per invoice to write —
the period a customer moves on to, the number an invoice takes, the invoice a customer's
charges go on.  An ``executemany`` runs one statement per row (a thousand executor start-ups
for a batch, and no row count on asyncpg); a single ``UPDATE … FROM`` over the rows as a
table does the same work in one statement and says how many rows it changed.

On PostgreSQL the rows travel as one array per column, unnested side by side: a handful of
bind parameters however many rows there are, so the statement compiles once and costs
nothing to render.  On SQLite, which has no arrays (nor names for a ``VALUES`` list's
columns), they are one JSON parameter read back with ``json_each``, each value first put in
the form the column's type stores it in, so comparisons with stored values hold.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Insert,
    Table,
    and_,
    any_,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine


def rows_table(
    session: AsyncSession,
    name: str,
    columns: Sequence[tuple[str, TypeEngine[Any]]],
    rows: Sequence[Sequence[Any]],
) -> FromClause:
    """``rows`` (each a tuple in the order of ``columns``: name and type) as a table called
    ``name``, to join in a statement on the session's database."""
    dialect = session.bind.dialect  # type: ignore[union-attr]
    if dialect.name == "postgresql":
        by_column = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
        return select(
            *(
                func.unnest(
                    bindparam(f"{name}_{column_name}", list(cells), type_=ARRAY(column_type))
                ).label(column_name)
                for (column_name, column_type), cells in zip(columns, by_column, strict=True)
            )
        ).subquery(name)
    processors = [t.dialect_impl(dialect).bind_processor(dialect) for _, t in columns]
    stored = [
        [
            cell if process is None else process(cell)
            for cell, process in zip(row, processors, strict=True)
        ]
        for row in rows
    ]
    return (
        select(
            *(
                type_coerce(
                    func.json_extract(literal_column("value"), f"$[{i}]"), column_type
                ).label(column_name)
                for i, (column_name, column_type) in enumerate(columns)
            )
        )
        .select_from(func.json_each(bindparam(f"{name}_rows", json.dumps(stored))))
        .subquery(name)
    )


def among(session: AsyncSession, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values`` for many values — a batch's thousand customers or invoices.

    On PostgreSQL it is ``column = ANY(:array)``: one bind parameter, so the statement
    compiles once and is cached, where an ``IN`` list renders a parameter per value on every
    execution (a tenth of the bill run's Python time, measured) and PostgreSQL parses them
    all.  SQLite has no arrays: a plain ``IN`` there.
    """
    condition: ColumnElement[bool]
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        condition = column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    else:
        condition = column.in_(values)
    return condition


def matching(column: Any, key: Any, keys: Sequence[Any]) -> Any:
    """``column`` joined to a rows table's ``key`` column, whose values are ``keys``.

    Their range is stated as well: given only the join, PostgreSQL estimates a thousand
    unnested rows as many and hashes the whole target table for each statement — the cost
    then grows with the table, not with the rows.  The range makes it read just their part
    of the index.
    """
    return and_(column.between(min(keys), max(keys)), column == key)


def insert_from_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> Insert:
    """An INSERT of ``rows`` (dicts with the same keys, named for ``table``'s columns) that
    selects them from :func:`rows_table`: one statement with a bind parameter per column
    rather than per value; add ``.returning(...)`` to read the new rows back."""
    names = list(rows[0])
    cells = itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
    source = rows_table(
        session,
        f"new_{table.name}",
        [(name, table.c[name].type) for name in names],
        [cells(row) for row in rows],
    )
    return insert(table).from_select(names, select(*(source.c[name] for name in names)))
