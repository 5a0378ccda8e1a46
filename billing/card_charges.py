"""Card charges: one flow and one state machine for every charge to a stored card.

A collection attempt, paying an invoice and topping up all charge a card the same way:

1. **Intent.**  In the caller's transaction, with the customer locked, the charge is
   written as a PENDING card payment under its processor idempotency key (``payment-<id>``,
   or ``attempt-<id>`` for a collection attempt) with the janitor's first check planned
   (:func:`open_charges`).  The caller commits, which releases the lock.
2. **Call.**  Outside any transaction, the processor the card belongs to is asked to charge
   (:func:`send`).  No answer — a timeout, a network error, a key the processor says was
   used otherwise — is ``None``: the charge may or may not exist.
3. **Record.**  In a new transaction (:func:`record`): succeeded → COMPLETED (ledger, the
   payment's invoice first, then credit), declined → FAILED with the decline code, no answer
   → UNKNOWN.  Only a PENDING or UNKNOWN payment changes, under its customer's lock, so an
   answer is booked once however often it arrives.  A collection attempt follows its
   payment (UNKNOWN while it is open, then SUCCEEDED or FAILED).

So a payment goes PENDING → COMPLETED | FAILED | UNKNOWN, and UNKNOWN → COMPLETED | FAILED.
A charge the issuer wants the customer to confirm (3-D Secure, ``ACTION_REQUIRED``) stays
PENDING with its ``action_url`` kept for the portal; its outcome arrives later by
notification (:mod:`billing.payment_notifications`) or by the janitor's lookup.

A direct-debit gateway's "card" is the customer's account at the gateway: its charge submits a
one-off schedule (a DIRECT_DEBIT payment) and answers SUBMITTED, which leaves the payment
PENDING with no janitor check — the gateway's status poll settles it
(:mod:`billing.gateway_billing`, told of every submission's answer here).  Only an UNKNOWN
submission is the janitor's, looked up (and re-sent) under its key like any charge.

A card stored through a processor account (``PaymentMethod.processor_account_id``) is charged,
looked up and refunded through that account's processor, made with the account's config
(:func:`billing.processor_accounts.make_processor`); the payment records the account.

4. **Janitor.**  A crash between 1 and 3 leaves the payment PENDING, a timeout UNKNOWN.  The
   singleton :data:`JANITOR_JOB` takes every open charge whose ``next_check_at`` has come and
   looks it up by its key at the processor that made it (``Payment.processor``): found →
   recorded as in 3; never seen → the committed intent is sent again under the *same* key
   (were the first call still on its way, the processor makes one charge of the two); still
   no answer → asked again later.  A charge is never sent under a new key.  Checks follow
   Kill Bill's janitor: 5 minutes after the intent, an hour after that, then daily
   (:func:`next_check`).

The collection run and the janitor book a batch of answers at a time through
:func:`record_each`, which isolates each payment: one that cannot be booked stays open for
the janitor's next check and is recorded for the administrators; the others are booked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import (
    customers,
    jobs,
    ledger,
    metrics,
    payment_labels,
    processor_accounts,
    run_failures,
    settlement,
)
from billing.db import Database
from billing.models import (
    AttemptStatus,
    CollectionAttempt,
    Customer,
    LedgerAccountKind,
    Payment,
    PaymentChannel,
    PaymentMethod,
    PaymentStatus,
    RunKind,
    TransactionKind,
)
from billing.payment_systems import ProcessorConfig
from billing.periods import local_date
from billing.processing import (
    CardProcessor,
    ChargeOutcome,
    ChargeRefused,
    ChargeRequest,
    ChargeResult,
    IdempotencyConflict,
    ProcessorTimeout,
)

log = logging.getLogger("kassa.billing.card_charges")

#: The tables the set-based statements below write (Core, for executemany).
_PAYMENTS = cast(Table, Payment.__table__)
_ATTEMPTS = cast(Table, CollectionAttempt.__table__)

#: Opens a transaction that commits when its block exits cleanly: ``Database.transaction``,
#: a GraphQL request's ``Context.transaction``, or :func:`within` a caller's own.
Transactions = Callable[[], AbstractAsyncContextManager[AsyncSession]]

#: The singleton job that reconciles open charges (:func:`run_janitor`).
JANITOR_JOB = "card_charge_janitor"
#: Payments whose charge has no known outcome yet.
OPEN_STATUSES = (PaymentStatus.PENDING, PaymentStatus.UNKNOWN)
#: The janitor's first checks after an intent (Kill Bill: 5m, 1h), then one a day.
CHECK_INTERVALS = (timedelta(minutes=5), timedelta(hours=1))
CHECK_DAILY = timedelta(days=1)
#: A call with no answer after this long counts as no answer; far below the first check, so
#: the janitor does not find a live call's intent.
CALL_TIMEOUT_SECONDS = 60.0
#: Open charges the janitor takes per transaction, and its calls in flight at once.
JANITOR_BATCH = 500
JANITOR_CONCURRENCY = 50

#: What a customer is told about a decline, by the processor's decline code: the UserError
#: code and plain words.  Kassa words these itself so every processor reads the same.
_DECLINES: dict[str, tuple[str, str]] = {
    "insufficient_funds": (
        "INSUFFICIENT_FUNDS",
        "The card has insufficient funds. Try another card or a smaller amount.",
    ),
    "expired_card": ("CARD_EXPIRED", "The card has expired. Add a new card and try again."),
}
_DECLINED = ("CARD_DECLINED", "The card was declined. Try another card or ask your bank why.")
_AWAITING = "The card processor has not confirmed this payment yet; it is checked again shortly."
_CONFIRM = "The card's issuer asks the customer to confirm this payment."
_SUBMITTED = "Submitted to the direct-debit gateway; it is debited on the due date."


def decline_words(decline_code: str | None) -> tuple[str, str]:
    """The UserError code and plain words for a processor's decline code."""
    return _DECLINES.get(decline_code or "", _DECLINED)


