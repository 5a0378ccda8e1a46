"""The ``kassa`` command: serve, work, migrate, load the demo, manage access, check the ledger.

Every command reads its settings from the environment (:func:`settings.from_env`, e.g.
``KASSA_DATABASE_URL``) and runs its async body with :func:`asyncio.run`.  Heavy or optional
modules (the web app, the demo loader) are imported inside the command that needs them, so
``kassa check`` stays quick and works even where the web side is broken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, TypeVar

import typer
from sqlalchemy import func, select

from billing.db import Database
from billing.errors import UserError
from billing.models import ApiKeyScope, LedgerAccount, LedgerTransaction, Role
from migrations.migrate import migrate as migrate_database
from processors import registry
from settings import Settings, from_env

app = typer.Typer(
    help="kassa: billing and payments.", no_args_is_help=True, pretty_exceptions_enable=False
)

T = TypeVar("T")
WORKER_IDLE_SECONDS = 1.0


def _with_database(settings: Settings, body: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``body`` against a fresh Database on its own event loop, disposing it afterwards."""

    registry.serve_billing(settings.card_processor)

    async def run() -> T:
        db = Database(settings)
        try:
            return await body(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="Port (default $PORT or 8000).")] = 8000,
) -> None:
    """Migrate the database, then serve the API and portals (with an in-process worker)."""
    import uvicorn

    from app import create_app

    settings = from_env()
    asyncio.run(migrate_database(settings.database_url))
    uvicorn.run(create_app(settings), host=host, port=port)


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="Run what is due now, then exit.")] = False,
) -> None:
    """Run due jobs, polling every second; start as many as you like on PostgreSQL."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger("kassa.worker")
    from billing.jobs import run_due

    async def work(db: Database) -> None:
        from billing import notifications

        await notifications.start_jobs(db)  # the e-mail jobs poll: make sure they are pending
        while True:
            ran = await run_due(db)
            if ran:
                log.info("ran %d job(s)", ran)
            if once:
                return
            await asyncio.sleep(WORKER_IDLE_SECONDS)

    try:
        _with_database(from_env(), work)
    except KeyboardInterrupt:
        log.info("stopped")


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to run any number of times)."""
    settings = from_env()
    asyncio.run(migrate_database(settings.database_url))
    typer.echo("database is up to date")


@app.command()
def demo() -> None:
    """Load the demo data (idempotent) and print the sign-ins and the API key."""
    from billing.demo import load_demo

    settings = from_env()
    asyncio.run(migrate_database(settings.database_url))
    demo = _with_database(settings, load_demo)
    typer.echo("Demo data loaded. Sign in with:")
    for role, login, password in demo.logins:
        typer.echo(f"  {role:<12} {login:<32} {password}")
    typer.echo(f"Partner API key: {demo.api_key}")


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The administrator's e-mail address (sign-in).")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Add an administrator who sees every customer."""
    from billing.users import create_user

    async def create(db: Database) -> str:
        async with db.transaction() as session:
            user = await create_user(session, email, password, Role.ADMIN)
            return user.email

    try:
        created = _with_database(from_env(), create)
    except UserError as exc:
        raise _fail(exc.message) from None
    typer.echo(f"administrator {created} created")


class ScopeOption(StrEnum):
    read = "read"
    read_write = "read-write"


@app.command("create-api-key")
def create_api_key(
    name: Annotated[str, typer.Option(help="Who the key is for.")],
    scope: Annotated[ScopeOption, typer.Option(help="read, or read-write.")],
    reseller_id: Annotated[int | None, typer.Option(help="Limit the key to one reseller.")] = None,
) -> None:
    """Make a partner API key and print its token (shown only this once)."""
    from billing import api_keys

    key_scope = ApiKeyScope.READ if scope is ScopeOption.read else ApiKeyScope.READ_WRITE

    async def create(db: Database) -> str:
        async with db.transaction() as session:
            _key, token = await api_keys.create_api_key(session, name, key_scope, reseller_id)
            return token

    try:
        token = _with_database(from_env(), create)
    except UserError as exc:
        raise _fail(exc.message) from None
    typer.echo(token)
    typer.echo("Store it now: kassa keeps only a hash and cannot show it again.", err=True)


@app.command()
def collect() -> None:
    """Charge the card attempts due now, as the collection_run job does (safe to repeat)."""
    from billing.collection_run import collect_now

    report = _with_database(from_env(), collect_now)
    if report.busy:
        typer.echo("another collection run is going; nothing done")
        return
    typer.echo(
        f"succeeded {report.succeeded}, failed {report.failed}, unknown "
        f"{report.unknown}, canceled {report.canceled}, reconciled {report.reconciled}"
    )


@app.command()
def check() -> None:
    """Verify the ledger: cached balances equal their entries, every transaction sums to zero."""
    from billing.ledger import unbalanced_transactions, verify_balances

    async def run(db: Database) -> tuple[list[str], int, int]:
        async with db.session() as session:
            problems = [
                f"book {m.ledger_account_id} ({m.kind} {m.owner_key}): cached balance "
                f"{m.cached}, entries sum to {m.entries}"
                for m in await verify_balances(session)
            ]
            problems += [
                f"transaction {txn}: {currency} entries sum to {total}, not 0"
                for txn, currency, total in await unbalanced_transactions(session)
            ]
            books = await session.scalar(select(func.count()).select_from(LedgerAccount))
            txns = await session.scalar(select(func.count()).select_from(LedgerTransaction))
            return problems, books or 0, txns or 0

    problems, books, txns = _with_database(from_env(), run)
    for problem in problems:
        typer.echo(problem)
    if problems:
        typer.echo(f"ledger NOT OK: {len(problems)} problem(s)", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"ledger OK: {books} books, {txns} transactions")
