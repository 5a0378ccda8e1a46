"""The SQL statements a piece of code sends, for tests that count round trips."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from billing.db import Database


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every statement sent through ``db``'s engine inside the block, in order."""
    seen: list[str] = []

    def note(*args: Any) -> None:  # (conn, cursor, statement, parameters, …)
        seen.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)
