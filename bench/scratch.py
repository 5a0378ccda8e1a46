"""Scratch databases for benchmarks: made when missing, emptied and migrated before a run."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from migrations.migrate import reset_and_migrate


async def fresh_database(database_url: str) -> None:
    """Create the PostgreSQL database if it does not exist, then reset and migrate it."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        server = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            async with server.connect() as conn:
                exists = await conn.scalar(
                    text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}
                )
                if not exists:
                    await conn.execute(text(f'CREATE DATABASE "{url.database}"'))
        finally:
            await server.dispose()
    await reset_and_migrate(database_url)
