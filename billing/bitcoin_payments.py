"""Bitcoin payments: what the chain watcher reports, recorded, credited, dropped or reversed.

The singleton job :data:`BITCOIN_SCAN_JOB` (:func:`scan`) asks the chain watcher
(:func:`billing.bitcoin.chain_watcher`) about every address ever handed out — old ones stay
watched — outside any database transaction, then applies the answer customer by customer,
each in its own savepoint (:func:`billing.run_failures.isolate`), so one customer's problem
(no exchange rate for its currency) is recorded for the administrators and retried later
while the others go on.

* An output paying a customer's address is **recorded** when first seen: a PENDING
  :class:`~billing.models.Payment` (channel BITCOIN) and its
  :class:`~billing.models.BitcoinPayment` (``txid:vout``, satoshi, confirmations and the
  owner's latest rate for the customer's currency at that moment).  The address's
  ``first_funded_at`` is set then.
* Once it has the owner's required confirmations it is **credited** (:func:`_credit`):
  converted at the recorded rate, half-up to the currency's minor unit, and booked as one
  transaction balanced in each currency — the BTC side (wallet book +, conversion book −, in
  satoshi) and the customer's side (conversion book +, customer book −) — then settled
  against open invoices oldest first like any payment.  A payment worth less than the
  owner's minimum (or nothing once converted) is BELOW_MINIMUM instead: flagged for an
  administrator, who may credit it by hand (:func:`credit_by_hand`).
* A payment not credited whose transaction the watcher no longer knows (replaced by fee,
  double-spent) is **dropped**: its payment FAILED, never credited.
* A credited payment whose transaction a reorganisation removed is **reversed** in a new
  REVERSAL transaction, its invoices reopened, its payment VOIDED, and it is flagged.

One ``txid:vout`` is one row (a unique constraint, and a lookup before each insert), so a
watcher repeating itself changes nothing; each step moves a state forward once.  A watcher
that does not answer (:class:`~billing.bitcoin.WatcherUnavailable`) changes nothing either:
the job backs off (:func:`backoff`), and the next answer, which lists everything the chain
holds, catches up.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import bitcoin, clock, idempotency, jobs, ledger, run_failures, settlement
from billing.access import Viewer, require_staff, visible
from billing.bitcoin import ChainWatcher, SeenOutput, WatchedAddress, WatcherUnavailable
from billing.bitcoin_addresses import SCAN_EVERY, SCAN_JOB, addresses_of
from billing.customers import get_customer, lock_customers
from billing.db import Database
from billing.errors import NotFound, UserError
from billing.invoices import get_invoice
from billing.letterheads import owner_in_scope
from billing.models import (
    BitcoinAddress,
    BitcoinPayment,
    BitcoinPaymentState,
    BitcoinRateSource,
    BitcoinSettings,
    BitcoinWallet,
    Customer,
    Invoice,
    Job,
    JobStatus,
    LedgerAccountKind,
    Payment,
    PaymentChannel,
    PaymentStatus,
    Rate,
    RunKind,
    TransactionKind,
    table_of,
)
from billing.money import apply_rate

log = logging.getLogger("kassa.billing.bitcoin_payments")

BITCOIN_SCAN_JOB = SCAN_JOB
#: How often the chain is asked while all is well.
POLL_EVERY = SCAN_EVERY
#: The longest wait between two tries while the watcher is down (the wait doubles).
BACKOFF_MAX = timedelta(minutes=30)
SATOSHI_PER_BTC = 10**8
#: The flags an administrator sees on a payment.
BELOW_MINIMUM = "BELOW_MINIMUM"
REORGANISED = "REORGANISED"
#: States in which the chain is still asked about a payment.
_WATCHED = (
    BitcoinPaymentState.PENDING,
    BitcoinPaymentState.BELOW_MINIMUM,
    BitcoinPaymentState.CREDITED,
)


@dataclass
class ScanReport:
    """What one scan did, for the log, the CLI and the benchmark."""

    addresses: int = 0
    outputs: int = 0
    recorded: int = 0
    credited: int = 0
    below_minimum: int = 0
    dropped: int = 0
    reversed: int = 0
    failed_customers: int = 0
    #: The watcher did not answer: nothing was changed.
    unavailable: bool = False
    #: No watcher is configured.
    skipped: bool = False


def to_minor(satoshis: int, minor_per_btc: int) -> int:
    """``satoshis`` in the currency a rate of ``minor_per_btc`` prices: rounded once,
    half-up, to the currency's minor unit."""
    return apply_rate(satoshis, Decimal(minor_per_btc).scaleb(-8))


