"""``kassa bitcoin fake-pay`` and ``fake-mine`` (development only) feed the fake chain that
``kassa serve`` serves under /_fake/esplora with KASSA_BITCOIN_WATCHER=fake; the scan then
records the payment pending and credits it once mined."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from sqlalchemy import select

import billing.bitcoin
from app import create_app
from billing import clock
from billing.bitcoin_addresses import request_address
from billing.bitcoin_payments import BITCOIN_SCAN_JOB, scan
from billing.bitcoin_wallets import WalletInput, set_wallet
from billing.db import Database
from billing.models import BitcoinPayment, BitcoinPaymentState, Customer, Job, JobStatus
from settings import Settings
from tests.bitcoin_chain import serving
from tests.bitcoin_keys import TESTNET_VPUB
from tests.factories import admin_viewer, freeze_clock, make_customer
from tests.test_cli import kassa
from wallets import fake_chain
from wallets.esplora import EsploraWatcher
from wallets.fake_chain import DEMO_CHAIN_PATH

T = TypeVar("T")
DEVELOPMENT = {"KASSA_ENV": "development"}


@pytest.fixture(autouse=True)
def _keep_the_chain_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app and the command install their watcher process-wide, and the fake chain is the
    process's: each test gets a fresh chain, and both are put back after it."""
    monkeypatch.setattr(fake_chain, "DEMO_CHAIN", fake_chain.FakeChain())
    monkeypatch.setattr(billing.bitcoin, "_watcher", billing.bitcoin.chain_watcher())
    monkeypatch.setattr(billing.bitcoin, "_prices", billing.bitcoin._prices)


@pytest.fixture
async def address(db: Database) -> tuple[int, str]:
    await freeze_clock(db)
    async with db.transaction() as session:
        await set_wallet(
            session, admin_viewer(), WalletInput(TESTNET_VPUB, fixed_rates=[("USD", "65000.00")])
        )
        customer = await make_customer(session)
        given = await request_address(session, admin_viewer(), customer.id)
        return customer.id, given.address


def _run(settings: Settings, body: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database(settings)
        try:
            return await body(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _scan(settings: Settings, url: str) -> list[tuple[BitcoinPaymentState, int, int]]:
    """One scan through the served fake chain's Esplora API, as the server's job does;
    the payments afterwards (state, satoshi, confirmations)."""

    async def body(db: Database) -> list[tuple[BitcoinPaymentState, int, int]]:
        async with db.session() as session:
            now = await clock.now(session)
        await scan(db, now, EsploraWatcher(f"{url}{DEMO_CHAIN_PATH}"))
        async with db.session() as session:
            rows = await session.execute(
                select(
                    BitcoinPayment.state, BitcoinPayment.satoshis, BitcoinPayment.confirmations
                ).order_by(BitcoinPayment.id)
            )
            return [(state, sat, conf) for state, sat, conf in rows.all()]

    return _run(settings, body)


def test_a_fed_payment_is_pending_then_credited_once_mined(
    settings: Settings, address: tuple[int, str]
) -> None:
    customer_id, paid_to = address
    app = create_app(settings.with_(environment="development", bitcoin_watcher="fake"))
    with serving(app) as server:
        fed = kassa(
            settings, "bitcoin", "fake-pay", paid_to, "0.001", "--server", server.url,
            env=DEVELOPMENT,
        )  # fmt: skip
        assert fed.exit_code == 0, fed.output
        assert f"paid 0.001 BTC to {paid_to}" in fed.output

        async def scan_due(db: Database) -> bool:
            async with db.session() as session:
                job = await session.scalar(
                    select(Job).where(
                        Job.unique_key == BITCOIN_SCAN_JOB, Job.status == JobStatus.PENDING
                    )
                )
                return job is not None and job.due_at <= await clock.now(session)

        assert _run(settings, scan_due), "the scan is due at once"
        assert _scan(settings, server.url) == [(BitcoinPaymentState.PENDING, 100_000, 0)]

        mined = kassa(settings, "bitcoin", "fake-mine", "--server", server.url, env=DEVELOPMENT)
        assert mined.exit_code == 0, mined.output
        assert _scan(settings, server.url) == [(BitcoinPaymentState.CREDITED, 100_000, 1)]

        async def balance(db: Database) -> int:
            async with db.session() as session:
                customer = await session.get(Customer, customer_id)
                assert customer is not None
                return customer.balance

        assert _run(settings, balance) == -6500  # 0.001 BTC at 65,000.00 USD, in credit


def test_confirm_mines_it_at_once(settings: Settings, address: tuple[int, str]) -> None:
    _, paid_to = address
    app = create_app(settings.with_(environment="development", bitcoin_watcher="fake"))
    with serving(app) as server:
        fed = kassa(
            settings, "bitcoin", "fake-pay", paid_to, "0.0002", "--confirm",
            "--server", server.url, env=DEVELOPMENT,
        )  # fmt: skip
        assert fed.exit_code == 0, fed.output
        assert "1 confirmation" in fed.output
        assert _scan(settings, server.url) == [(BitcoinPaymentState.CREDITED, 20_000, 1)]


def test_a_server_without_the_fake_chain_is_named(settings: Settings) -> None:
    with serving(create_app(settings)) as server:
        fed = kassa(
            settings, "bitcoin", "fake-pay", "tb1qxyz", "0.001", "--server", server.url,
            env=DEVELOPMENT,
        )  # fmt: skip
    assert fed.exit_code == 1
    assert "serves no fake chain" in fed.output and "KASSA_BITCOIN_WATCHER=fake" in fed.output


def test_fake_pay_is_refused_outside_development(settings: Settings) -> None:
    fed = kassa(settings, "bitcoin", "fake-pay", "tb1qxyz", "0.001", env={"KASSA_ENV": "test"})
    assert fed.exit_code == 1
    assert "development only" in fed.output


def test_a_restarted_server_still_shows_what_was_fed(
    settings: Settings, address: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake chain is in the server's memory: a new process rebuilds it from the recorded
    payments rather than let the scan drop them as gone."""
    _, paid_to = address
    dev = settings.with_(environment="development", bitcoin_watcher="fake")
    with serving(create_app(dev)) as server:
        fed = kassa(
            settings, "bitcoin", "fake-pay", paid_to, "0.001", "--server", server.url,
            env=DEVELOPMENT,
        )  # fmt: skip
        assert fed.exit_code == 0, fed.output
        assert _scan(settings, server.url) == [(BitcoinPaymentState.PENDING, 100_000, 0)]
    monkeypatch.setattr(fake_chain, "DEMO_CHAIN", fake_chain.FakeChain())
    with serving(create_app(dev)) as server:
        assert _scan(settings, server.url) == [(BitcoinPaymentState.PENDING, 100_000, 0)]
        mined = kassa(settings, "bitcoin", "fake-mine", "--server", server.url, env=DEVELOPMENT)
        assert mined.exit_code == 0, mined.output
        assert _scan(settings, server.url) == [(BitcoinPaymentState.CREDITED, 100_000, 1)]
