"""The collection run: charge every due attempt, each invoice for its own outstanding amount.

The singleton :data:`COLLECTION_RUN_JOB` (or ``kassa collect``) runs :func:`run_collection`.
Every charge goes through :mod:`billing.card_charges`, the flow all card charges share:

1. **Claim** a batch of due SCHEDULED attempts (``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
   one per invoice — the latest due; earlier ones are SUPERSEDED, so a run that catches up
   after downtime charges once — and skipping invoices with an attempt still UNKNOWN.  Each
   is decided on the invoice's *current* figures: nothing outstanding → CANCELED (PAID);
   auto-payment off or no default card → CANCELED with that reason, which the invoice shows
   (``not_charged_reason``); otherwise the attempt becomes UNKNOWN (in flight) with its
   amount and card, and its charge is opened as a PENDING payment under the key
   ``attempt-<id>`` (:func:`billing.card_charges.open_charges`) — **committed before the
   processor is called**.
2. **Charge** the batch with at most ``concurrency`` calls in flight (an asyncio semaphore)
   while the previous batch's answers are being recorded.
3. **Record** a batch's answers in one transaction, set-based
   (:func:`billing.card_charges.record`): SUCCEEDED is a COMPLETED payment (ledger,
   allocation to the attempt's invoice first, status PAID or PARTIALLY_PAID, the invoice's
   other attempts canceled) and the attempt SUCCEEDED; DECLINED is FAILED for both; no
   answer leaves both open (UNKNOWN) for the card-charge janitor.
4. **Reschedule** the job for the earliest attempt still planned (or, while a charge is in
   flight, a look after the janitor).

One invoice never stops the run (:mod:`billing.run_failures`): deciding a batch (1) and
booking its answers (3, :func:`billing.card_charges.record_each`) are isolated per invoice.
An invoice whose decision fails keeps its attempt SCHEDULED, is recorded for the
administrators and passed over until its retry; one whose answer cannot be booked stays in
flight for the janitor, which books it at its next check.  The others are charged.

Crash safety (SIGKILL anywhere): an attempt and its payment are open from the commit before
the call until the commit of the answer, so a killed run leaves them open and the janitor
asks the processor by the deterministic key — and sends the same intent again under that key
if the processor never saw it — instead of charging anew.  Two runs never overlap: on
PostgreSQL a session advisory lock admits one (it dies with its connection); SQLite runs
one worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from billing import card_charges, clock, collection, jobs, payment_systems, run_failures
from billing.db import Database
from billing.models import (
    AttemptStatus,
    CollectionAttempt,
    Customer,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentChannel,
    PaymentMethod,
    RunKind,
)
from billing.periods import local_date
from billing.processing import ChargeResult

log = logging.getLogger("kassa.billing.collection_run")

#: The tables the set-based statements below write (Core, for executemany).
_ATTEMPTS = cast(Table, CollectionAttempt.__table__)
_INVOICES = cast(Table, Invoice.__table__)

#: The singleton job that charges due attempts (:func:`collection_run_job`).
COLLECTION_RUN_JOB = "collection_run"
#: Attempts claimed (and committed as in flight) per transaction.
BATCH_SIZE = 500
#: Processor calls in flight at once.
CONCURRENCY = 100
#: While a charge is in flight, how soon the run looks again whether the janitor has
#: settled it (the invoice's later attempts wait for it).
RECONCILE_AFTER = timedelta(minutes=5)
#: When another run holds the lock, look again this much later.
BUSY_RETRY = timedelta(minutes=1)
#: PostgreSQL advisory lock key of the collection run ("kassa collect").
_LOCK_KEY = 0x6B617373_61636F6C


@dataclass
class RunReport:
    """What a run did, for logs, the CLI and the benchmark."""

    succeeded: int = 0
    failed: int = 0
    unknown: int = 0
    canceled: int = 0
    busy: bool = False
    charged: dict[str, int] = field(default_factory=dict)


# --- one run at a time ----------------------------------------------------------------------


@asynccontextmanager
async def _exclusive(db: Database) -> AsyncIterator[bool]:
    """Whether this run may go ahead: PostgreSQL's session advisory lock, held on a connection
    of its own for the whole run and released (also by the server, if we die) at the end."""
    if db.is_sqlite:
        yield True
        return
    async with db.engine.connect() as conn:
        got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": _LOCK_KEY}))
        await conn.commit()
        try:
            yield got
        finally:
            if got:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
                await conn.commit()


async def run_collection(
    db: Database, now: datetime, *, batch_size: int = BATCH_SIZE, concurrency: int = CONCURRENCY
) -> RunReport:
    """Charge every attempt due by ``now``; see the module docstring."""
    report = RunReport()
    semaphore = asyncio.Semaphore(concurrency)
    async with _exclusive(db) as alone:
        if not alone:
            report.busy = True
            async with db.transaction() as session:
                await jobs.schedule(
                    session, COLLECTION_RUN_JOB, now + BUSY_RETRY, unique_key=COLLECTION_RUN_JOB
                )
            return report
        previous: (
            tuple[list[card_charges.Intent], asyncio.Task[list[ChargeResult | None]]] | None
        ) = None
        while True:
            batch = await _claim(db, now, batch_size, report)
            calls = asyncio.create_task(card_charges.send(batch, semaphore)) if batch else None
            if previous is not None:
                await _record(db, previous[0], await previous[1], now, report)
            if calls is None:
                break
            previous = (batch, calls)
        async with db.transaction() as session:
            await jobs.reschedule(
                session, COLLECTION_RUN_JOB, COLLECTION_RUN_JOB, lambda s: next_run_at(s, now)
            )
    log.info("collection run at %s: %s", now.isoformat(), report)
    return report


@jobs.detached_handler(COLLECTION_RUN_JOB)
async def collection_run_job(db: Database, payload: dict[str, Any], now: datetime) -> None:
    """The singleton job: safe to run any number of times (attempts change state once)."""
    await run_collection(db, now)


async def next_run_at(session: AsyncSession, now: datetime) -> datetime | None:
    """When the run has work next: the earliest planned attempt that is not waiting on an
    UNKNOWN one, or — while any attempt is UNKNOWN — a look after the janitor."""
    first = await session.scalar(
        select(func.min(CollectionAttempt.scheduled_at)).where(
            CollectionAttempt.status == AttemptStatus.SCHEDULED,
            ~_waits_on_unknown(),
            ~_waits_for_retry(now),
        )
    )
    # A direct-debit schedule in flight waits for the gateway's poll, which reschedules the
    # run when it settles; only charges the janitor is reconciling are looked after here.
    unknown = await session.scalar(
        select(func.count(CollectionAttempt.id))
        .join(Payment, Payment.id == CollectionAttempt.payment_id)
        .where(
            CollectionAttempt.status == AttemptStatus.UNKNOWN, Payment.next_check_at.is_not(None)
        )
    )
    retry = await run_failures.next_retry_at(session, RunKind.COLLECTION, now)
    candidates = [
        t for t in (first, now + RECONCILE_AFTER if unknown else None, retry) if t is not None
    ]
    return max(min(candidates), now) if candidates else None


def _waits_on_unknown() -> Any:
    """An attempt whose invoice has another attempt in flight or unreconciled."""
    other = aliased(CollectionAttempt)
    return exists().where(
        other.invoice_id == CollectionAttempt.invoice_id, other.status == AttemptStatus.UNKNOWN
    )


def _waits_for_retry(now: datetime) -> Any:
    """An attempt whose invoice failed in an earlier run and waits for its retry."""
    return run_failures.waiting(RunKind.COLLECTION, now, CollectionAttempt.invoice_id)


# --- claiming -------------------------------------------------------------------------------


async def _claim(
    db: Database, now: datetime, batch_size: int, report: RunReport
) -> list[card_charges.Intent]:
    """Decide the next batch of due attempts and commit the ones to charge as in flight.

    Loops until it has something to charge or nothing is due, so a batch made only of
    cancellations does not end the run.
    """
    while True:
        async with db.transaction() as session:
            chosen = await _due_attempts(session, now, batch_size)
            if not chosen:
                return []
            decided = await run_failures.isolate(
                session,
                RunKind.COLLECTION,
                chosen,
                lambda due: run_failures.Subject(due.customer_id, due.invoice_id),
                lambda chunk: _decide(session, chunk, now),
                now,
                log,
            )
        report.canceled += sum(part.canceled for part in decided.results)
        claimed = [intent for part in decided.results for intent in part.intents]
        if claimed:
            return claimed


class _Due(NamedTuple):
    """An invoice's latest due attempt."""

    invoice_id: int
    attempt_id: int
    customer_id: int