def to_satoshis(minor: int, minor_per_btc: int) -> int:
    """The satoshi that buy ``minor`` at ``minor_per_btc`` (half-up): a BIP21 amount."""
    return apply_rate(minor, Decimal(SATOSHI_PER_BTC) / Decimal(minor_per_btc))


#: A polled rate older than this is not used (:func:`latest_rate`): the price job polls every
#: 5 minutes, so this is several failed polls in a row.
RATE_MAX_AGE = timedelta(minutes=30)


async def latest_rate(
    session: AsyncSession, reseller_id: int | None, currency: str, now: datetime
) -> Rate | None:
    """The owner's newest rate for ``currency`` fetched by ``now``, if it may be used: a
    fixed rate while the owner's rates are fixed, a polled one while it is at most
    :data:`RATE_MAX_AGE` old.  None otherwise: a payment then waits (``NO_BITCOIN_RATE``, a
    run failure the next scan retries) rather than convert at an old or abandoned price."""
    owner_key = ledger.system_owner_key(reseller_id)
    rate = await session.scalar(
        select(Rate)
        .where(Rate.owner_key == owner_key, Rate.currency == currency, Rate.fetched_at <= now)
        .order_by(Rate.fetched_at.desc(), Rate.id.desc())
        .limit(1)
    )
    if rate is None:
        return None
    if rate.source == BitcoinRateSource.HTTP:
        return rate if now - rate.fetched_at <= RATE_MAX_AGE else None
    settings = await session.get(BitcoinSettings, owner_key)
    return rate if settings is None or settings.rate_source == rate.source else None


# --- the scan ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Watched:
    """What a scan reads before asking the chain."""

    addresses: dict[str, BitcoinAddress]
    #: (txid, vout) → customer of each payment the chain is still asked about.
    tracked: dict[tuple[str, int], int]


async def _watched(db: Database, now: datetime) -> _Watched:
    async with db.session() as session:
        rows = (await session.scalars(select(BitcoinAddress))).all()
        tracked = await session.execute(
            select(BitcoinPayment.txid, BitcoinPayment.vout, BitcoinPayment.customer_id).where(
                BitcoinPayment.state.in_(_WATCHED)
            )
        )
        return _Watched(
            {row.address: row for row in rows}, {(t, v): c for t, v, c in tracked.all()}
        )


async def scan(db: Database, now: datetime, watcher: ChainWatcher | None = None) -> ScanReport:
    """Ask the watcher about every address and apply what it says (the module docstring)."""
    report = ScanReport()
    watcher = watcher or bitcoin.chain_watcher()
    if watcher is None:
        report.skipped = True
        return report
    watched = await _watched(db, now)
    report.addresses = len(watched.addresses)
    try:
        outputs = await watcher.outputs(
            [WatchedAddress(a.address, a.created_at) for a in watched.addresses.values()]
        )
        seen = {(o.txid, o.vout) for o in outputs}
        missing = {txid for txid, vout in watched.tracked if (txid, vout) not in seen}
        gone = {txid for txid in sorted(missing) if await watcher.confirmations(txid) is None}
    except WatcherUnavailable as error:
        log.warning("bitcoin scan: the chain watcher is unavailable (%s); nothing changed", error)
        report.unavailable = True
        return report
    report.outputs = len(outputs)
    by_customer: dict[int, list[SeenOutput]] = defaultdict(list)
    for output in outputs:
        address = watched.addresses.get(output.address)
        if address is not None:
            by_customer[address.customer_id].append(output)
    gone_by_customer: dict[int, set[str]] = defaultdict(set)
    for (txid, _vout), customer_id in watched.tracked.items():
        if txid in gone:
            gone_by_customer[customer_id].add(txid)
    customers = sorted(set(by_customer) | set(gone_by_customer))

    async with db.transaction() as session:
        waiting = set(
            await session.scalars(
                select(Customer.id).where(
                    Customer.id.in_(customers),
                    run_failures.waiting(RunKind.BITCOIN, now, Customer.id),
                )
            )
        )
        todo = [c for c in customers if c not in waiting]

        async def work(chunk: Sequence[int]) -> dict[str, int]:
            counts: dict[str, int] = defaultdict(int)
            for customer in await lock_customers(session, set(chunk)):
                await _apply(
                    session,
                    customer,
                    by_customer.get(customer.id, []),
                    gone_by_customer.get(customer.id, set()),
                    watched.addresses,
                    now,
                    counts,
                )
            return counts

        isolated = await run_failures.isolate(
            session,
            RunKind.BITCOIN,
            todo,
            lambda c: run_failures.Subject(c),
            work,
            now,
            log,
        )
    for counts in isolated.results:
        for name, count in counts.items():
            setattr(report, name, getattr(report, name) + count)
    report.failed_customers = len(isolated.failed)
    log.info("bitcoin scan at %s: %s", now.isoformat(), report)
    return report