def next_check(opened_at: datetime, now: datetime) -> datetime:
    """When the janitor asks about a charge opened at ``opened_at`` next, after ``now``.

    The checks fall at fixed marks from the intent (+5 min, +1 h after that, then daily), so
    a janitor that was down for a while resumes on the schedule instead of catching up on
    every missed check.
    """
    at = opened_at
    for interval in CHECK_INTERVALS:
        at += interval
        if at > now:
            return at
    return at + ((now - at) // CHECK_DAILY + 1) * CHECK_DAILY


def within(session: AsyncSession) -> Transactions:
    """The flow's steps as parts of a transaction the caller already holds.

    For code that builds a whole world in one transaction (the demo, tests): nothing commits
    between the steps, so the crash safety is that of the caller's one transaction.
    """

    @asynccontextmanager
    async def step() -> AsyncIterator[AsyncSession]:
        yield session
        await session.flush()

    return step


# --- 1. intent ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Draft:
    """A charge to open: whose, which card, how much, for which invoice (None: credit)."""

    customer_id: int
    payment_method_id: int
    processor: str
    token: str
    amount: int
    currency: str
    invoice_id: int | None
    #: The processor idempotency key; None for ``payment-<id>``.
    key: str | None = None
    description: str | None = None
    #: DIRECT_DEBIT when the "card" is a direct-debit gateway's account.
    channel: PaymentChannel = PaymentChannel.CARD
    #: The customer's local day the money is due (a gateway's schedule is debited on it).
    due_date: date | None = None


@dataclass(frozen=True, slots=True)
class Intent:
    """A committed charge: the payment it is and the request to send for it, with the
    config of the processor account its card was stored through (None: none)."""

    payment_id: int
    processor: str
    request: ChargeRequest
    config: ProcessorConfig | None = None


async def open_charges(
    session: AsyncSession, drafts: Sequence[Draft], now: datetime
) -> list[Intent]:
    """Write the drafts as PENDING card payments and plan the janitor; returns the intents
    in order.  The caller holds the customers' locks and commits before :func:`send`."""
    if not drafts:
        return []
    first_check = next_check(now, now)
    account_of: dict[int, int | None] = {
        row.id: row.processor_account_id
        for row in await session.execute(
            select(PaymentMethod.id, PaymentMethod.processor_account_id).where(
                PaymentMethod.id.in_({d.payment_method_id for d in drafts})
            )
        )
    }
    configs = await processor_accounts.configs_for(session, account_of.values())
    result = await session.execute(
        insert(Payment).returning(Payment.id, sort_by_parameter_order=True),
        [
            {
                "customer_id": d.customer_id,
                "method": d.channel,
                "amount": d.amount,
                "currency": d.currency,
                "refunded_amount": 0,
                "status": PaymentStatus.PENDING,
                "reference": None,
                "received_at": now,
                "payment_method_id": d.payment_method_id,
                "invoice_id": d.invoice_id,
                "processor": d.processor,
                "processor_account_id": account_of.get(d.payment_method_id),
                "processor_key": d.key,
                "next_check_at": first_check,
                "processor_reference": None,
                "decline_code": None,
                "message": None,
                "transaction_id": None,
            }
            for d in drafts
        ],
    )
    payment_ids = [int(i) for i in result.scalars().all()]
    keys = [d.key or f"payment-{p}" for d, p in zip(drafts, payment_ids, strict=True)]
    unkeyed = [
        {"b_id": p, "b_key": k}
        for d, p, k in zip(drafts, payment_ids, keys, strict=True)
        if d.key is None
    ]
    if unkeyed:
        table = _PAYMENTS
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(processor_key=bindparam("b_key")),
            unkeyed,
        )
    await jobs.schedule(session, JANITOR_JOB, first_check, unique_key=JANITOR_JOB)
    return [
        Intent(
            payment_id,
            d.processor,
            ChargeRequest(
                token=d.token,
                amount=d.amount,
                currency=d.currency,
                idempotency_key=key,
                description=d.description or f"Payment {payment_id}",
                due_date=d.due_date,
            ),
            configs.get(account_of.get(d.payment_method_id) or 0),
        )
        for d, payment_id, key in zip(drafts, payment_ids, keys, strict=True)
    ]


