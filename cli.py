"""The ``kassa`` command: serve, work, migrate, load the demo, manage access, check the ledger.

Every command reads its settings from the environment (:func:`settings.from_env`, e.g.
``KASSA_DATABASE_URL``) and runs its async body with :func:`asyncio.run`.  Heavy or optional
modules (the web app, the demo loader) are imported inside the command that needs them, so
``kassa check`` stays quick and works even where the web side is broken.

Only ``migrate``, ``serve`` and ``demo`` create or change the database's schema; every other
command first makes sure the database is there and migrated, and otherwise says so in one line
(an empty SQLite file made by a typo in ``KASSA_DATABASE_URL`` would only hide the mistake).
``serve`` and ``worker`` refuse to start on settings unfit for production
(:func:`settings.start_problems`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar
from urllib.parse import urlsplit

import typer
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

import wallets
from billing import logs
from billing.db import Database
from billing.errors import UserError
from billing.models import ApiKeyScope, LedgerAccount, LedgerTransaction, Role
from migrations.migrate import alembic_config
from migrations.migrate import migrate as migrate_database
from processors import registry
from settings import Settings, from_env, start_problems

app = typer.Typer(
    help="kassa: billing and payments.", no_args_is_help=True, pretty_exceptions_enable=False
)

T = TypeVar("T")
#: What ``kassa serve`` offers a person, by path.
PLACES = (
    ("/graphql", "GraphiQL: the API, with its documentation"),
    ("/portal", "the customer portal"),
    ("/admin", "the administrators' portal"),
    ("/distributor", "the distributors' portal"),
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _shown(settings: Settings) -> str:
    """The database as a person configured it: a SQLite file's full path, else the URL
    without its password."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return str(Path(url.database).resolve())
    return url.render_as_string(hide_password=True)