async def _apply(
    session: AsyncSession,
    customer: Customer,
    outputs: list[SeenOutput],
    gone: set[str],
    addresses: dict[str, BitcoinAddress],
    now: datetime,
    counts: dict[str, int],
) -> None:
    """One customer's part of a scan, under its lock."""
    settings = await session.get(BitcoinSettings, ledger.system_owner_key(customer.reseller_id))
    required = settings.confirmations if settings is not None else 1
    for output in outputs:
        row = await session.scalar(
            select(BitcoinPayment).where(
                BitcoinPayment.txid == output.txid, BitcoinPayment.vout == output.vout
            )
        )
        if row is None:
            row = await _record(session, customer, addresses[output.address], output, now)
            counts["recorded"] += 1
        elif row.state in _WATCHED:
            row.confirmations = output.confirmations
        if row.state == BitcoinPaymentState.PENDING and row.confirmations >= required:
            if await _below_minimum(session, customer, row, settings, now):
                row.state = BitcoinPaymentState.BELOW_MINIMUM
                row.flag = BELOW_MINIMUM
                counts["below_minimum"] += 1
            else:
                await _credit(session, customer, row, now)
                counts["credited"] += 1
    if gone:
        rows = await session.scalars(
            select(BitcoinPayment).where(
                BitcoinPayment.customer_id == customer.id,
                BitcoinPayment.txid.in_(sorted(gone)),
                BitcoinPayment.state.in_(_WATCHED),
            )
        )
        for row in rows.all():
            if row.state == BitcoinPaymentState.CREDITED:
                await _reverse(session, customer, row, now)
                counts["reversed"] += 1
            else:
                await _drop(session, row, now)
                counts["dropped"] += 1
    await session.flush()


async def _record(
    session: AsyncSession,
    customer: Customer,
    address: BitcoinAddress,
    output: SeenOutput,
    now: datetime,
) -> BitcoinPayment:
    """A newly seen output as a PENDING payment at the rate of this moment."""
    rate = await latest_rate(session, customer.reseller_id, customer.currency, now)
    if rate is None:
        raise UserError(
            "NO_BITCOIN_RATE",
            f"a bitcoin payment arrived but there is no current exchange rate for "
            f"{customer.currency}: add one to the Bitcoin settings (a polled price older "
            f"than {RATE_MAX_AGE.seconds // 60} minutes is not used: check the price endpoint)",
            "rates",
        )
    payment = Payment(
        customer_id=customer.id,
        method=PaymentChannel.BITCOIN,
        amount=to_minor(output.satoshis, rate.minor_per_btc),
        currency=customer.currency,
        refunded_amount=0,
        status=PaymentStatus.PENDING,
        reference=f"{output.txid}:{output.vout}",
        received_at=now,
    )
    session.add(payment)
    await session.flush()
    row = BitcoinPayment(
        payment_id=payment.id,
        address_id=address.id,
        customer_id=customer.id,
        txid=output.txid,
        vout=output.vout,
        satoshis=output.satoshis,
        confirmations=output.confirmations,
        rate_id=rate.id,
        minor_per_btc=rate.minor_per_btc,
        state=BitcoinPaymentState.PENDING,
        first_seen_at=now,
    )
    session.add(row)
    addresses = table_of(BitcoinAddress)  # ``address`` was read in another session
    await session.execute(
        update(addresses)
        .where(addresses.c.id == address.id, addresses.c.first_funded_at.is_(None))
        .values(first_funded_at=now)
    )
    await session.flush()
    return row


