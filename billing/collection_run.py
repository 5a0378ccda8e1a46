"""The collection run: charge every due attempt, each invoice for its own outstanding amount.

The singleton ``collection_run`` job (or ``kassa collect``) runs :func:`run_collection`:

1. **Reconcile.**  Attempts left UNKNOWN — a timeout, or a run killed between marking an
   attempt in flight and recording its answer — are looked up at the processor by their
   key (``attempt-<id>``).  Found: the answer is recorded as if it had just arrived.  Never
   seen: the processor never got the request, so the attempt is SCHEDULED again (and charged
   below, under the same key).  Still unknown: asked again :data:`RECONCILE_AFTER` later.
   An UNKNOWN attempt is never charged again under a new key.
2. **Claim** a batch of due SCHEDULED attempts (``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
   one per invoice — the latest due; earlier ones are SUPERSEDED, so a run that catches up
   after downtime charges once — and skipping invoices with an attempt still UNKNOWN.  Each
   is decided on the invoice's *current* figures: nothing outstanding → CANCELED (PAID);
   auto-payment off or no default card → CANCELED with that reason, which the invoice shows
   (``not_charged_reason``); otherwise marked **UNKNOWN with its amount and card, and
   committed, before the processor is called**.
3. **Charge** the batch with at most ``concurrency`` calls in flight (an asyncio semaphore)
   while the previous batch's answers are being recorded.
4. **Record** a batch's answers in one transaction, set-based: SUCCEEDED books card
   payments through :func:`billing.payments.record_card_charges` (ledger, allocation
   to the attempt's invoice first, status PAID or PARTIALLY_PAID, the invoice's other
   attempts canceled); DECLINED is FAILED with the decline code; no answer stays UNKNOWN
   for step 1 next time.
5. **Reschedule** the job for the earliest attempt still planned (or the next reconciliation).

Crash safety (SIGKILL anywhere): an attempt is UNKNOWN from the commit before its call until
the commit of its answer, so a killed run leaves it UNKNOWN, and step 1 of the next run asks
the processor by its deterministic key instead of charging again.  Recording is guarded by
the attempt's status, so an answer is booked once.  Two runs never overlap: on PostgreSQL a
session advisory lock admits one (it dies with its connection); SQLite runs one worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from billing import clock, jobs, payments, processing
from billing.collection import (
    COLLECTION_RUN_JOB,
    CancelReason,
    NotCharged,
    charge_key,
)
from billing.db import Database
from billing.errors import UserError
from billing.models import (
    AttemptStatus,
    CollectionAttempt,
    Customer,
    Invoice,
    InvoiceStatus,
    PaymentMethod,
)
from billing.processing import ChargeOutcome, ChargeRequest, ChargeResult, ProcessorTimeout

log = logging.getLogger("kassa.billing.collection_run")

#: Attempts claimed (and committed as in flight) per transaction.
BATCH_SIZE = 500
#: Processor calls in flight at once.
CONCURRENCY = 100
#: A call with no answer after this long counts as no answer (UNKNOWN, looked up later).
CALL_TIMEOUT_SECONDS = 60.0
#: How long after a charge with no answer the processor is asked about it again.
RECONCILE_AFTER = timedelta(minutes=5)
#: When another run holds the lock, look again this much later.
BUSY_RETRY = timedelta(minutes=1)
#: PostgreSQL advisory lock key of the collection run ("kassa collect").
_LOCK_KEY = 0x6B617373_61636F6C
_NO_ANSWER = "No answer from the card processor yet; the charge is looked up by its key."


@dataclass(frozen=True, slots=True)
class Claimed:
    """An attempt committed as in flight: what to send to the processor."""

    attempt_id: int
    invoice_number: str
    amount: int
    currency: str
    token: str
    processor: str


@dataclass
class RunReport:
    """What a run did, for logs, the CLI and the benchmark."""

    succeeded: int = 0
    failed: int = 0
    unknown: int = 0
    canceled: int = 0
    reconciled: int = 0
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
    """Reconcile, then charge every attempt due by ``now``; see the module docstring."""
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
        await _reconcile(db, now, batch_size, semaphore, report)
        previous: tuple[list[Claimed], asyncio.Task[list[ChargeResult | None]]] | None = None
        while True:
            batch = await _claim(db, now, batch_size, report)
            calls = asyncio.create_task(_charge_all(batch, semaphore)) if batch else None
            if previous is not None:
                await _record(
                    db, [c.attempt_id for c in previous[0]], await previous[1], now, report
                )
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
    UNKNOWN one, or — while any attempt is UNKNOWN — the next reconciliation."""
    first = await session.scalar(
        select(func.min(CollectionAttempt.scheduled_at)).where(
            CollectionAttempt.status == AttemptStatus.SCHEDULED, ~_waits_on_unknown()
        )
    )
    unknown = await session.scalar(
        select(func.count(CollectionAttempt.id)).where(
            CollectionAttempt.status == AttemptStatus.UNKNOWN
        )
    )
    candidates = [t for t in (first, now + RECONCILE_AFTER if unknown else None) if t is not None]
    return max(min(candidates), now) if candidates else None


