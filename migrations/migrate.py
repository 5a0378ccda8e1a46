"""Run the Alembic migrations from code: no ``alembic.ini``, works from inside an event loop.

``kassa migrate``, ``kassa serve`` and the test suite call :func:`migrate`.  Alembic's commands
are synchronous and ``migrations/env.py`` starts its own event loop, so they run in a worker
thread (:func:`asyncio.to_thread`); calling them directly inside a running loop would fail.

Writing a new migration after changing ``billing/models.py``::

    .venv/bin/python -m migrations.migrate revision -m "add widgets"

autogenerates ``migrations/versions/<rev>_add_widgets.py`` by comparing the models with
a scratch SQLite database migrated to head.  Read it before committing: autogenerate misses
renames and server defaults.  To regenerate the initial migration from scratch instead (only
while nothing has been deployed)::

    rm migrations/versions/0001_initial.py
    .venv/bin/python -m migrations.migrate revision -m initial --rev-id 0001

Then run ``.venv/bin/pytest tests/test_migrations.py`` (and again with
``KASSA_TEST_DATABASE_URL`` set for PostgreSQL): it fails when models and migrations differ.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import make_url

from billing.db import make_engine
from settings import normalise_database_url, sqlite_url

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at the packaged migrations (found wherever kassa is installed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = normalise_database_url(database_url)
    return config


async def migrate(database_url: str) -> None:
    """Bring the database up to the newest migration (a no-op when it already is)."""
    # "heads": migrations written side by side (each from the same parent) all apply.
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), "heads")


async def reset_and_migrate(database_url: str) -> None:
    """Throw away every table and migrate from nothing.  For tests only: it destroys data."""
    database_url = normalise_database_url(database_url)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            for suffix in ("", "-wal", "-shm"):
                Path(url.database + suffix).unlink(missing_ok=True)
    else:
        engine = make_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
        finally:
            await engine.dispose()
    await migrate(database_url)


def autogenerate_revision(message: str, rev_id: str | None = None) -> None:
    """Write a new migration: the difference between the models and the migrations so far."""
    with tempfile.TemporaryDirectory() as tmp:
        url = sqlite_url(Path(tmp) / "scratch.db")
        asyncio.run(migrate(url))
        command.revision(alembic_config(url), message=message, autogenerate=True, rev_id=rev_id)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m migrations.migrate")
    commands = parser.add_subparsers(dest="command", required=True)
    revision = commands.add_parser("revision", help="autogenerate a migration from the models")
    revision.add_argument("-m", "--message", required=True)
    revision.add_argument("--rev-id", default=None, help="e.g. 0002 (default: random)")
    args = parser.parse_args(argv)
    autogenerate_revision(args.message, args.rev_id)


if __name__ == "__main__":
    main()
