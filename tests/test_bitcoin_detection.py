"""Detecting and crediting bitcoin payments (issue 11, items 4 and 5) through both chain
watchers — Esplora's REST API and Bitcoin Core's JSON-RPC — against the fake chain served
over real HTTP on loopback.  After every step the ledger balances in each currency."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select

import billing.bitcoin
from billing import bitcoin_payments, clock, ledger
from billing.bitcoin import ChainWatcher
from billing.bitcoin_addresses import request_address
from billing.bitcoin_payments import BITCOIN_SCAN_JOB, credit_by_hand, scan, to_minor
from billing.bitcoin_wallets import WalletInput, set_wallet
from billing.db import Database
from billing.errors import UserError
from billing.models import (
    BitcoinAddress,
    BitcoinPayment,
    BitcoinPaymentState,
    Customer,
    Invoice,
    Job,
    JobStatus,
    LedgerAccount,
    LedgerAccountKind,
    LedgerEntry,
    LedgerTransaction,
    Payment,
    PaymentStatus,
    RunFailure,
    TransactionKind,
)
from tests.bitcoin_chain import LiveServer, serving
from tests.bitcoin_keys import TESTNET_VPUB
from tests.factories import (
    T0,
    admin_viewer,
    balance_of,
    freeze_clock,
    insert_invoice,
    make_customer,
)
from wallets.bitcoind import BitcoinCoreWatcher
from wallets.esplora import EsploraWatcher
from wallets.fake_chain import FakeChain, bitcoind_app, esplora_app

#: 65,000.00 USD per bitcoin, in cents.
RATE = 6_500_000


@dataclass
class Chain:
    fake: FakeChain
    server: LiveServer
    watcher: ChainWatcher


@pytest.fixture(params=["esplora", "core"])
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    fake = FakeChain()
    if request.param == "esplora":
        with serving(esplora_app(fake)) as server:
            yield Chain(fake, server, EsploraWatcher(server.url))
    else:
        with serving(bitcoind_app(fake, "rpc", "secret")) as server:
            url = f"{server.url}/wallet/kassa"
            yield Chain(fake, server, BitcoinCoreWatcher(url, "rpc", "secret"))


async def _customer_with_address(db: Database, confirmations: int = 2) -> tuple[int, str]:
    await freeze_clock(db)
    async with db.transaction() as session:
        await set_wallet(
            session,
            admin_viewer(),
            WalletInput(
                TESTNET_VPUB, confirmations=confirmations, fixed_rates=[("USD", "65000.00")]
            ),
        )
        customer = await make_customer(session)
        address = await request_address(session, admin_viewer(), customer.id)
        return customer.id, address.address


async def _rows(db: Database) -> list[BitcoinPayment]:
    async with db.session() as session:
        return list(
            (await session.scalars(select(BitcoinPayment).order_by(BitcoinPayment.id))).all()
        )


async def _assert_balanced(db: Database) -> None:
    """``kassa check``, and the BTC and USD sides of every transaction each sum to zero."""
    async with db.session() as session:
        assert await ledger.verify_balances(session) == []
        assert await ledger.unbalanced_transactions(session) == []


async def _books(db: Database) -> dict[tuple[str, str], int]:
    async with db.session() as session:
        rows = await session.execute(
            select(LedgerAccount.kind, LedgerAccount.currency, LedgerAccount.balance).where(
                LedgerAccount.kind.in_(
                    [LedgerAccountKind.BITCOIN_WALLET, LedgerAccountKind.CONVERSION]
                )
            )
        )
        return {(kind.value, currency): balance for kind, currency, balance in rows.all()}


async def _scan(db: Database, chain: Chain) -> bitcoin_payments.ScanReport:
    async with db.session() as session:
        now = await clock.now(session)
    report = await scan(db, now, chain.watcher)
    await _assert_balanced(db)
    return report


def test_conversion_is_half_up_to_the_minor_unit() -> None:
    # 123,457 sat × 65,000.00 USD = 80.247050 USD → 80.25; 1 sat = 0.065 cents → 0 cents.
    assert to_minor(123_457, RATE) == 8025
    assert to_minor(123_450, RATE) == 8024  # 80.2425 → 80.24
    assert to_minor(10, RATE) == 1  # 0.65 cents → 1
    assert to_minor(7, RATE) == 0  # 0.455 cents → 0
    assert to_minor(100_000_000, 15_000_000) == 15_000_000  # JPY: no minor unit to round


async def test_pending_then_credited_after_the_confirmations(db: Database, chain: Chain) -> None:
    customer_id, address = await _customer_with_address(db, confirmations=2)
    async with db.transaction() as session:
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        older = await insert_invoice(session, customer, 5000, T0.date() - timedelta(days=2))
        newer = await insert_invoice(session, customer, 5000, T0.date() - timedelta(days=1))
    txid = chain.fake.pay(address, 123_457)

    report = await _scan(db, chain)
    assert (report.recorded, report.credited) == (1, 0)
    [row] = await _rows(db)
    assert (row.txid, row.vout, row.satoshis, row.confirmations) == (txid, 0, 123_457, 0)
    assert row.state == BitcoinPaymentState.PENDING and row.minor_per_btc == RATE
    async with db.session() as session:
        payment = await session.get(Payment, row.payment_id)
        assert payment is not None
        assert (payment.status, payment.amount, payment.method.value) == (
            PaymentStatus.PENDING,
            8025,
            "BITCOIN",
        )
        assert await balance_of(session, customer_id) == 0
        funded = await session.scalar(select(BitcoinAddress.first_funded_at))
        assert funded == T0

    chain.fake.mine()
    assert (await _scan(db, chain)).credited == 0
    assert (await _rows(db))[0].confirmations == 1
    chain.fake.mine()
    assert (await _scan(db, chain)).credited == 1
    [row] = await _rows(db)
    assert row.state == BitcoinPaymentState.CREDITED and row.credited_at == T0
    async with db.session() as session:
        assert await balance_of(session, customer_id) == -8025
        payment = await session.get(Payment, row.payment_id)
        assert payment is not None and payment.status == PaymentStatus.COMPLETED
        entries = (
            await session.execute(
                select(LedgerEntry.currency, LedgerEntry.amount).where(
                    LedgerEntry.transaction_id == payment.transaction_id
                )
            )
        ).all()
        assert sorted(entries) == sorted(
            [("BTC", 123_457), ("BTC", -123_457), ("USD", 8025), ("USD", -8025)]
        )
        # Oldest invoice first: the older one paid, the newer one has the rest.
        paid = {i.id: i.amount_paid for i in (await session.scalars(select(Invoice))).all()}
        assert paid == {older.id: 5000, newer.id: 3025}
    assert await _books(db) == {
        ("BITCOIN_WALLET", "BTC"): 123_457,
        ("CONVERSION", "BTC"): -123_457,
        ("CONVERSION", "USD"): 8025,
    }


async def _payment(db: Database, row: BitcoinPayment) -> Payment:
    async with db.session() as session:
        payment = await session.get(Payment, row.payment_id)
        assert payment is not None
        return payment


async def test_below_the_minimum_is_recorded_flagged_and_credited_by_hand(
    db: Database, chain: Chain
) -> None:
    customer_id, address = await _customer_with_address(db, confirmations=1)
    chain.fake.pay(address, 9_999)  # the default minimum is 10,000 sat
    chain.fake.mine()
    report = await _scan(db, chain)
    assert (report.recorded, report.credited, report.below_minimum) == (1, 0, 1)
    [row] = await _rows(db)
    assert (row.state, row.flag) == (BitcoinPaymentState.BELOW_MINIMUM, "BELOW_MINIMUM")
    async with db.session() as session:
        assert await balance_of(session, customer_id) == 0
    await _scan(db, chain)  # seen again: still waiting for the administrator
    assert (await _rows(db))[0].state == BitcoinPaymentState.BELOW_MINIMUM

    async with db.transaction() as session:
        await credit_by_hand(session, admin_viewer(), row.id, "credit-1")
    async with db.transaction() as session:  # a replay credits nothing more
        await credit_by_hand(session, admin_viewer(), row.id, "credit-1")
    with pytest.raises(UserError) as refused:
        async with db.transaction() as session:
            await credit_by_hand(session, admin_viewer(), row.id, "credit-2")
    assert refused.value.code == "NOT_CREDITABLE"
    [row] = await _rows(db)
    assert row.state == BitcoinPaymentState.CREDITED and row.flag_cleared_at is not None
    async with db.session() as session:
        assert await balance_of(session, customer_id) == -650  # 9,999 sat = 6.49935 → 6.50
    await _assert_balanced(db)


async def test_a_replaced_transaction_is_dropped_never_credited(db: Database, chain: Chain) -> None:
    customer_id, address = await _customer_with_address(db, confirmations=1)
    txid = chain.fake.pay(address, 200_000)
    await _scan(db, chain)
    chain.fake.replace(txid)
    report = await _scan(db, chain)
    assert report.dropped == 1
    chain.fake.mine(3)
    assert (await _scan(db, chain)).credited == 0
    [row] = await _rows(db)
    assert row.state == BitcoinPaymentState.DROPPED
    assert (await _payment(db, row)).status == PaymentStatus.FAILED
    async with db.session() as session:
        assert await balance_of(session, customer_id) == 0
        assert await session.scalar(select(func.count()).select_from(LedgerTransaction)) == 0


async def test_a_reorganisation_reverses_a_credit_and_flags_it(db: Database, chain: Chain) -> None:
    customer_id, address = await _customer_with_address(db, confirmations=1)
    txid = chain.fake.pay(address, 100_000)
    chain.fake.mine()
    assert (await _scan(db, chain)).credited == 1
    async with db.session() as session:
        assert await balance_of(session, customer_id) == -6500
    chain.fake.reorganise(txid)
    assert (await _scan(db, chain)).reversed == 1
    assert (await _scan(db, chain)).reversed == 0  # once
    [row] = await _rows(db)
    assert (row.state, row.flag) == (BitcoinPaymentState.REVERSED, "REORGANISED")
    payment = await _payment(db, row)
    assert payment.status == PaymentStatus.VOIDED
    async with db.session() as session:
        assert await balance_of(session, customer_id) == 0
        reversal = await session.get(LedgerTransaction, row.reversal_transaction_id)
        assert reversal is not None and reversal.kind == TransactionKind.REVERSAL
        assert reversal.reverses_id == payment.transaction_id
    assert set((await _books(db)).values()) == {0}


async def test_repeated_reports_credit_each_output_once(db: Database, chain: Chain) -> None:
    customer_id, address = await _customer_with_address(db, confirmations=1)
    # One transaction paying the address twice: two outputs, two payments.
    chain.fake.pay(address, 100_000, also=[(address, 50_000)])
    chain.fake.mine()
    for _ in range(3):
        await _scan(db, chain)
    rows = await _rows(db)
    assert [(r.vout, r.state) for r in rows] == [
        (0, BitcoinPaymentState.CREDITED),
        (1, BitcoinPaymentState.CREDITED),
    ]
    async with db.session() as session:
        assert await balance_of(session, customer_id) == -(6500 + 3250)
        credits = await session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.kind == TransactionKind.PAYMENT)
        )
        assert credits == 2


async def test_watcher_down_and_back_loses_nothing(db: Database, chain: Chain) -> None:
    customer_id, address = await _customer_with_address(db, confirmations=1)
    chain.fake.pay(address, 100_000)
    await _scan(db, chain)

    chain.fake.down = True  # 503
    chain.fake.mine()
    assert (await _scan(db, chain)).unavailable
    chain.fake.down = False
    chain.server.stop()  # connection refused
    assert (await _scan(db, chain)).unavailable
    [row] = await _rows(db)
    assert (row.state, row.confirmations) == (BitcoinPaymentState.PENDING, 0)

    chain.fake.pay(address, 30_000)  # paid while nobody was looking
    chain.fake.mine()
    chain.server.start()
    report = await _scan(db, chain)
    assert (report.recorded, report.credited) == (1, 2)
    async with db.session() as session:
        assert await balance_of(session, customer_id) == -(6500 + 1950)


async def test_the_scan_job_backs_off_while_the_watcher_is_down(
    db: Database, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _customer_with_address(db)
    monkeypatch.setattr(billing.bitcoin, "chain_watcher", lambda: chain.watcher)
    chain.fake.down = True
    waits = []
    for _ in range(3):
        async with db.session() as session:
            job = await session.scalar(
                select(Job).where(Job.kind == BITCOIN_SCAN_JOB, Job.status == JobStatus.PENDING)
            )
            assert job is not None
            payload = job.payload
        async with db.transaction() as session:
            now = await clock.now(session)
        await bitcoin_payments.bitcoin_scan_job(db, json.loads(payload), now)
        async with db.session() as session:
            due = await session.scalar(
                select(Job.due_at).where(
                    Job.kind == BITCOIN_SCAN_JOB, Job.status == JobStatus.PENDING
                )
            )
        assert due is not None
        waits.append(due - now)
    assert waits == [timedelta(minutes=2), timedelta(minutes=4), timedelta(minutes=8)]
    chain.fake.down = False
    async with db.session() as session:
        now = await clock.now(session)
    await bitcoin_payments.bitcoin_scan_job(db, {"outages": 3}, now)
    async with db.session() as session:
        job = await session.scalar(
            select(Job).where(Job.kind == BITCOIN_SCAN_JOB, Job.status == JobStatus.PENDING)
        )
        assert job is not None and job.due_at - now == bitcoin_payments.POLL_EVERY
        assert '"outages": 0' in job.payload


async def test_no_rate_for_the_currency_is_one_customers_failure(
    db: Database, chain: Chain
) -> None:
    """A customer in a currency without a rate is recorded for the administrators and
    retried later; the others' payments are credited."""
    _, address = await _customer_with_address(db, confirmations=1)
    async with db.transaction() as session:
        euro = await make_customer(session, currency="EUR", name="Emmy")
        euro_address = await request_address(session, admin_viewer(), euro.id)
    chain.fake.pay(address, 100_000)
    chain.fake.pay(euro_address.address, 100_000)
    chain.fake.mine()
    report = await _scan(db, chain)
    assert (report.credited, report.failed_customers) == (1, 1)
    async with db.session() as session:
        failure = await session.scalar(select(RunFailure))
        assert failure is not None
        assert (failure.customer_id, failure.code) == (euro.id, "NO_BITCOIN_RATE")