# --- 2. call --------------------------------------------------------------------------------


async def send(
    intents: Sequence[Intent], semaphore: asyncio.Semaphore | None = None
) -> list[ChargeResult | None]:
    """Each intent's answer from its processor (None: none), at most ``semaphore`` at once.

    Call it outside any transaction: a processor's round trip must never hold a lock.
    """
    return list(await asyncio.gather(*(_send(intent, semaphore) for intent in intents)))


async def _send(intent: Intent, semaphore: asyncio.Semaphore | None) -> ChargeResult | None:
    """The processor's answer to one intent, counted by processor and answer."""
    answer = await _charge(intent, semaphore)
    outcome = (
        "no_answer"
        if answer is None or answer.status == ChargeOutcome.UNKNOWN
        else answer.status.value.lower()
    )
    metrics.CHARGE_ATTEMPTS.labels(intent.processor, outcome).inc()
    return answer


async def _charge(intent: Intent, semaphore: asyncio.Semaphore | None) -> ChargeResult | None:
    request = intent.request
    async with semaphore or nullcontext():
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                processor = processor_accounts.make_processor(intent.processor, intent.config)
                return await processor.charge(request)
        except (ProcessorTimeout, TimeoutError, IdempotencyConflict):
            return None  # a charge may exist under the key: the janitor looks it up
        except ChargeRefused as refused:
            # Refused before any charge (an unusable token): a decline in all but name.
            return ChargeResult(
                ChargeOutcome.DECLINED,
                None,
                refused.code.lower(),
                refused.message,
                request.amount,
                request.currency,
            )
        except Exception:
            log.exception("payment %s: the charge call failed", intent.payment_id)
            return None


# --- 3. record ------------------------------------------------------------------------------


@dataclass
class Recorded:
    """What :func:`record` changed: payment ids by their new state."""

    completed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    #: Of ``unknown``, those heard of for the first time (a later check is not a new outcome).
    newly_unknown: int = 0
    #: Money charged, by currency.
    charged: dict[str, int] = field(default_factory=dict)

    @classmethod
    def combined(cls, parts: Sequence[Recorded]) -> Recorded:
        """What several :func:`record` calls changed together."""
        whole = cls()
        for part in parts:
            whole.completed += part.completed
            whole.failed += part.failed
            whole.unknown += part.unknown
            whole.newly_unknown += part.newly_unknown
            for currency, amount in part.charged.items():
                whole.charged[currency] = whole.charged.get(currency, 0) + amount
        return whole

    def count(self) -> None:
        """Add these outcomes to the payment metrics: call it once their transaction has
        committed, so work a savepoint or a failed transaction undid is never counted."""
        for outcome, count in (
            ("completed", len(self.completed)),
            ("failed", len(self.failed)),
            ("unknown", self.newly_unknown),
        ):
            metrics.PAYMENTS.labels(PaymentChannel.CARD, outcome).inc(count)