def _waits_on_unknown() -> Any:
    """An attempt whose invoice has another attempt in flight or unreconciled."""
    other = aliased(CollectionAttempt)
    return exists().where(
        other.invoice_id == CollectionAttempt.invoice_id, other.status == AttemptStatus.UNKNOWN
    )


# --- claiming -------------------------------------------------------------------------------


async def _claim(db: Database, now: datetime, batch_size: int, report: RunReport) -> list[Claimed]:
    """Decide the next batch of due attempts and commit the ones to charge as in flight.

    Loops until it has something to charge or nothing is due, so a batch made only of
    cancellations does not end the run.
    """
    while True:
        async with db.transaction() as session:
            chosen = await _due_attempts(session, now, batch_size)
            if not chosen:
                return []
            claimed = await _decide(session, chosen, now, report)
        if claimed:
            return claimed


async def _due_attempts(session: AsyncSession, now: datetime, batch_size: int) -> dict[int, int]:
    """Up to ``batch_size`` invoices with an attempt due, each with its latest due attempt
    (invoice id → attempt id); the earlier due attempts of those invoices are superseded."""
    query = (
        select(CollectionAttempt.id, CollectionAttempt.invoice_id)
        .where(
            CollectionAttempt.status == AttemptStatus.SCHEDULED,
            CollectionAttempt.scheduled_at <= now,
            ~_waits_on_unknown(),
        )
        .order_by(CollectionAttempt.scheduled_at, CollectionAttempt.id)
        .limit(batch_size)
    )
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        query = query.with_for_update(skip_locked=True, of=CollectionAttempt)
    invoice_ids = list(dict.fromkeys(row.invoice_id for row in (await session.execute(query))))
    if not invoice_ids:
        return {}
    due = (
        await session.execute(
            select(CollectionAttempt.id, CollectionAttempt.invoice_id)
            .where(
                CollectionAttempt.invoice_id.in_(invoice_ids),
                CollectionAttempt.status == AttemptStatus.SCHEDULED,
                CollectionAttempt.scheduled_at <= now,
            )
            .order_by(CollectionAttempt.scheduled_at, CollectionAttempt.id)
        )
    ).all()
    latest = {row.invoice_id: row.id for row in due}  # the last one wins
    superseded = [row.id for row in due if latest[row.invoice_id] != row.id]
    if superseded:
        await _cancel(
            session, [(attempt_id, CancelReason.SUPERSEDED) for attempt_id in superseded], now
        )
    return latest


async def _cancel(
    session: AsyncSession, attempts: Sequence[tuple[int, CancelReason]], now: datetime
) -> None:
    table = CollectionAttempt.__table__
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(status=AttemptStatus.CANCELED, reason=bindparam("b_reason"), finished_at=now),
        [{"b_id": attempt_id, "b_reason": reason.value} for attempt_id, reason in attempts],
    )


