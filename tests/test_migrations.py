"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from subprocess import PIPE, STDOUT
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from billing import jobs
from billing.db import Database, make_engine
from billing.models import Base
from migrations.migrate import MIGRATIONS_DIR, alembic_config, migrate, reset_and_migrate
from settings import Settings, sqlite_url
from tests.factories import T0, new_party, post_usage

PARTIAL_UNIQUE_INDEXES = {
    "uq_jobs_pending_key": "status = 'PENDING'",
    "uq_invoices_regular_period": "kind = 'REGULAR'",
}


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    differences: list[Any] = compare_metadata(context, Base.metadata)
    return differences


def _heads() -> set[str]:
    """Every head: migrations written side by side from one parent are all applied."""
    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


async def test_migrated_schema_matches_models(db: Database) -> None:
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_differences) == []


async def test_partial_unique_indexes_keep_their_where_clause(db: Database) -> None:
    async with db.engine.connect() as conn:
        for name, predicate in PARTIAL_UNIQUE_INDEXES.items():
            if db.is_sqlite:
                sql = await conn.scalar(
                    text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"),
                    {"n": name},
                )
            else:
                sql = await conn.scalar(
                    text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": name}
                )
            assert sql is not None, name
            assert "UNIQUE" in sql.upper() and "WHERE" in sql.upper(), sql
            # PostgreSQL prints the predicate back in its own form, e.g. ((kind)::text = ...).
            column, value = predicate.split(" = ")
            assert column in sql and value in sql, sql


async def test_migrate_again_inside_a_running_loop_is_a_no_op(
    settings: Settings, db: Database
) -> None:
    await migrate(settings.database_url)
    async with db.engine.connect() as conn:
        versions = set(await conn.scalars(text("SELECT version_num FROM alembic_version")))
    assert versions == _heads()


async def test_processes_migrating_at_once_upgrade_one_after_another(
    scratch_postgres: str,
) -> None:
    """Several ``kassa migrate`` (or ``kassa serve``, which migrates at start) starting
    together on an empty database all succeed: they take turns (an advisory lock), so none
    fails on a table another has just made.  Processes, as in production: Alembic's
    ``context`` is one per process, so threads could not show it."""
    kassa = Path(sys.executable).parent / "kassa"
    env = {**os.environ, "KASSA_DATABASE_URL": scratch_postgres}
    runs = [
        await asyncio.create_subprocess_exec(
            str(kassa), "migrate", env=env, stdout=PIPE, stderr=STDOUT
        )
        for _ in range(3)
    ]
    for run in runs:
        output, _ = await run.communicate()
        assert run.returncode == 0, output.decode()
    engine = make_engine(scratch_postgres)
    try:
        async with engine.connect() as conn:
            versions = set(await conn.scalars(text("SELECT version_num FROM alembic_version")))
            assert versions == _heads()
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()


def test_migrations_ship_with_the_package() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert list((MIGRATIONS_DIR / "versions").glob("0001_*.py"))


async def test_downgrade_to_base_and_upgrade_again(tmp_path: Path) -> None:
    """Every downgrade runs too (on a scratch SQLite file, to leave the suite's database alone)."""
    url = sqlite_url(tmp_path / "roundtrip.db")
    await reset_and_migrate(url)
    await asyncio.to_thread(command.downgrade, alembic_config(url), "base")
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert tables == ["alembic_version"]
        await migrate(url)
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()


@pytest.mark.parametrize("url", ["sqlite:///var/x.db", "postgresql://u@h/d"])
def test_config_normalises_urls_to_async_drivers(url: str) -> None:
    assert "+" in alembic_config(url).attributes["database_url"]


async def test_lines_become_charges_keeping_the_printed_account_number(tmp_path: Path) -> None:
    """0025 folds invoice_lines into charges: each invoiced charge keeps the account number its
    line printed, an uninvoiced one takes its account's; going back makes the lines again."""
    url = sqlite_url(tmp_path / "lines.db")
    await reset_and_migrate(url)
    db = Database(Settings(database_url=url, run_worker=False))
    try:
        party = await new_party(db, account_number="+1 555 0100")
        await post_usage(db, party, 1000, T0, "Invoiced")
        await jobs.advance_clock(db, datetime(2026, 4, 1, 1, tzinfo=UTC))
        await post_usage(db, party, 300, datetime(2026, 4, 2, tzinfo=UTC), "Not yet invoiced")
        await db.engine.dispose()
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0024")
        async with db.engine.begin() as conn:
            lines = (await conn.execute(text("SELECT description FROM invoice_lines"))).all()
            assert lines == [("Invoiced",)]
            # As if the account had been renumbered after the invoice was printed.
            await conn.execute(text("UPDATE invoice_lines SET account_number = '+1 555 0001'"))
        await db.engine.dispose()
        await migrate(url)
        async with db.engine.connect() as conn:
            charges = await conn.execute(
                text("SELECT description, account_number FROM charges ORDER BY id")
            )
            assert charges.all() == [
                ("Invoiced", "+1 555 0001"),
                ("Not yet invoiced", "+1 555 0100"),
            ]
    finally:
        await db.dispose()