async def _below_minimum(
    session: AsyncSession,
    customer: Customer,
    row: BitcoinPayment,
    settings: BitcoinSettings | None,
    now: datetime,
) -> bool:
    """Whether the payment is worth less than the owner's minimum, or nothing at all in the
    customer's currency.  A minimum in a third currency is compared at the owner's latest
    rate for it."""
    payment = await session.get(Payment, row.payment_id)
    assert payment is not None
    if payment.amount <= 0:
        return True
    if settings is None:
        return False
    if settings.minimum_currency == "BTC":
        return row.satoshis < settings.minimum_amount
    if settings.minimum_currency == customer.currency:
        return payment.amount < settings.minimum_amount
    rate = await latest_rate(session, customer.reseller_id, settings.minimum_currency, now)
    if rate is None:
        raise UserError(
            "NO_BITCOIN_RATE",
            f"the minimum payment is in {settings.minimum_currency}, which has no rate",
            "minimumCurrency",
        )
    return to_minor(row.satoshis, rate.minor_per_btc) < settings.minimum_amount


async def _credit(
    session: AsyncSession, customer: Customer, row: BitcoinPayment, now: datetime
) -> None:
    """Book the payment, balanced per currency, and settle invoices with it."""
    payment = await session.get(Payment, row.payment_id)
    assert payment is not None
    owner, currency = customer.reseller_id, customer.currency
    wallet = await ledger.system_book(session, LedgerAccountKind.BITCOIN_WALLET, owner, "BTC")
    conversion_btc = await ledger.system_book(session, LedgerAccountKind.CONVERSION, owner, "BTC")
    conversion = await ledger.system_book(session, LedgerAccountKind.CONVERSION, owner, currency)
    txn = await ledger.post(
        session,
        TransactionKind.PAYMENT,
        [
            ledger.Posting(wallet, row.satoshis, "BTC"),
            ledger.Posting(conversion_btc, -row.satoshis, "BTC"),
            ledger.Posting(conversion, payment.amount, currency),
            ledger.Posting(customer.ledger_account_id, -payment.amount, currency),
        ],
        at=now,
        description=f"Bitcoin payment {row.txid}:{row.vout}",
        customer_id=customer.id,
    )
    payment.transaction_id = txn.id
    payment.status = PaymentStatus.COMPLETED
    row.state = BitcoinPaymentState.CREDITED
    row.credited_at = now
    await session.flush()
    await settlement.apply_credit(session, customer, now)


async def _drop(session: AsyncSession, row: BitcoinPayment, now: datetime) -> None:
    """An uncredited payment whose transaction is gone: never credited."""
    payment = await session.get(Payment, row.payment_id)
    assert payment is not None
    payment.status = PaymentStatus.FAILED
    payment.message = (
        "The transaction disappeared before it was confirmed (replaced or double-spent)."
    )
    row.state = BitcoinPaymentState.DROPPED
    row.ended_at = now


async def _reverse(
    session: AsyncSession, customer: Customer, row: BitcoinPayment, now: datetime
) -> None:
    """A credited payment a reorganisation removed: reversed in a new transaction."""
    payment = await session.get(Payment, row.payment_id)
    assert payment is not None and payment.transaction_id is not None
    await settlement.release_payment(session, payment, payment.amount, now, customer.time_zone)
    reversal = await ledger.reverse(
        session,
        payment.transaction_id,
        TransactionKind.REVERSAL,
        at=now,
        description=f"Bitcoin payment {row.txid}:{row.vout} removed by a chain reorganisation",
    )
    payment.status = PaymentStatus.VOIDED
    payment.message = "A chain reorganisation removed the transaction after it was credited."
    row.state = BitcoinPaymentState.REVERSED
    row.flag = REORGANISED
    row.flag_cleared_at = None
    row.ended_at = now
    row.reversal_transaction_id = reversal.id
    await session.flush()
    await settlement.apply_credit(session, customer, now)