async def record(
    session: AsyncSession,
    answers: Sequence[tuple[int, ChargeResult | None]],
    now: datetime,
) -> Recorded:
    """Apply processor answers (by payment id) to open charges, set-based; see step 3.

    Locks the payments' customers (in id order) before reading the payments' states.
    """
    done = Recorded()
    if not answers:
        return done
    ids = [payment_id for payment_id, _ in answers]
    owners = set(
        (
            await session.scalars(
                select(Payment.customer_id).where(
                    Payment.id.in_(ids), Payment.status.in_(OPEN_STATUSES)
                )
            )
        ).all()
    )
    if not owners:
        return done
    locked = {c.id: c for c in await customers.lock_customers(session, owners)}
    open_payments = {
        p.id: p
        for p in (
            await session.scalars(
                select(Payment)
                .where(Payment.id.in_(ids), Payment.status.in_(OPEN_STATUSES))
                .execution_options(populate_existing=True)
            )
        ).all()
    }
    succeeded: list[tuple[Payment, ChargeResult]] = []
    changes: list[dict[str, Any]] = []
    debits = {p.id for p in open_payments.values() if p.method == PaymentChannel.DIRECT_DEBIT}
    for payment_id, result in answers:
        payment = open_payments.pop(payment_id, None)
        if payment is None:
            continue  # settled already, or a repeat in this batch
        if result is None or result.status == ChargeOutcome.UNKNOWN:
            done.newly_unknown += payment.status == PaymentStatus.PENDING
            done.unknown.append(payment.id)
            changes.append(_change(payment, PaymentStatus.UNKNOWN, None, _AWAITING, now))
        elif result.status == ChargeOutcome.SUCCEEDED:
            succeeded.append((payment, result))
        elif result.status == ChargeOutcome.ACTION_REQUIRED:
            changes.append(_change(payment, PaymentStatus.PENDING, result, _CONFIRM, now))
        elif result.status == ChargeOutcome.SUBMITTED:
            changes.append(_change(payment, PaymentStatus.PENDING, result, _SUBMITTED, now))
        else:
            done.failed.append(payment.id)
            changes.append(
                _change(
                    payment,
                    PaymentStatus.FAILED,
                    result,
                    decline_words(result.decline_code)[1]
                    if payment.method == PaymentChannel.CARD
                    else result.message or "The payment was not made.",
                    now,
                )
            )
    transactions = await _book(session, locked, succeeded, now)
    for (payment, result), transaction_id in zip(succeeded, transactions, strict=True):
        done.completed.append(payment.id)
        done.charged[payment.currency] = done.charged.get(payment.currency, 0) + payment.amount
        changes.append(_change(payment, PaymentStatus.COMPLETED, result, None, now, transaction_id))
    await _apply(session, changes)
    await _settle(session, locked, [payment for payment, _ in succeeded], now)
    submissions = [
        (payment_id, result)
        for payment_id, result in answers
        if payment_id in debits and (result is None or result.status != ChargeOutcome.SUCCEEDED)
    ]
    if submissions:
        # Imported here: gateway billing books its polled outcomes through this module.
        from billing import gateway_billing

        await gateway_billing.note_submissions(session, submissions, now)
    return done


async def record_each(
    session: AsyncSession,
    answers: Sequence[tuple[int, ChargeResult | None]],
    now: datetime,
) -> Recorded:
    """:func:`record` for a batch run (the collection run, the janitor), where one customer's
    answer that cannot be booked — a balance out of range, a bad value, a bug — must not
    leave the others' unbooked: the batch is isolated per payment
    (:func:`billing.run_failures.isolate`).  A payment that fails stays open, so the janitor
    books it at its next check; the failure is recorded for the administrators meanwhile."""
    subjects = {
        row.id: run_failures.Subject(row.customer_id, row.invoice_id)
        for row in await session.execute(
            select(Payment.id, Payment.customer_id, Payment.invoice_id).where(
                Payment.id.in_([payment_id for payment_id, _ in answers])
            )
        )
    }
    booked = await run_failures.isolate(
        session,
        RunKind.COLLECTION,
        answers,
        lambda answer: subjects[answer[0]],
        lambda chunk: record(session, chunk, now),
        now,
        log,
    )
    return Recorded.combined(booked.results)