@dataclass(frozen=True, slots=True)
class _Decided:
    """What deciding some due attempts came to: the charges opened, the attempts canceled."""

    intents: list[card_charges.Intent]
    canceled: int


async def _due_attempts(session: AsyncSession, now: datetime, batch_size: int) -> list[_Due]:
    """Up to ``batch_size`` invoices with an attempt due, each with its latest due attempt;
    the earlier due attempts of those invoices are superseded."""
    query = (
        select(CollectionAttempt.id, CollectionAttempt.invoice_id)
        .where(
            CollectionAttempt.status == AttemptStatus.SCHEDULED,
            CollectionAttempt.scheduled_at <= now,
            ~_waits_on_unknown(),
            ~_waits_for_retry(now),
        )
        .order_by(CollectionAttempt.scheduled_at, CollectionAttempt.id)
        .limit(batch_size)
    )
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        query = query.with_for_update(skip_locked=True, of=CollectionAttempt)
    invoice_ids = list(dict.fromkeys(row.invoice_id for row in (await session.execute(query))))
    if not invoice_ids:
        return []
    due = (
        await session.execute(
            select(
                CollectionAttempt.id, CollectionAttempt.invoice_id, CollectionAttempt.customer_id
            )
            .where(
                CollectionAttempt.invoice_id.in_(invoice_ids),
                CollectionAttempt.status == AttemptStatus.SCHEDULED,
                CollectionAttempt.scheduled_at <= now,
            )
            .order_by(CollectionAttempt.scheduled_at, CollectionAttempt.id)
        )
    ).all()
    latest = {row.invoice_id: row for row in due}  # the last one wins
    superseded = [row.id for row in due if latest[row.invoice_id].id != row.id]
    if superseded:
        await _cancel(
            session,
            [(attempt_id, collection.CancelReason.SUPERSEDED) for attempt_id in superseded],
            now,
        )
    return [_Due(row.invoice_id, row.id, row.customer_id) for row in latest.values()]


