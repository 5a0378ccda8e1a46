"""Fixed reads: a hot read statement, built once, run on PostgreSQL by asyncpg itself.

A statement executed through the session costs ~200 µs of CPU before PostgreSQL sees it —
the session, the execution context, the greenlet that carries asyncpg's coroutine through
SQLAlchemy's synchronous core, the cursor's adaptation, the result's metadata — against
~100 µs for asyncpg's own ``fetch`` of the same text (``bench.api_profile``'s process,
2,000 of each).  The API dashboard runs three such statements a request (the key, the
customer, its lists), each the same text every time, so :class:`FixedRead` compiles one
once and, where it may, hands the text to asyncpg straight, with the parameters and the
rows passed through the very bind and result processors of the statement's types that
SQLAlchemy would apply: an enum comes back an enum, a UTC timestamp aware, as before.

"Where it may" is a connection outside any transaction (``AUTOCOMMIT``: a request's reads
on PostgreSQL, see :func:`read_without_transaction`), where asyncpg's
statements and SQLAlchemy's see the same state by construction.  Everywhere else — SQLite,
a transaction (whose ``BEGIN`` SQLAlchemy issues lazily, so a statement of asyncpg's
might run before it) — the statement goes through the session as any other.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CompoundSelect, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import MultipleResultsFound
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True, slots=True)
class _Compiled:
    """The statement compiled for asyncpg, with what turns values into parameters and
    records into rows."""

    compiled: SQLCompiler
    #: Bind processors by parameter name (an expanding parameter's is applied per element).
    binds: dict[str, tuple[Callable[[Any], Any], bool]]
    #: Result processors by column position, only those columns that have one.
    results: tuple[tuple[int, Callable[[Any], Any]], ...]
    #: The rows' class: a named tuple of the statement's column keys.
    row: Any
    #: The parameters' names in the order the statement's text takes them, when it takes
    #: them as they are (no list to expand into ``IN (…)``): then the text is the compiled
    #: text every time, and expanding it per request (~20 µs) is spared.
    positional: tuple[str, ...] | None


class FixedRead:
    """A read statement built once (module level) and run many times with new parameters."""

    def __init__(self, statement: Select[Any] | CompoundSelect[Any]) -> None:
        self.statement = statement
        self._asyncpg: _Compiled | None = None

    async def rows(self, session: AsyncSession, params: Mapping[str, Any]) -> Sequence[Any]:
        """The statement's rows for ``params``: named tuples read by asyncpg where it may
        (see the module docstring), the session's ``Row`` objects elsewhere — both read by
        attribute, position and slice alike."""
        driver = await _driver(session)
        if driver is None:
            found: Sequence[Any] = (await session.execute(self.statement, params)).all()
            return found
        compiled = self._asyncpg or self._compile(session.get_bind().dialect)
        processed = {name: _bind(compiled.binds.get(name), value) for name, value in params.items()}
        text, parameters = _statement(compiled, processed)
        records = await self._fetch(driver, text, parameters)
        if not compiled.results:
            return [compiled.row._make(record) for record in records]
        rows = []
        for record in records:
            values = list(record)
            for position, process in compiled.results:
                if (value := values[position]) is not None:  # NULL is None for every type
                    values[position] = process(value)
            rows.append(compiled.row._make(values))
        return rows

    @staticmethod
    async def _fetch(driver: Any, statement: str, parameters: Sequence[Any]) -> Sequence[Any]:
        """asyncpg's ``fetch``: the one place a fixed read leaves SQLAlchemy's sight
        (``tests/statements.py`` counts the statements sent here too)."""
        records: Sequence[Any] = await driver.fetch(statement, *parameters)
        return records

    async def one_or_none(self, session: AsyncSession, params: Mapping[str, Any]) -> Any:
        """The one row for ``params``, or None; more than one is an error, as with
        :meth:`sqlalchemy.engine.Result.one_or_none`."""
        rows = await self.rows(session, params)
        if len(rows) > 1:
            raise MultipleResultsFound("a fixed read that expects one row found several")
        return rows[0] if rows else None

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        binds: dict[str, tuple[Callable[[Any], Any], bool]] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                binds[name] = (process, bool(bind.expanding))
        columns = self.statement.selected_columns
        results = tuple(
            (position, process)
            for position, column in enumerate(columns)
            if (process := column.type.dialect_impl(dialect).result_processor(dialect, None))
        )
        row = namedtuple("Row", columns.keys())  # type: ignore[misc]
        expands = compiled.post_compile_params or compiled.literal_execute_params
        positional = None if expands else tuple(compiled.positiontup or ())
        self._asyncpg = _Compiled(compiled, binds, results, row, positional)
        return self._asyncpg


#: ``session.info`` key of :func:`_driver`'s answer and the transaction it holds for.
_DRIVER = "kassa.fixed_read_driver"


async def _driver(session: AsyncSession) -> Any:
    """The asyncpg connection a fixed read may use, or None (see the module docstring).

    Asked once per transaction of the session (a request's reads are one, and
    :func:`read_without_transaction` answers it as it begins): finding the connection
    through the session costs a trip through SQLAlchemy's greenlet.
    """
    if session.get_bind().dialect.driver != "asyncpg":  # SQLite: no trip to the connection
        return None
    transaction = session.sync_session.get_transaction()
    held = session.info.get(_DRIVER)
    if held is not None and transaction is not None and held[0] is transaction:
        return held[1]
    return _hold_driver(session, await session.connection())


def _hold_driver(session: AsyncSession, connection: AsyncConnection) -> Any:
    """Note (and return) the driver connection fixed reads may use in ``session``'s
    present transaction, read off the connection already checked out (no trip through
    the greenlet)."""
    sync = connection.sync_connection
    assert sync is not None
    driver = None
    if sync.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        driver = sync.connection.driver_connection
    session.info[_DRIVER] = (session.sync_session.get_transaction(), driver)
    return driver


async def read_without_transaction(session: AsyncSession) -> None:
    """On PostgreSQL, let the session's reads run outside a transaction, and the fixed
    reads among them on its connection straight away.

    Each statement of a read then costs one round trip, not the BEGIN before the first and
    the ROLLBACK after the last (a dashboard's whole answer is a handful of statements, so
    those two were a third of its round trips).  Nothing is lost: under READ COMMITTED,
    PostgreSQL's default, every statement already reads its own snapshot.  A mutation
    still gets a real transaction: :meth:`~resolvers.context.Context.transaction` ends this
    one first, which hands the connection back to the pool (where its isolation level is
    reset) and begins on a fresh one.  Not on SQLite: there the transaction is what gives a
    request's reads one snapshot.
    """
    if session.get_bind().dialect.name == "postgresql":
        options = {"isolation_level": "AUTOCOMMIT"}
        _hold_driver(session, await session.connection(execution_options=options))


def _statement(compiled: _Compiled, processed: dict[str, Any]) -> tuple[str, Sequence[Any]]:
    """The text and positional parameters to send (see :attr:`_Compiled.positional`)."""
    if compiled.positional is not None:
        try:
            return compiled.compiled.string, [processed[name] for name in compiled.positional]
        except KeyError:  # a parameter left to its default: SQLAlchemy fills it in
            pass
    expanded = compiled.compiled.construct_expanded_state(processed)
    return expanded.statement, expanded.positional_parameters


def _bind(processor: tuple[Callable[[Any], Any], bool] | None, value: Any) -> Any:
    if processor is None:
        return value
    process, expanding = processor
    return [process(item) for item in value] if expanding else process(value)
