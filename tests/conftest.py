"""Test fixtures: a real database (SQLite file, or PostgreSQL from KASSA_TEST_DATABASE_URL).

On PostgreSQL each test process works in a database of its own, created on the server named
by KASSA_TEST_DATABASE_URL and dropped afterwards, so parallel runs never collide.  The schema
is built once per session by the Alembic migrations themselves, so the tests also prove the
migrations; each test then starts from empty tables.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

import wallets
from billing import invoices, ledger
from billing.db import Database
from billing.models import Base
from processors import registry
from settings import Settings, normalise_database_url, sqlite_url

# Billing asks the registry for processors, as the app and the CLI arrange at start-up.
registry.serve_billing()
wallets.serve_billing()


async def _create_private_database(server_url: str, purpose: str = "test") -> str:
    """A fresh PostgreSQL database for this test process, so parallel runs never collide."""
    url = make_url(server_url)
    name = f"kassa_{purpose}_{os.getpid()}"
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
            # A throw-away database need not wait for the disk at every commit (most of a
            # test's time on PostgreSQL otherwise); what a commit makes visible is unchanged.
            await conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    finally:
        await engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


async def _drop_private_database(server_url: str, private_url: str) -> None:
    engine = create_async_engine(make_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(
                text(f'DROP DATABASE IF EXISTS "{make_url(private_url).database}" WITH (FORCE)')
            )
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def settings(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:
    server_url = os.environ.get("KASSA_TEST_DATABASE_URL")
    if server_url:
        server_url = normalise_database_url(server_url)
        url = await _create_private_database(server_url)
    else:
        url = sqlite_url(tmp_path_factory.mktemp("db") / "kassa-test.db")
    yield Settings(
        database_url=url,
        environment="test",
        test_mode=True,
        run_worker=False,
        secret_key="test-secret",
        # Seals wallet settings (billing.secrets_at_rest): "test" is not development, so it
        # gets no default key.
        encryption_key="test-encryption-key-" + "t" * 16,
    )
    if server_url:
        await _drop_private_database(server_url, url)


@pytest.fixture
async def scratch_postgres() -> AsyncIterator[str]:
    """The URL of an empty PostgreSQL database of its own, for a test that must start from
    nothing (no tables, not even Alembic's); skipped when the suite runs on SQLite."""
    server_url = os.environ.get("KASSA_TEST_DATABASE_URL")
    if not server_url:
        pytest.skip("PostgreSQL only")
    server_url = normalise_database_url(server_url)
    url = await _create_private_database(server_url, purpose="scratch")
    yield url
    await _drop_private_database(server_url, url)


@pytest.fixture(scope="session")
async def _schema(settings: Settings) -> None:
    from migrations.migrate import reset_and_migrate

    await reset_and_migrate(settings.database_url)


async def _empty_tables(conn: AsyncConnection, *, is_sqlite: bool) -> None:
    """Delete every row, children before parents, and restart the ids at 1.

    On PostgreSQL only the tables that have rows are emptied, with DELETE, and only the
    sequences that were used (all of them id columns') are restarted: a TRUNCATE of every
    table, which makes new files for each table and index, took 0.6-0.8 s per test on the
    loaded 2-core machine, this 0.003-0.04 s.  SQLite hands out max(id) + 1, so an empty
    table starts again at 1 by itself.
    """
    names = [t.name for t in reversed(Base.metadata.sorted_tables)]
    if not is_sqlite:
        probe = " UNION ALL ".join(
            f"SELECT '{n}' WHERE EXISTS (SELECT 1 FROM \"{n}\")" for n in names
        )
        with_rows = {row[0] for row in await conn.execute(text(probe))}
        names = [n for n in names if n in with_rows]
    for name in names:
        await conn.execute(text(f'DELETE FROM "{name}"'))
    if not is_sqlite:
        used = await conn.execute(
            text(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename)"
                " FROM pg_sequences WHERE last_value IS NOT NULL"
            )
        )
        for (sequence,) in used.all():
            await conn.execute(text("SELECT setval(:s, 1, false)"), {"s": sequence})


@pytest.fixture
async def db(
    settings: Settings, _schema: None, request: pytest.FixtureRequest
) -> AsyncIterator[Database]:
    """A database with every table empty; afterwards its ledger must still be healthy.

    That is ``kassa check`` after every scenario of the suite.  A test that damages the
    ledger on purpose says so with ``@pytest.mark.tampers_ledger``.
    """
    database = Database(settings)
    async with database.engine.begin() as conn:
        await _empty_tables(conn, is_sqlite=database.is_sqlite)
    yield database
    if request.node.get_closest_marker("tampers_ledger") is None:
        async with database.session() as session:
            assert await ledger.verify_balances(session) == [], "cached balances drifted"
            assert await ledger.unbalanced_transactions(session) == [], "unbalanced entries"
            assert await invoices.misfiled_charges(session) == [], "charges on a wrong invoice"
    await database.dispose()


@pytest.fixture
def is_postgres(settings: Settings) -> bool:
    return settings.database_url.startswith("postgresql")


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Undo what a command run in-process did to logging (``kassa worker`` installs kassa's
    handler on the runner's standard error, which is closed once the command returns)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _fresh_simulator() -> None:
    """Forget the simulator's cards and charges: ids restart per test, and with them the
    ``payment-<id>`` charge keys, which must not replay another test's charge."""
    from processors import simulator

    simulator.reset()


@pytest.fixture
async def demo_db(db: Database, tmp_path: Path) -> AsyncIterator[Database]:
    """The test database as the demo loader sees it: the payment systems' fakes served under
    ``/fakes`` at its public address (as ``kassa demo`` serves them, since the demo stores
    cards through them), their state in ``tmp_path``."""
    from starlette.applications import Starlette

    from processors.fakes import mount
    from tests.bitcoin_chain import serving

    with serving(Starlette(routes=mount.routes(tmp_path))) as fakes:
        database = Database(db.settings.with_(public_url=fakes.url))
        yield database
        await database.dispose()