async def _cancel(
    session: AsyncSession, attempts: Sequence[tuple[int, collection.CancelReason]], now: datetime
) -> None:
    table = _ATTEMPTS
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(status=AttemptStatus.CANCELED, reason=bindparam("b_reason"), finished_at=now),
        [{"b_id": attempt_id, "b_reason": reason.value} for attempt_id, reason in attempts],
    )


async def _decide(session: AsyncSession, chosen: Sequence[_Due], now: datetime) -> _Decided:
    """Cancel what is not to be charged and open the rest's charges, from current figures."""
    invoice_ids = [due.invoice_id for due in chosen]
    invoices = {
        row.id: row
        for row in (
            await session.execute(
                select(
                    Invoice.id,
                    Invoice.number,
                    Invoice.status,
                    Invoice.total,
                    Invoice.amount_paid,
                    Invoice.currency,
                    Invoice.customer_id,
                    Customer.auto_payment,
                    Customer.time_zone,
                )
                .join(Customer, Customer.id == Invoice.customer_id)
                .where(Invoice.id.in_(invoice_ids))
                .order_by(Invoice.id)
            )
        ).all()
    }
    cards = {
        row.customer_id: row
        for row in (
            await session.execute(
                select(
                    PaymentMethod.id,
                    PaymentMethod.customer_id,
                    PaymentMethod.token,
                    PaymentMethod.processor,
                ).where(
                    PaymentMethod.customer_id.in_({i.customer_id for i in invoices.values()}),
                    PaymentMethod.is_default,
                    PaymentMethod.removed_at.is_(None),
                )
            )
        ).all()
    }
    canceled: list[tuple[int, collection.CancelReason]] = []
    not_charged: list[dict[str, Any]] = []
    attempt_ids: list[int] = []
    drafts: list[card_charges.Draft] = []
    for invoice_id, attempt_id, _ in chosen:
        invoice = invoices[invoice_id]
        outstanding = invoice.total - invoice.amount_paid
        card = cards.get(invoice.customer_id)
        if invoice.status == InvoiceStatus.VOID:
            canceled.append((attempt_id, collection.CancelReason.VOIDED))
        elif outstanding <= 0 or invoice.status == InvoiceStatus.PENDING_REVIEW:
            canceled.append((attempt_id, collection.CancelReason.PAID))
        elif not invoice.auto_payment or card is None:
            reason = (
                collection.NotCharged.AUTO_PAYMENT_OFF
                if not invoice.auto_payment
                else collection.NotCharged.NO_PAYMENT_METHOD
            )
            canceled.append((attempt_id, collection.CancelReason(reason.value)))
            not_charged.append({"b_id": invoice_id, "b_reason": reason.value})
        else:
            not_charged.append({"b_id": invoice_id, "b_reason": None})
            attempt_ids.append(attempt_id)
            drafts.append(
                card_charges.Draft(
                    invoice.customer_id,
                    card.id,
                    card.processor,
                    card.token,
                    outstanding,
                    invoice.currency,
                    invoice_id,
                    key=charge_key(attempt_id),
                    description=f"Invoice {invoice.number}",
                    channel=PaymentChannel.DIRECT_DEBIT
                    if payment_systems.collects_by_schedule(card.processor)
                    else PaymentChannel.CARD,
                    due_date=local_date(now, invoice.time_zone),
                )
            )
    if canceled:
        await _cancel(session, canceled, now)
    if not_charged:
        table = _INVOICES
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(not_charged_reason=bindparam("b_reason")),
            not_charged,
        )
    intents = await card_charges.open_charges(session, drafts, now)
    if intents:
        table = _ATTEMPTS
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                status=AttemptStatus.UNKNOWN,
                amount=bindparam("b_amount"),
                payment_method_id=bindparam("b_card"),
                processor=bindparam("b_processor"),
                payment_id=bindparam("b_payment"),
                attempted_at=now,
                message=None,
            ),
            [
                {
                    "b_id": attempt_id,
                    "b_amount": draft.amount,
                    "b_card": draft.payment_method_id,
                    "b_processor": draft.processor,
                    "b_payment": intent.payment_id,
                }
                for attempt_id, draft, intent in zip(attempt_ids, drafts, intents, strict=True)
            ],
        )
    return _Decided(intents, len(canceled))


def charge_key(attempt_id: int) -> str:
    """The processor idempotency key of an attempt's charge: the same for every try of it."""
    return f"attempt-{attempt_id}"


# --- recording ------------------------------------------------------------------------------


async def _record(
    db: Database,
    intents: Sequence[card_charges.Intent],
    results: Sequence[ChargeResult | None],
    now: datetime,
    report: RunReport,
) -> None:
    """Book a batch's answers in one transaction (the attempts follow their payments)."""
    async with db.transaction() as session:
        recorded = await card_charges.record_each(
            session,
            [(intent.payment_id, result) for intent, result in zip(intents, results, strict=True)],
            now,
        )
    recorded.count()
    report.succeeded += len(recorded.completed)
    report.failed += len(recorded.failed)
    report.unknown += len(recorded.unknown)
    for currency, amount in recorded.charged.items():
        report.charged[currency] = report.charged.get(currency, 0) + amount


async def collect_now(db: Database) -> RunReport:
    """Run collection at the clock's "now" (``kassa collect``)."""
    async with db.session() as session:
        now = await clock.now(session)
    return await run_collection(db, now)