# --- by hand ----------------------------------------------------------------------------


async def get_bitcoin_payment(
    session: AsyncSession, viewer: Viewer, bitcoin_payment_id: int
) -> BitcoinPayment:
    row = await session.scalar(
        visible(BitcoinPayment, viewer).where(BitcoinPayment.id == bitcoin_payment_id)
    )
    if row is None:
        raise NotFound("bitcoin payment", "bitcoinPaymentId")
    return row


async def credit_by_hand(
    session: AsyncSession, viewer: Viewer, bitcoin_payment_id: int, idempotency_key: str
) -> BitcoinPayment:
    """An administrator credits a confirmed payment below the minimum (at its recorded rate);
    its flag is cleared.  A replay of the key returns the same payment."""
    require_staff(viewer, write=True)
    row = await get_bitcoin_payment(session, viewer, bitcoin_payment_id)
    [customer] = await lock_customers(session, {row.customer_id})
    arguments = {"bitcoin_payment": bitcoin_payment_id}
    previous = await idempotency.replay(
        session, viewer.idempotency_scope, idempotency_key, "credit_bitcoin_payment", arguments
    )
    await session.refresh(row)
    if previous is not None:
        return row
    if row.state != BitcoinPaymentState.BELOW_MINIMUM:
        raise UserError(
            "NOT_CREDITABLE",
            "only a confirmed payment below the minimum is credited by hand; this one is "
            f"{row.state.value.lower().replace('_', ' ')}",
            "bitcoinPaymentId",
        )
    payment = await session.get(Payment, row.payment_id)
    assert payment is not None
    if payment.amount <= 0:
        raise UserError(
            "AMOUNT_NOT_POSITIVE",
            f"this payment is worth nothing in {customer.currency} at its rate",
            "bitcoinPaymentId",
        )
    now = await clock.now(session)
    await _credit(session, customer, row, now)
    row.flag_cleared_at = now
    await idempotency.remember(
        session,
        viewer.idempotency_scope,
        idempotency_key,
        "credit_bitcoin_payment",
        arguments,
        row.id,
        now,
    )
    await session.flush()
    return row


@dataclass(frozen=True, slots=True)
class FlaggedPayment:
    """A payment an administrator should look at, with whose it is."""

    payment: BitcoinPayment
    customer: Customer


#: How many flagged payments the administrators' page lists: the newest.
FLAGGED_LIMIT = 100


async def flagged_payments(
    session: AsyncSession, viewer: Viewer, reseller_id: int | None, limit: int = FLAGGED_LIMIT
) -> list[FlaggedPayment]:
    """The payments to addresses of the owner's wallets whose flag (below the minimum,
    reversed by a reorganisation) is not cleared, newest first.  Staff; ``reseller_id``
    None is the viewer's own owner, and a reseller's staff reach only their own."""
    require_staff(viewer)
    owner = await owner_in_scope(session, viewer, reseller_id)
    visible_ids = visible(BitcoinPayment, viewer).with_only_columns(BitcoinPayment.id)
    rows = await session.execute(
        select(BitcoinPayment, Customer)
        .join(Customer, Customer.id == BitcoinPayment.customer_id)
        .join(BitcoinAddress, BitcoinAddress.id == BitcoinPayment.address_id)
        .join(BitcoinWallet, BitcoinWallet.id == BitcoinAddress.wallet_id)
        .where(
            BitcoinWallet.owner_key == ledger.system_owner_key(owner),
            BitcoinPayment.flag.is_not(None),
            BitcoinPayment.flag_cleared_at.is_(None),
            BitcoinPayment.id.in_(visible_ids),
        )
        .order_by(BitcoinPayment.first_seen_at.desc(), BitcoinPayment.id.desc())
        .limit(limit)
    )
    return [FlaggedPayment(payment, customer) for payment, customer in rows.all()]


# --- the job ----------------------------------------------------------------------------


def backoff(outages: int) -> timedelta:
    """How long to wait after ``outages`` scans in a row found the watcher down."""
    return min(POLL_EVERY * (1 << min(outages, 16)), BACKOFF_MAX)