def _missing_file(settings: Settings) -> str | None:
    """Why a SQLite database cannot be used without creating it: its file is not there."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if Path(url.database).is_file():
        return None
    return (
        f"no database at {_shown(settings)}: run `kassa migrate` to create it, "
        "or set KASSA_DATABASE_URL to the database to use"
    )


async def _schema_problem(db: Database) -> str | None:
    """Why the database is not one this kassa can work on: unreachable, or not migrated."""
    shown = _shown(db.settings)
    try:
        async with db.engine.connect() as connection:
            current = await connection.run_sync(
                lambda sync: set(MigrationContext.configure(sync).get_current_heads())
            )
    except (OSError, SQLAlchemyError) as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        return f"cannot use the database at {shown}: {reason}"
    if not current:
        return f"the database at {shown} has no kassa tables: run `kassa migrate` first"
    wanted = set(ScriptDirectory.from_config(alembic_config(db.settings.database_url)).get_heads())
    if current != wanted:
        return f"the database at {shown} is not up to date: run `kassa migrate` first"
    return None


def _with_database(settings: Settings, body: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``body`` against a fresh Database on its own event loop, disposing it afterwards;
    exit with one line saying what is missing when the database is not there or not migrated."""
    registry.serve_billing(settings.card_processor)
    wallets.serve_billing(settings)
    missing = _missing_file(settings)
    if missing:
        raise _fail(missing)

    async def run() -> T:
        db = Database(settings)
        try:
            problem = await _schema_problem(db)
            if problem:
                raise _fail(problem)
            return await body(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _startable(settings: Settings) -> Settings:
    """``settings``, unless they are unfit to serve or work with: then say why and exit."""
    problems = start_problems(settings)
    if problems:
        typer.echo(f"error: kassa will not start with KASSA_ENV={settings.environment}:", err=True)
        for problem in problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(code=1)
    return settings


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells, indented, each column as wide as its widest cell (the last unpadded)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _places(settings: Settings) -> list[str]:
    return _columns([(f"{settings.public_url}{path}", what) for path, what in PLACES])


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="Port (default $PORT or 8000).")] = 8000,
) -> None:
    """Migrate the database, then serve the API and portals (with an in-process worker)."""
    import uvicorn

    from app import create_app

    settings = _startable(from_env(port=port))
    logs.configure(settings.log_format)
    asyncio.run(migrate_database(settings.database_url))
    typer.echo("kassa is at:")
    for line in _places(settings):
        typer.echo(line)
    # uvicorn's records go through kassa's handler (redacted, with request ids); its access
    # log, which writes whole URLs with their query strings, is replaced by the app's own.
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False)


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="Run what is due now, then exit.")] = False,
) -> None:
    """Run due jobs, polling every second; start as many as you like on PostgreSQL."""
    from billing import worker as job_worker

    settings = _startable(from_env())

    def logged(run: Callable[[Database], Awaitable[T]]) -> Callable[[Database], Awaitable[T]]:
        """``run``, with kassa's log handler installed once the database checks (which say
        their own one line) have passed."""

        async def body(db: Database) -> T:
            logs.configure(settings.log_format)
            return await run(db)

        return body

    if once:
        ran = _with_database(settings, logged(job_worker.run_once))
        typer.echo(f"ran {ran} job{'' if ran == 1 else 's'}")
        return
    job_worker.freeze_startup_objects()
    try:
        _with_database(settings, logged(job_worker.run_forever))
    except KeyboardInterrupt:
        job_worker.log.info("stopped")


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to run any number of times)."""
    settings = from_env()
    asyncio.run(migrate_database(settings.database_url))
    typer.echo("database is up to date")


@app.command()
def demo() -> None:
    """Load the demo data once; print where to go, the sign-ins and a new partner API key."""
    from billing.demo import CARD_PEOPLE, CUSTOMER_PASSWORD, DEMO_TERMINAL_SECRET, load_demo
    from processors.fakes import mount

    settings = from_env()
    asyncio.run(migrate_database(settings.database_url))
    state_dir = Path(settings.fake_state_dir)
    # The demo stores cards through the payment systems' fakes, which `kassa serve` mounts
    # under /fakes on the same port: served alone here meanwhile, keeping the same state.
    port = urlsplit(settings.public_url).port or 80
    with mount.serving(state_dir, port):
        access = _with_database(settings, load_demo)
    if access.payment_systems:
        # What each fake's merchant would register in the provider's dashboard.
        mount.save_deliveries(
            state_dir,
            {
                system.fake: f"{settings.public_url}/callbacks/{system.account_id}"
                for system in access.payment_systems
                if system.fake is not None
            },
        )
    typer.echo(
        "Demo data loaded."
        if access.loaded
        else "The demo was already there: left as it was (delete the database to start afresh)."
    )
    typer.echo("Open:")
    for line in _places(settings):
        typer.echo(line)
    typer.echo("Sign in with:")
    for line in _columns(access.logins):
        typer.echo(line)
    typer.echo(f"Partner API key (new on each run): {access.api_key}")
    typer.echo(
        "Payment systems (/admin/payment-systems) talk to local fakes under /fakes: serve "
        "with KASSA_FAKE_PROCESSORS=1 (make run does)."
    )
    for system in access.payment_systems:
        typer.echo(f"  {system.name} ({system.processor}): /callbacks/{system.account_id}")
    typer.echo("Customers with cards at Stripe's and Authorize.Net's fakes:")
    for line in _columns([(name, email, CUSTOMER_PASSWORD) for name, email, _, _ in CARD_PEOPLE]):
        typer.echo(line)
    typer.echo(f"Cash terminal network City Kiosks signs with: {DEMO_TERMINAL_SECRET}")


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
    reseller_id: Annotated[
        str | None,
        typer.Option(help="Limit the key to one reseller: its id as the API shows it."),
    ] = None,
    distributor_id: Annotated[
        str | None,
        typer.Option(
            "--distributor-id",
            "--distributor",
            help="A key that acts as this distributor (as its portal login does): its id as "
            "the API shows it. Not with --reseller-id.",
        ),
    ] = None,
) -> None:
    """Make a partner API key and print its token (shown only this once)."""
    from billing import api_keys
    from schema.relay import decode_optional_id

    key_scope = ApiKeyScope.READ if scope is ScopeOption.read else ApiKeyScope.READ_WRITE

    async def create(db: Database) -> str:
        reseller = decode_optional_id(reseller_id, "Reseller", "resellerId")
        distributor = decode_optional_id(distributor_id, "Distributor", "distributorId")
        async with db.transaction() as session:
            _key, token = await api_keys.create_api_key(
                session, name, key_scope, reseller, distributor
            )
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
        f"{report.unknown}, canceled {report.canceled}"
    )


@app.command()
def processors() -> None:
    """List the installed payment processors (entry points ``kassa.processors``) with their
    capabilities and payment methods; one that does not load is named with why."""
    for name in registry.available():
        info = registry.describe(name)
        assert info is not None
        typer.echo(
            f"{name}: capabilities {', '.join(sorted(info.capabilities)) or '-'}; "
            f"methods {', '.join(sorted(info.method_kinds)) or '-'}"
        )
    for name, reason in sorted(registry.load_problems().items()):
        typer.echo(f"{name}: not loaded ({reason})")


@app.command()
def check() -> None:
    """Verify the ledger: cached balances equal their entries, every transaction sums to zero,
    every invoiced charge is on an invoice of its own customer."""
    from billing.invoices import misfiled_charges
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
            problems += [
                f"charge {charge}: on invoice {invoice}, which is not its customer's"
                for charge, invoice in await misfiled_charges(session)
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


# --- bitcoin: the development fake chain ------------------------------------------------------

bitcoin_app = typer.Typer(
    help="Bitcoin in development: feed the fake chain `kassa serve` watches.",
    no_args_is_help=True,
)
app.add_typer(bitcoin_app, name="bitcoin")

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server", help="The kassa serving the fake chain (default: KASSA_PUBLIC_URL / $PORT)."
    ),
]


def _fake_chain_call(settings: Settings, server: str | None, path: str, body: object) -> object:
    """POST a control request to the fake chain ``kassa serve`` serves with
    KASSA_BITCOIN_WATCHER=fake; exit with one line saying what is wrong when it cannot."""
    import httpx

    from wallets.fake_chain import DEMO_CHAIN_PATH

    if not settings.development:
        raise _fail("the fake chain is for development only (KASSA_ENV=development)")
    base = (server or settings.public_url).rstrip("/")
    url = f"{base}{DEMO_CHAIN_PATH}{path}"
    try:
        response = httpx.post(url, json=body, timeout=10)
    except httpx.HTTPError as error:
        raise _fail(f"no kassa answers at {base} ({error}): start it with `make run`") from error
    if response.status_code == 404:
        raise _fail(
            f"{base} serves no fake chain: start it with KASSA_BITCOIN_WATCHER=fake in "
            "development (`make run` does)"
        )
    if response.status_code != 200:
        raise _fail(response.text.strip() or f"the fake chain answered {response.status_code}")
    answer: object = response.json()
    return answer


def _scan_soon(settings: Settings) -> None:
    """Make the bitcoin scan due now, so the server's worker records what was fed at once
    rather than at its next minute (a database that is not there is left alone)."""
    from billing import clock
    from billing.bitcoin_payments import schedule_scan

    if _missing_file(settings):
        return

    async def run(db: Database) -> None:
        async with db.transaction() as session:
            await schedule_scan(session, await clock.now(session))

    _with_database(settings, run)


@bitcoin_app.command("fake-pay")
def fake_pay(
    address: Annotated[str, typer.Argument(help="The address to pay (the portal shows it).")],
    amount_btc: Annotated[str, typer.Argument(help="How much, in BTC: 0.001")],
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Also mine a block: confirmed at once.")
    ] = False,
    server: ServerOption = None,
) -> None:
    """Development only: pay ADDRESS on the fake chain; the next scan records it pending, and
    credits it once confirmed (--confirm, or `kassa bitcoin fake-mine`)."""
    settings = from_env()
    paid = _fake_chain_call(
        settings, server, "/_fake/pay", {"address": address, "amount": amount_btc}
    )
    txid = paid["txid"] if isinstance(paid, dict) else "?"
    typer.echo(f"paid {amount_btc} BTC to {address}: transaction {txid}")
    if confirm:
        mined = _fake_chain_call(settings, server, "/_fake/mine", {"blocks": 1})
        height = mined["height"] if isinstance(mined, dict) else "?"
        typer.echo(f"mined block {height}: 1 confirmation")
    _scan_soon(settings)


@bitcoin_app.command("fake-mine")
def fake_mine(
    blocks: Annotated[int, typer.Argument(min=1, max=1000, help="How many blocks.")] = 1,
    server: ServerOption = None,
) -> None:
    """Development only: mine blocks on the fake chain, confirming what waits in its mempool."""
    settings = from_env()
    mined = _fake_chain_call(settings, server, "/_fake/mine", {"blocks": blocks})
    height = mined["height"] if isinstance(mined, dict) else "?"
    typer.echo(f"mined {blocks} block{'' if blocks == 1 else 's'}: the tip is at {height}")
    _scan_soon(settings)