def _change(
    payment: Payment,
    status: PaymentStatus,
    result: ChargeResult | None,
    message: str | None,
    now: datetime,
    transaction_id: int | None = None,
) -> dict[str, Any]:
    """One payment's new state, and its attempt's (if a collection attempt made it)."""
    still_open = status in OPEN_STATUSES
    # A submitted schedule is the gateway poll's to settle, not the janitor's to look up.
    submitted = result is not None and result.status == ChargeOutcome.SUBMITTED
    return {
        "b_id": payment.id,
        "b_status": status,
        "b_reference": result.processor_reference if result else payment.processor_reference,
        "b_decline": result.decline_code if result else None,
        "b_message": message,
        "b_txn": transaction_id,
        "b_action": (result.action_url if result else None) or payment.action_url,
        "b_next": payment.next_check_at if still_open and not submitted else None,
        "b_attempt_status": AttemptStatus.UNKNOWN
        if still_open
        else AttemptStatus.SUCCEEDED
        if status == PaymentStatus.COMPLETED
        else AttemptStatus.FAILED,
        "b_attempt_message": (result.message if result else _AWAITING)[:500],
        "b_finished": None if still_open else now,
    }


async def _apply(session: AsyncSession, changes: list[dict[str, Any]]) -> None:
    """Write the payments' new states and mirror them on their collection attempts."""
    if not changes:
        return
    payments = _PAYMENTS
    await session.execute(
        update(payments)
        .where(payments.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            processor_reference=bindparam("b_reference"),
            decline_code=bindparam("b_decline"),
            message=bindparam("b_message"),
            transaction_id=bindparam("b_txn"),
            action_url=bindparam("b_action"),
            next_check_at=bindparam("b_next"),
        ),
        changes,
    )
    attempts = _ATTEMPTS
    await session.execute(
        update(attempts)
        .where(
            attempts.c.payment_id == bindparam("b_id"),
            attempts.c.status == AttemptStatus.UNKNOWN,
        )
        .values(
            status=bindparam("b_attempt_status"),
            processor_reference=bindparam("b_reference"),
            decline_code=bindparam("b_decline"),
            message=bindparam("b_attempt_message"),
            finished_at=bindparam("b_finished"),
        ),
        changes,
    )
    # Whoever holds these payments (the caller, the identity map) sees their new state.
    await session.execute(
        select(Payment)
        .where(Payment.id.in_([change["b_id"] for change in changes]))
        .execution_options(populate_existing=True)
    )


async def _book(
    session: AsyncSession,
    locked: dict[int, Any],
    succeeded: Sequence[tuple[Payment, ChargeResult]],
    now: datetime,
) -> list[int]:
    """One PAYMENT ledger transaction per succeeded charge (customer −, processor book +)."""
    books: dict[tuple[int | None, str], int] = {}
    drafts = []
    cards = await payment_labels.card_details(session, (p.payment_method_id for p, _ in succeeded))
    stored = (PaymentChannel.CARD, PaymentChannel.DIRECT_DEBIT)
    for payment, _ in succeeded:
        customer = locked[payment.customer_id]
        owner = (customer.reseller_id, payment.currency)
        if owner not in books:
            books[owner] = await ledger.system_book(session, LedgerAccountKind.PROCESSOR, *owner)
        drafts.append(
            ledger.Draft(
                [
                    ledger.Posting(customer.ledger_account_id, -payment.amount, payment.currency),
                    ledger.Posting(books[owner], payment.amount, payment.currency),
                ],
                payment_labels.sentence(
                    payment_labels.payment_label(
                        payment.method,
                        cards.get(payment.payment_method_id or 0)
                        if payment.method in stored
                        else payment.reference,  # a redirect's: the processor account's name
                    )
                ),
                customer.id,
            )
        )
    if not drafts:
        return []
    return await ledger.post_many(session, TransactionKind.PAYMENT, drafts, at=now)


async def _settle(
    session: AsyncSession, locked: dict[int, Any], completed: Sequence[Payment], now: datetime
) -> None:
    """Put completed payments on their invoices first; the rest is credit for the oldest."""
    on_invoices = [(p.id, p.invoice_id, p.amount) for p in completed if p.invoice_id is not None]
    revisit = await settlement.settle_payments(session, on_invoices, now) if on_invoices else set()
    revisit |= {p.customer_id for p in completed if p.invoice_id is None}
    for customer_id in sorted(revisit):
        await settlement.apply_credit(session, locked[customer_id], now)


# --- 4. janitor -----------------------------------------------------------------------------


@dataclass
class JanitorReport:
    """What a janitor run did, for logs and tests."""

    looked_up: int = 0
    resent: int = 0
    settled: int = 0
    still_open: int = 0


