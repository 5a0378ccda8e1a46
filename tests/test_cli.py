"""The ``kassa`` command line, run in-process against the suite's database.

CLI commands call :func:`asyncio.run` themselves, so these tests are plain (sync) functions;
async fixtures prepare the data before the command runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import uuid4

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner, Result

import cli
from billing import clock, jobs, ledger
from billing.api_keys import authenticate_api_key
from billing.db import Database
from billing.models import (
    ApiKeyScope,
    Charge,
    Job,
    JobStatus,
    LedgerAccount,
    LedgerAccountKind,
    Role,
    TransactionKind,
    User,
)
from settings import Settings
from tests.factories import insert_invoice, make_account, make_charge_at, make_customer

AT = datetime(2026, 1, 1, tzinfo=UTC)
T = TypeVar("T")


def kassa(
    settings: Settings, *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> Result:
    """Run ``kassa <args>`` with the environment pointing at the test database (plus ``env``)."""
    return CliRunner().invoke(
        cli.app,
        list(args),
        input=input,
        env={"KASSA_DATABASE_URL": settings.database_url, **(env or {})},
    )


def query(settings: Settings, body: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Read the database from a sync test (no event loop is running in its body)."""

    async def run() -> T:
        db = Database(settings)
        try:
            async with db.session() as session:
                return await body(session)
        finally:
            await db.dispose()

    return asyncio.run(run())


@pytest.fixture
async def books(db: Database) -> tuple[int, int]:
    """Two books with one balanced transaction between them."""
    async with db.transaction() as session:
        a, b = [
            (
                await ledger.open_party_book(
                    session, LedgerAccountKind.CUSTOMER, f"test:{uuid4().hex}", "USD"
                )
            ).id
            for _ in range(2)
        ]
        await ledger.post(
            session,
            TransactionKind.CHARGE,
            [ledger.Posting(a, 500, "USD"), ledger.Posting(b, -500, "USD")],
            at=AT,
        )
    return a, b


def test_check_passes_on_a_healthy_ledger(settings: Settings, books: tuple[int, int]) -> None:
    result = kassa(settings, "check")
    assert result.exit_code == 0, result.output
    assert "ledger OK: 2 books, 1 transactions" in result.output


@pytest.fixture
async def tampered_book(db: Database, books: tuple[int, int]) -> int:
    """A book whose cached balance was changed behind the ledger's back."""
    async with db.transaction() as session:
        await session.execute(
            update(LedgerAccount).where(LedgerAccount.id == books[0]).values(balance=499)
        )
    return books[0]


@pytest.mark.tampers_ledger
def test_check_fails_and_names_a_tampered_balance(settings: Settings, tampered_book: int) -> None:
    result = kassa(settings, "check")
    assert result.exit_code == 1
    assert f"book {tampered_book} (CUSTOMER" in result.output
    assert "cached balance 499, entries sum to 500" in result.output
    assert "ledger OK" not in result.output


@pytest.fixture
async def misfiled_charges(db: Database) -> tuple[int, int]:
    """Two invoiced charges of one customer: one on another customer's invoice, one on an
    invoice that does not exist (nothing in the schema refuses either since migration 0027)."""
    async with db.transaction() as session:
        await clock.freeze(session, AT)
        mine, theirs = [await make_customer(session) for _ in range(2)]
        invoice = await insert_invoice(session, theirs, 500, AT.date())
        account = await make_account(session, mine)
        wrong, missing = [(await make_charge_at(session, account, 500, AT)).id for _ in range(2)]
        await session.execute(
            update(Charge).where(Charge.id == wrong).values(invoice_id=invoice.id)
        )
        await session.execute(
            update(Charge).where(Charge.id == missing).values(invoice_id=invoice.id + 1000)
        )
    return wrong, missing


@pytest.mark.tampers_ledger
def test_check_fails_and_names_charges_on_a_wrong_invoice(
    settings: Settings, misfiled_charges: tuple[int, int]
) -> None:
    wrong, missing = misfiled_charges
    result = kassa(settings, "check")
    assert result.exit_code == 1
    assert f"charge {wrong}: on invoice" in result.output
    assert f"charge {missing}: on invoice" in result.output
    assert "ledger NOT OK: 2 problem(s)" in result.output


def test_migrate_command_is_a_no_op_on_a_migrated_database(
    settings: Settings, db: Database
) -> None:
    result = kassa(settings, "migrate")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_create_admin_then_refuse_the_same_address(settings: Settings, db: Database) -> None:
    result = kassa(
        settings, "create-admin", "--email", "Boss@Example.com", "--password", "long enough"
    )
    assert result.exit_code == 0, result.output
    user = query(settings, lambda s: s.scalar(select(User)))
    assert user is not None
    assert (user.email, user.role) == ("boss@example.com", Role.ADMIN)

    again = kassa(
        settings, "create-admin", "--email", "boss@example.com", "--password", "another one"
    )
    assert again.exit_code == 1
    assert "already" in again.output


def test_create_admin_refuses_a_short_password(settings: Settings, db: Database) -> None:
    result = kassa(settings, "create-admin", "--email", "a@example.com", "--password", "short")
    assert result.exit_code == 1
    assert "at least 8" in result.output


def test_create_admin_prompts_for_the_password(settings: Settings, db: Database) -> None:
    result = kassa(
        settings, "create-admin", "--email", "a@example.com", input="long enough\nlong enough\n"
    )
    assert result.exit_code == 0, result.output
    assert "long enough" not in result.output


