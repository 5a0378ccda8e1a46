"""The SQL statements a piece of code sends, for tests that count round trips — through
SQLAlchemy's engine and, on PostgreSQL, straight through asyncpg (billing.fixed_reads)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from sqlalchemy import event

from billing.db import Database
from billing.fixed_reads import FixedRead


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every statement sent through ``db``'s engine inside the block, in order."""
    seen: list[str] = []

    def note(*args: Any) -> None:  # (conn, cursor, statement, parameters, …)
        seen.append(str(args[2]))

    fetch = FixedRead._fetch

    async def fetch_noted(driver: Any, statement: str, parameters: Any) -> Any:
        seen.append(statement)
        return await fetch(driver, statement, parameters)

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        with mock.patch.object(FixedRead, "_fetch", staticmethod(fetch_noted)):
            yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)
