"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from settings import Settings


def make_engine(database_url: str, **kwargs: object) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL, foreign keys and a busy timeout."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            database_url,
            connect_args={"timeout": 30},
            **kwargs,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    return create_async_engine(database_url, **kwargs)


#: ``session.info`` key of the objects a request's session holds on to (:func:`keep_loaded`).
_KEPT = "kassa.kept"


@event.listens_for(Session, "loaded_as_persistent")
def _hold(session: Session, instance: object) -> None:
    kept = session.info.get(_KEPT)
    if kept is not None:
        kept.append(instance)


def keep_loaded(session: AsyncSession) -> None:
    """Have ``session`` hold on to every object it loads until the session ends.

    The session's identity map only references its objects weakly: a customer one service
    loaded and the resolver dropped is gone by the time the next service asks for it, and
    ``session.get`` reads it again — four times on a customer's dashboard.  Held, it is
    answered from the identity map.  For a request's session while it only reads (short,
    and reading a few dozen objects), not for a job's, which may load thousands.
    """
    session.sync_session.info[_KEPT] = []


def let_go(session: AsyncSession) -> None:
    """Stop :func:`keep_loaded`'s holding: what the session loaded is referenced weakly
    again, as by any session, and read afresh once let go."""
    session.sync_session.info.pop(_KEPT, None)


async def lock_for_writing(session: AsyncSession) -> None:
    """Take SQLite's write lock now, at the start of a transaction that will write.

    SQLite's driver begins a transaction only at the first write, so the reads before it (an
    idempotency check, a balance) ran unprotected and two requests could both pass the same
    check.  A no-op UPDATE first makes writers queue up, as ``FOR UPDATE`` does on PostgreSQL.
    PostgreSQL needs nothing here: its row locks do that job.
    """
    if session.bind.dialect.name == "sqlite":  # type: ignore[union-attr]
        await session.execute(text("UPDATE clock_state SET id = id WHERE 0"))


class Database:
    """The engine plus a session factory; one per process."""

    def __init__(self, settings: Settings, **engine_kwargs: object) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url, **engine_kwargs)
        # Jobs get only a session; the settings ride along for the few that need them.
        self.sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, info={"settings": settings}
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on success and rolls back on any exception."""
        async with self.sessions() as session, session.begin():
            await lock_for_writing(session)
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