async def schedule_scan(session: AsyncSession, due_at: datetime, outages: int = 0) -> None:
    """Set the pending scan to ``due_at`` (made if there is none), remembering how many
    scans in a row found the watcher down."""
    job = await session.scalar(
        select(Job).where(Job.unique_key == BITCOIN_SCAN_JOB, Job.status == JobStatus.PENDING)
    )
    if job is None:
        await jobs.schedule(
            session, BITCOIN_SCAN_JOB, due_at, {"outages": outages}, unique_key=BITCOIN_SCAN_JOB
        )
        return
    job.due_at = due_at
    job.payload = json.dumps({**json.loads(job.payload), "outages": outages})


@jobs.detached_handler(BITCOIN_SCAN_JOB)
async def bitcoin_scan_job(db: Database, payload: dict[str, Any], now: datetime) -> None:
    """The singleton scan: every :data:`POLL_EVERY` while the watcher answers, backing off
    while it does not; retired when no watcher is configured."""
    report = await scan(db, now)
    async with db.transaction() as session:
        if report.skipped:
            await jobs.reschedule(session, BITCOIN_SCAN_JOB, BITCOIN_SCAN_JOB, _never)
        elif report.unavailable:
            outages = int(payload.get("outages", 0)) + 1
            await schedule_scan(session, now + backoff(outages), outages)
        else:
            await schedule_scan(session, now + POLL_EVERY)


async def _never(session: AsyncSession) -> datetime | None:
    return None


#: How many of a customer's bitcoin payments are shown: the recent ones.
RECENT = 20


async def payments_of(
    session: AsyncSession, customer_ids: Sequence[int], limit: int = RECENT
) -> dict[int, list[BitcoinPayment]]:
    """Each customer's newest bitcoin payments (at most ``limit``), for a DataLoader batch."""
    found: dict[int, list[BitcoinPayment]] = {c: [] for c in customer_ids}
    rows = await session.scalars(
        select(BitcoinPayment)
        .where(BitcoinPayment.customer_id.in_(customer_ids))
        .order_by(BitcoinPayment.first_seen_at.desc(), BitcoinPayment.id.desc())
    )
    for row in rows:
        if len(found[row.customer_id]) < limit:
            found[row.customer_id].append(row)
    return found


# --- asking to be paid ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """What a customer needs to pay in bitcoin: the address, the BIP21 URI (with the open
    invoice's amount at the current rate when paying one), the rate and when it was
    fetched, the minimum and the confirmations needed."""

    address: BitcoinAddress
    uri: str
    satoshis: int | None
    invoice: Invoice | None
    rate: Rate | None
    minimum_amount: int
    minimum_currency: str
    confirmations: int


async def payment_request(
    session: AsyncSession,
    viewer: Viewer,
    customer_id: int,
    invoice_id: int | None,
    owner_name: str,
) -> PaymentRequest | None:
    """The request for the customer's newest address; None before it has one (or when its
    owner has no Bitcoin settings).  An invoice that is not open asks for no amount."""
    customer = await get_customer(session, viewer, customer_id)
    settings = await session.get(BitcoinSettings, ledger.system_owner_key(customer.reseller_id))
    address = await session.scalar(addresses_of([customer.id]).limit(1))
    if settings is None or address is None:
        return None
    invoice = None if invoice_id is None else await get_invoice(session, viewer, invoice_id)
    if invoice is not None and invoice.customer_id != customer.id:
        raise NotFound("invoice", "invoiceId")
    now = await clock.now(session)
    rate = await latest_rate(session, customer.reseller_id, customer.currency, now)
    satoshis = None
    if invoice is not None and rate is not None and invoice.outstanding > 0:
        satoshis = to_satoshis(invoice.outstanding, rate.minor_per_btc)
    message = (
        f"Invoice {invoice.number}" if invoice is not None else f"Payment from {customer.name}"
    )
    return PaymentRequest(
        address=address,
        uri=bitcoin.bip21_uri(address.address, satoshis, owner_name, message),
        satoshis=satoshis,
        invoice=invoice,
        rate=rate,
        minimum_amount=settings.minimum_amount,
        minimum_currency=settings.minimum_currency,
        confirmations=settings.confirmations,
    )