async def _decide(
    session: AsyncSession, chosen: dict[int, int], now: datetime, report: RunReport
) -> list[Claimed]:
    """Cancel what is not to be charged and mark the rest in flight, from current figures."""
    invoice_ids = list(chosen)
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
                    Customer.id.label("customer_id"),
                    Customer.auto_payment,
                )
                .join(Customer, Customer.id == Invoice.customer_id)
                .where(Invoice.id.in_(invoice_ids))
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
    canceled: list[tuple[int, CancelReason]] = []
    not_charged: list[dict[str, Any]] = []
    in_flight: list[dict[str, Any]] = []
    claimed: list[Claimed] = []
    for invoice_id, attempt_id in chosen.items():
        invoice = invoices[invoice_id]
        outstanding = invoice.total - invoice.amount_paid
        card = cards.get(invoice.customer_id)
        if invoice.status == InvoiceStatus.VOID:
            canceled.append((attempt_id, CancelReason.VOIDED))
        elif outstanding <= 0 or invoice.status == InvoiceStatus.PENDING_REVIEW:
            canceled.append((attempt_id, CancelReason.PAID))
        elif not invoice.auto_payment or card is None:
            reason = (
                NotCharged.AUTO_PAYMENT_OFF
                if not invoice.auto_payment
                else NotCharged.NO_PAYMENT_METHOD
            )
            canceled.append((attempt_id, CancelReason(reason.value)))
            not_charged.append({"b_id": invoice_id, "b_reason": reason.value})
        else:
            in_flight.append(
                {
                    "b_id": attempt_id,
                    "b_amount": outstanding,
                    "b_card": card.id,
                    "b_processor": card.processor,
                }
            )
            not_charged.append({"b_id": invoice_id, "b_reason": None})
            claimed.append(
                Claimed(
                    attempt_id,
                    invoice.number,
                    outstanding,
                    invoice.currency,
                    card.token,
                    card.processor,
                )
            )
    if canceled:
        await _cancel(session, canceled, now)
        report.canceled += len(canceled)
    if not_charged:
        table = Invoice.__table__
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(not_charged_reason=bindparam("b_reason")),
            not_charged,
        )
    if in_flight:
        table = CollectionAttempt.__table__
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                status=AttemptStatus.UNKNOWN,
                amount=bindparam("b_amount"),
                payment_method_id=bindparam("b_card"),
                processor=bindparam("b_processor"),
                attempted_at=now,
                message=None,
            ),
            in_flight,
        )
    return claimed


# --- charging -------------------------------------------------------------------------------


async def _charge_all(
    batch: Sequence[Claimed], semaphore: asyncio.Semaphore
) -> list[ChargeResult | None]:
    return list(await asyncio.gather(*(_charge(claimed, semaphore) for claimed in batch)))


async def _charge(claimed: Claimed, semaphore: asyncio.Semaphore) -> ChargeResult | None:
    """The processor's answer, or None when there is none (timeout, a network error)."""
    request = ChargeRequest(
        token=claimed.token,
        amount=claimed.amount,
        currency=claimed.currency,
        idempotency_key=charge_key(claimed.attempt_id),
        description=f"Invoice {claimed.invoice_number}",
    )
    async with semaphore:
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                return await processing.processor_named(claimed.processor).charge(request)
        except (ProcessorTimeout, TimeoutError):
            return None
        except UserError as error:
            if error.code == "IDEMPOTENCY_KEY_REUSED":
                return None  # a charge exists under this key: the lookup will tell
            # Refused before any charge (an unusable token): a decline in all but name.
            return ChargeResult(
                ChargeOutcome.DECLINED,
                None,
                error.code.lower(),
                error.message,
                claimed.amount,
                claimed.currency,
            )
        except Exception:
            log.exception("attempt %s: the charge call failed", claimed.attempt_id)
            return None


# --- recording ------------------------------------------------------------------------------


async def _record(
    db: Database,
    attempt_ids: Sequence[int],
    results: Sequence[ChargeResult | None],
    now: datetime,
    report: RunReport,
) -> None:
    """Book a batch's answers in one transaction."""
    async with db.transaction() as session:
        await record_answers(session, list(zip(attempt_ids, results, strict=True)), now, report)