async def run_janitor(
    db: Database,
    now: datetime,
    *,
    batch_size: int = JANITOR_BATCH,
    concurrency: int = JANITOR_CONCURRENCY,
) -> JanitorReport:
    """Reconcile every open charge due for a check by ``now`` (see step 4), then plan the
    next run for the earliest check still ahead."""
    report = JanitorReport()
    semaphore = asyncio.Semaphore(concurrency)
    after = 0
    while True:
        async with db.session() as session:
            rows = (
                await session.execute(
                    select(
                        Payment.id,
                        Payment.processor,
                        Payment.processor_account_id,
                        Payment.processor_key,
                        Payment.amount,
                        Payment.currency,
                        Payment.received_at,
                        PaymentMethod.token,
                        Customer.time_zone,
                    )
                    .join(PaymentMethod, PaymentMethod.id == Payment.payment_method_id)
                    .join(Customer, Customer.id == Payment.customer_id)
                    .where(
                        Payment.status.in_(OPEN_STATUSES),
                        Payment.next_check_at <= now,
                        Payment.id > after,
                    )
                    .order_by(Payment.id)
                    .limit(batch_size)
                )
            ).all()
            configs = await processor_accounts.configs_for(
                session, (row.processor_account_id for row in rows)
            )
        if not rows:
            break
        after = rows[-1].id
        found = await asyncio.gather(
            *(
                _lookup(
                    row.id,
                    processor_accounts.make_processor(
                        row.processor, configs.get(row.processor_account_id or 0)
                    ),
                    row.processor_key,
                    semaphore,
                )
                for row in rows
            )
        )
        report.looked_up += len(rows)
        answers: list[tuple[int, ChargeResult | None]] = []
        resend: list[Intent] = []
        for row, (asked, result) in zip(rows, found, strict=True):
            if asked and result is None:
                resend.append(
                    Intent(
                        row.id,
                        row.processor,
                        ChargeRequest(
                            row.token,
                            row.amount,
                            row.currency,
                            row.processor_key,
                            f"Payment {row.id}",
                            due_date=local_date(now, row.time_zone),
                        ),
                        configs.get(row.processor_account_id or 0),
                    )
                )
            else:
                answers.append((row.id, result))
        report.resent += len(resend)
        resent = await send(resend, semaphore)
        answers += [
            (intent.payment_id, result) for intent, result in zip(resend, resent, strict=True)
        ]
        async with db.transaction() as session:
            recorded = await record_each(session, answers, now)
            table = _PAYMENTS
            await session.execute(
                update(table)
                # Still open: recording a known answer cleared the check (no IN list here:
                # an executemany cannot expand one).
                .where(table.c.id == bindparam("b_id"), table.c.next_check_at.is_not(None))
                .values(next_check_at=bindparam("b_next")),
                [{"b_id": row.id, "b_next": next_check(row.received_at, now)} for row in rows],
            )
        recorded.count()
        report.settled += len(recorded.completed) + len(recorded.failed)
    async with db.transaction() as session:
        await jobs.reschedule(session, JANITOR_JOB, JANITOR_JOB, _next_janitor_run)
        report.still_open = int(
            await session.scalar(
                select(func.count(Payment.id)).where(Payment.status.in_(OPEN_STATUSES))
            )
            or 0
        )
    log.info("card charge janitor at %s: %s", now.isoformat(), report)
    return report


async def _next_janitor_run(session: AsyncSession) -> datetime | None:
    """The earliest check an open charge is waiting for; None when none is open."""
    return await session.scalar(
        select(func.min(Payment.next_check_at)).where(Payment.status.in_(OPEN_STATUSES))
    )


async def _lookup(
    payment_id: int, processor: CardProcessor, key: str, semaphore: asyncio.Semaphore
) -> tuple[bool, ChargeResult | None]:
    """(asked, answer): the charge booked under ``key`` at ``processor``, None if never seen;
    ``asked`` is False when the processor could not be asked."""
    async with semaphore:
        try:
            return True, await processor.lookup(key)
        except Exception:
            log.exception("payment %s: the lookup failed", payment_id)
            return False, None


@jobs.detached_handler(JANITOR_JOB)
async def janitor_job(db: Database, payload: dict[str, Any], now: datetime) -> None:
    """The singleton job: safe to run any number of times (a charge is settled once)."""
    await run_janitor(db, now)