@pytest.mark.parametrize(
    ("option", "scope"), [("read", ApiKeyScope.READ), ("read-write", ApiKeyScope.READ_WRITE)]
)
def test_create_api_key_prints_a_working_token(
    settings: Settings, db: Database, option: str, scope: ApiKeyScope
) -> None:
    result = kassa(settings, "create-api-key", "--name", "Partner", "--scope", option)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("kassa_")
    key = query(settings, lambda s: authenticate_api_key(s, token))
    assert key is not None and key.name == "Partner" and key.scope == scope


@pytest.fixture
async def reseller_id(db: Database) -> int:
    from tests.factories import make_reseller

    async with db.transaction() as session:
        return (await make_reseller(session)).id


def test_create_api_key_takes_the_resellers_api_id(settings: Settings, reseller_id: int) -> None:
    from schema.relay import encode_id

    opaque = encode_id("Reseller", reseller_id)
    result = kassa(
        settings, "create-api-key", "--name", "P", "--scope", "read", "--reseller-id", opaque
    )
    assert result.exit_code == 0, result.output
    key = query(settings, lambda s: authenticate_api_key(s, result.stdout.strip()))
    assert key is not None and key.reseller_id == reseller_id


@pytest.mark.parametrize("given", ["1", "Q3VzdG9tZXI6MQ=="])  # a bare key, a customer's id
def test_create_api_key_refuses_other_reseller_ids(
    settings: Settings, reseller_id: int, given: str
) -> None:
    result = kassa(
        settings, "create-api-key", "--name", "P", "--scope", "read", "--reseller-id", given
    )
    assert result.exit_code == 1
    assert result.output == "error: reseller not found\n"


@pytest.fixture
async def shop(db: Database) -> int:
    from tests.factories import make_distributor

    async with db.transaction() as session:
        return (await make_distributor(session, "Kiosk")).id


def test_create_api_key_for_a_distributor_acts_as_it(settings: Settings, shop: int) -> None:
    from resolvers.sessions import viewer_for_api_key
    from schema.relay import encode_id

    opaque = encode_id("Distributor", shop)
    result = kassa(
        settings, "create-api-key", "--name", "Till", "--scope", "read", "--distributor", opaque
    )
    assert result.exit_code == 0, result.output
    key = query(settings, lambda s: authenticate_api_key(s, result.stdout.strip()))
    assert key is not None and key.distributor_id == shop
    viewer = viewer_for_api_key(key)
    assert (viewer.role, viewer.distributor_id, viewer.can_write) == (Role.DISTRIBUTOR, shop, False)


def test_create_api_key_refuses_a_reseller_and_a_distributor_at_once(
    settings: Settings, reseller_id: int, shop: int
) -> None:
    from schema.relay import encode_id

    result = kassa(
        settings,
        "create-api-key",
        "--name",
        "P",
        "--scope",
        "read",
        "--reseller-id",
        encode_id("Reseller", reseller_id),
        "--distributor-id",
        encode_id("Distributor", shop),
    )
    assert result.exit_code == 1
    assert result.output == "error: a key belongs to a reseller or to a distributor, not to both\n"


def test_create_api_key_refuses_an_unknown_scope(settings: Settings, db: Database) -> None:
    assert kassa(settings, "create-api-key", "--name", "P", "--scope", "admin").exit_code != 0


@pytest.fixture
async def due_job(db: Database) -> list[dict[str, object]]:
    """A due job of a kind registered just for this test; returns the payloads it ran with."""
    ran: list[dict[str, object]] = []

    @jobs.handler("test.cli_worker")
    async def record(session: AsyncSession, payload: dict[str, object], now: datetime) -> None:
        ran.append(payload)

    async with db.transaction() as session:
        await jobs.schedule(
            session, "test.cli_worker", datetime.now(UTC) - timedelta(minutes=1), {"n": 1}
        )
    return ran


def test_worker_once_runs_due_jobs_and_exits(
    settings: Settings, due_job: list[dict[str, object]]
) -> None:
    result = kassa(settings, "worker", "--once")
    assert result.exit_code == 0, result.output
    assert due_job == [{"n": 1}]
    status = query(
        settings, lambda s: s.scalar(select(Job.status).where(Job.kind == "test.cli_worker"))
    )
    assert status == JobStatus.DONE


@pytest.fixture
async def invoice_to_charge(db: Database) -> int:
    """An invoice charged upon issue whose attempt is due: what ``kassa collect`` charges."""
    from billing.collection import SettingsInput
    from billing.customers import create_customer_class
    from billing.invoices import close_period_out_of_turn
    from billing.models import CardCharging, InvoiceKind
    from billing.payment_methods import add_card
    from tests.factories import admin_viewer, card_details

    async with db.transaction() as session:
        await clock.freeze(session, AT)
        cls = await create_customer_class(
            session,
            admin_viewer(),
            "Cards",
            0,
            7,
            {InvoiceKind.OUT_OF_TURN: SettingsInput(card_charging=CardCharging.ON_ISSUE)},
        )
        customer = await make_customer(session, class_id=cls.id, auto_payment=True)
        await make_charge_at(session, await make_account(session, customer), 1500, AT)
        await add_card(session, admin_viewer(), customer.id, card_details())
        return (await close_period_out_of_turn(session, admin_viewer(), customer.id)).id


def test_collect_charges_the_attempts_due_now(settings: Settings, invoice_to_charge: int) -> None:
    from billing.models import Invoice, InvoiceStatus

    result = kassa(settings, "collect")
    assert result.exit_code == 0, result.output
    assert "succeeded 1, failed 0, unknown 0" in result.output
    status = query(
        settings, lambda s: s.scalar(select(Invoice.status).where(Invoice.id == invoice_to_charge))
    )
    assert status == InvoiceStatus.PAID
    assert "succeeded 0" in kassa(settings, "collect").output  # nothing is charged twice