async def record_answers(
    session: AsyncSession,
    answers: Sequence[tuple[int, ChargeResult | None]],
    now: datetime,
    report: RunReport,
) -> None:
    """Apply processor answers to UNKNOWN attempts, set-based; an attempt no longer UNKNOWN
    is left be, so an answer is booked once however often it arrives.

    Successes become card payments (:func:`billing.payments.record_card_charges`,
    which locks the customers first), declines FAILED, no answer stays UNKNOWN.
    """
    found = {
        row.id: row
        for row in (
            await session.execute(
                select(
                    CollectionAttempt.id,
                    CollectionAttempt.invoice_id,
                    CollectionAttempt.customer_id,
                    CollectionAttempt.payment_method_id,
                    CollectionAttempt.processor,
                ).where(
                    CollectionAttempt.id.in_([attempt_id for attempt_id, _ in answers]),
                    CollectionAttempt.status == AttemptStatus.UNKNOWN,
                )
            )
        ).all()
    }
    live = [(found[attempt_id], result) for attempt_id, result in answers if attempt_id in found]
    known = [
        (row, result)
        for row, result in live
        if result is not None and result.status != ChargeOutcome.UNKNOWN
    ]
    report.unknown += len(live) - len(known)
    table = CollectionAttempt.__table__
    silent = [
        {"b_id": row.id}
        for row, result in live
        if result is None or result.status == ChargeOutcome.UNKNOWN
    ]
    if silent:
        await session.execute(
            update(table).where(table.c.id == bindparam("b_id")).values(message=_NO_ANSWER), silent
        )
    succeeded = [(row, result) for row, result in known if result.status == ChargeOutcome.SUCCEEDED]
    payment_ids = await payments.record_card_charges(
        session,
        [
            payments.CardCharge(
                row.customer_id, row.invoice_id, row.payment_method_id, row.processor, result
            )
            for row, result in succeeded
        ],
        now,
    )
    outcomes = [
        {
            "b_id": row.id,
            "b_status": AttemptStatus.SUCCEEDED,
            "b_amount": result.amount,
            "b_payment": payment_id,
            "b_reference": result.processor_reference,
            "b_decline": None,
            "b_message": result.message[:500],
        }
        for (row, result), payment_id in zip(succeeded, payment_ids, strict=True)
    ] + [
        {
            "b_id": row.id,
            "b_status": AttemptStatus.FAILED,
            "b_amount": result.amount,
            "b_payment": None,
            "b_reference": result.processor_reference,
            "b_decline": result.decline_code,
            "b_message": result.message[:500],
        }
        for row, result in known
        if result.status != ChargeOutcome.SUCCEEDED
    ]
    if outcomes:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                amount=bindparam("b_amount"),
                payment_id=bindparam("b_payment"),
                processor_reference=bindparam("b_reference"),
                decline_code=bindparam("b_decline"),
                message=bindparam("b_message"),
                finished_at=now,
            ),
            outcomes,
        )
    report.succeeded += len(succeeded)
    report.failed += len(known) - len(succeeded)
    for _, result in succeeded:
        report.charged[result.currency] = report.charged.get(result.currency, 0) + result.amount


# --- reconciling ----------------------------------------------------------------------------


async def _reconcile(
    db: Database,
    now: datetime,
    batch_size: int,
    semaphore: asyncio.Semaphore,
    report: RunReport,
) -> None:
    """Ask the processor about every UNKNOWN attempt (no other run is going: see above)."""
    after = 0
    while True:
        async with db.session() as session:
            rows = (
                await session.execute(
                    select(CollectionAttempt.id, CollectionAttempt.processor)
                    .where(
                        CollectionAttempt.status == AttemptStatus.UNKNOWN,
                        CollectionAttempt.id > after,
                    )
                    .order_by(CollectionAttempt.id)
                    .limit(batch_size)
                )
            ).all()
        if not rows:
            return
        after = rows[-1].id
        answers = await asyncio.gather(*(_lookup(row.id, row.processor, semaphore) for row in rows))
        async with db.transaction() as session:
            never_seen = [
                row.id
                for row, (asked, result) in zip(rows, answers, strict=True)
                if asked and result is None
            ]
            found = [
                (row.id, result)
                for row, (asked, result) in zip(rows, answers, strict=True)
                if asked and result is not None
            ]
            report.unknown += sum(1 for asked, _ in answers if not asked)
            await record_answers(session, found, now, report)
            report.reconciled += sum(
                1 for _, result in found if result.status != ChargeOutcome.UNKNOWN
            )
            if never_seen:
                # The processor never got these: plan them again, due now, same key.
                table = CollectionAttempt.__table__
                await session.execute(
                    update(table)
                    .where(table.c.id.in_(never_seen), table.c.status == AttemptStatus.UNKNOWN)
                    .values(
                        status=AttemptStatus.SCHEDULED,
                        amount=None,
                        attempted_at=None,
                        payment_method_id=None,
                        processor=None,
                        message=None,
                    )
                )
                report.reconciled += len(never_seen)


async def _lookup(
    attempt_id: int, processor: str | None, semaphore: asyncio.Semaphore
) -> tuple[bool, ChargeResult | None]:
    """(asked, answer): the charge booked under the attempt's key, None if never seen."""
    if processor is None:
        return True, None
    async with semaphore:
        try:
            return True, await processing.processor_named(processor).lookup(charge_key(attempt_id))
        except Exception:
            log.exception("attempt %s: the lookup failed", attempt_id)
            return False, None


async def collect_now(db: Database) -> RunReport:
    """Run collection at the clock's "now" (``kassa collect``)."""
    async with db.session() as session:
        now = await clock.now(session)
    return await run_collection(db, now)
