"""Collection rules and the collection run: planning attempts, charging each invoice for its
own outstanding amount, cancellations, UNKNOWN and reconciliation, review, suspension."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from billing import clock, collection, jobs
from billing.collection import (
    ATTEMPT_TIME,
    CollectionPolicy,
    SettingsInput,
    attempt_days,
    attempt_schedule,
)
from billing.collection_run import COLLECTION_RUN_JOB, run_collection
from billing.customers import (
    CustomerInput,
    create_customer_class,
    update_customer,
    update_customer_class,
)
from billing.db import Database
from billing.dunning import suspend_overdue_customers
from billing.errors import UserError
from billing.invoices import approve_invoices, close_period_out_of_turn, void_invoices
from billing.models import (
    AttemptStatus,
    CardCharging,
    CollectionAttempt,
    CollectionSettings,
    Customer,
    CustomerClass,
    CustomerStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Job,
    JobStatus,
    Payment,
    PaymentStatus,
    StatusChange,
    StatusSubject,
)
from billing.payment_methods import add_card
from billing.periods import local_time_utc
from processors import registry
from processors.simulator import SimulatorProcessor
from tests.factories import (
    APPROVE,
    DECLINE,
    INSUFFICIENT,
    TIMEOUT,
    admin_viewer,
    card_details,
    ledger_problems,
    make_account,
    make_charge_at,
    make_customer,
    pay_cash,
)

SEP_1 = date(2026, 9, 1)
SEP_15 = date(2026, 9, 15)
NOON = datetime(2026, 9, 1, 12, tzinfo=UTC)


# --- the rules (pure) -----------------------------------------------------------------------


def _policy(
    charging: CardCharging, before: tuple[int, ...] = (), after: tuple[int, ...] = ()
) -> CollectionPolicy:
    return CollectionPolicy(card_charging=charging, days_before_due=before, days_after_due=after)


def test_never_plans_no_attempt_whatever_the_extra_days() -> None:
    assert attempt_days(_policy(CardCharging.NEVER, (5,), (0, 3)), SEP_1, SEP_15) == []


def test_on_due_date_charges_the_due_date_and_the_days_after_it_once_each() -> None:
    assert attempt_days(_policy(CardCharging.ON_DUE_DATE, (5,), (0, 3, 7)), SEP_1, SEP_15) == [
        SEP_15,
        date(2026, 9, 18),
        date(2026, 9, 22),
    ]  # "0" is the due date: one attempt


def test_on_issue_charges_the_issue_date_and_days_before_due_that_are_not_before_issue() -> None:
    assert attempt_days(_policy(CardCharging.ON_ISSUE, (5, 30), (2,)), SEP_1, SEP_15) == [
        SEP_1,
        date(2026, 9, 10),
        date(2026, 9, 17),
    ]


def test_attempts_fall_due_at_nine_local_time_and_the_charge_upon_issue_at_once() -> None:
    policy = _policy(CardCharging.ON_ISSUE, (5,))
    planned = attempt_schedule(policy, SEP_1, SEP_15, NOON, "America/New_York")
    assert planned == [
        (SEP_1, NOON),
        (date(2026, 9, 10), datetime(2026, 9, 10, 13, tzinfo=UTC)),  # 09:00 EDT
    ]


def test_nine_oclock_stays_nine_oclock_across_a_dst_change() -> None:
    # Europe/Berlin leaves summer time on 25 October 2026.
    before = local_time_utc(date(2026, 10, 24), ATTEMPT_TIME, "Europe/Berlin")
    after = local_time_utc(date(2026, 10, 26), ATTEMPT_TIME, "Europe/Berlin")
    assert (before.hour, after.hour) == (7, 8)


def test_days_already_past_when_planned_collapse_into_one_attempt_now() -> None:
    late = datetime(2026, 9, 20, 15, tzinfo=UTC)  # approved after due, +3 and before +7
    planned = attempt_schedule(
        _policy(CardCharging.ON_DUE_DATE, after=(0, 3, 7)), SEP_1, SEP_15, late, "UTC"
    )
    assert planned == [
        (date(2026, 9, 20), late),
        (date(2026, 9, 22), datetime(2026, 9, 22, 9, tzinfo=UTC)),
    ]


def test_attempt_days_are_validated() -> None:
    with pytest.raises(UserError) as error:
        collection.validate_days([0, 400], "days")
    assert error.value.code == "OUT_OF_RANGE"
    assert collection.validate_days([7, 0, 3, 3], "days") == (0, 3, 7)


# --- a world to collect from ------------------------------------------------------------------


async def _class(
    db: Database, *, kind: InvoiceKind = InvoiceKind.OUT_OF_TURN, **settings: object
) -> int:
    async with db.transaction() as session:
        cls = await create_customer_class(
            session,
            admin_viewer(),
            "Collected",
            14,
            7,
            {kind: SettingsInput(**settings)},  # type: ignore[arg-type]
        )
        return cls.id


async def _customer_with_invoice(
    db: Database,
    class_id: int,
    amount: int = 3000,
    card: str | None = APPROVE,
    auto_payment: bool = True,
    at: datetime = NOON,
) -> tuple[int, int]:
    """A customer with a card (or none) and one out-of-turn invoice of ``amount`` issued at
    ``at``; returns (customer id, invoice id)."""
    async with db.transaction() as session:
        if not await clock.is_frozen(session):
            await clock.freeze(session, at)
        customer = await make_customer(session, class_id=class_id, auto_payment=auto_payment)
        account = await make_account(session, customer)
        if card is not None:
            await add_card(session, admin_viewer(), customer.id, card_details(card))
        await make_charge_at(session, account, amount, at - timedelta(hours=1))
        invoice = await close_period_out_of_turn(session, admin_viewer(), customer.id)
        return customer.id, invoice.id


async def _attempts(db: Database, invoice_id: int) -> list[CollectionAttempt]:
    async with db.session() as session:
        return list(
            (
                await session.scalars(
                    select(CollectionAttempt)
                    .where(CollectionAttempt.invoice_id == invoice_id)
                    .order_by(CollectionAttempt.scheduled_at)
                )
            ).all()
        )


async def _invoice(db: Database, invoice_id: int) -> Invoice:
    async with db.session() as session:
        invoice = await session.get(Invoice, invoice_id)
        assert invoice is not None
        return invoice


async def _card_payments(db: Database, customer_id: int) -> list[Payment]:
    async with db.session() as session:
        return list(
            (
                await session.scalars(
                    select(Payment)
                    .where(Payment.customer_id == customer_id, Payment.processor.is_not(None))
                    .order_by(Payment.id)
                )
            ).all()
        )


async def _advance(db: Database, to: datetime) -> None:
    await jobs.advance_clock(db, to)


async def test_charging_on_the_due_date_with_attempts_before_it_is_refused(db: Database) -> None:
    """Days before the due date are only charged after a charge upon issue: with
    ON_DUE_DATE they would do nothing, so neither a new class nor a change may ask for them."""
    field = "regularInvoices.attemptDaysBeforeDue"
    with pytest.raises(UserError) as error:
        await _class(
            db,
            kind=InvoiceKind.REGULAR,
            card_charging=CardCharging.ON_DUE_DATE,
            attempt_days_before_due=[3],
        )
    assert (error.value.code, error.value.field) == ("DAYS_BEFORE_DUE_NOT_CHARGED", field)
    async with db.session() as session:  # the class was not made either
        assert await session.scalar(select(func.count()).select_from(CustomerClass)) == 0
    class_id = await _class(
        db,
        kind=InvoiceKind.REGULAR,
        card_charging=CardCharging.ON_ISSUE,
        attempt_days_before_due=[3],
    )
    changes = [
        SettingsInput(card_charging=CardCharging.ON_DUE_DATE),  # the days stay: refused
        SettingsInput(attempt_days_before_due=[5], card_charging=CardCharging.ON_DUE_DATE),
    ]
    for change in changes:
        with pytest.raises(UserError) as error:
            async with db.transaction() as session:
                await update_customer_class(
                    session,
                    admin_viewer(),
                    class_id,
                    None,
                    None,
                    None,
                    {InvoiceKind.REGULAR: change},
                )
        assert (error.value.code, error.value.field) == ("DAYS_BEFORE_DUE_NOT_CHARGED", field)
    async with db.transaction() as session:  # clearing the days makes the change possible
        await update_customer_class(
            session,
            admin_viewer(),
            class_id,
            None,
            None,
            None,
            {
                InvoiceKind.REGULAR: SettingsInput(
                    card_charging=CardCharging.ON_DUE_DATE, attempt_days_before_due=[]
                )
            },
        )
    async with db.session() as session:
        row = await session.scalar(
            select(CollectionSettings).where(CollectionSettings.class_id == class_id)
        )
        assert row is not None
        assert (row.card_charging, row.attempt_days_before_due) == (CardCharging.ON_DUE_DATE, "")


# --- planning ---------------------------------------------------------------------------------


async def test_issuing_plans_scheduled_attempts_and_wakes_the_collection_run(db: Database) -> None:
    class_id = await _class(
        db, card_charging=CardCharging.ON_DUE_DATE, attempt_days_after_due=[0, 3]
    )
    _, invoice_id = await _customer_with_invoice(db, class_id)
    attempts = await _attempts(db, invoice_id)
    assert [(a.scheduled_for, a.status) for a in attempts] == [
        (SEP_15, AttemptStatus.SCHEDULED),
        (date(2026, 9, 18), AttemptStatus.SCHEDULED),
    ]
    async with db.session() as session:
        job = await session.scalar(
            select(Job).where(Job.kind == COLLECTION_RUN_JOB, Job.status == JobStatus.PENDING)
        )
    assert job is not None and job.due_at == datetime(2026, 9, 15, 9, tzinfo=UTC)


async def test_a_class_that_never_charges_plans_nothing_and_says_why(db: Database) -> None:
    class_id = await _class(db, card_charging=CardCharging.NEVER, attempt_days_after_due=[0])
    _, invoice_id = await _customer_with_invoice(db, class_id)
    assert await _attempts(db, invoice_id) == []
    assert (await _invoice(db, invoice_id)).not_charged_reason == "CHARGING_OFF"


async def test_out_of_turn_invoices_take_their_own_payment_terms(db: Database) -> None:
    class_id = await _class(db, payment_terms_days=3)
    _, invoice_id = await _customer_with_invoice(db, class_id)
    assert (await _invoice(db, invoice_id)).due_date == date(2026, 9, 4)


# --- the run ---------------------------------------------------------------------------------


async def test_the_due_date_charge_is_the_outstanding_amount_and_pays_the_invoice(
    db: Database,
) -> None:
    class_id = await _class(
        db, card_charging=CardCharging.ON_DUE_DATE, attempt_days_after_due=[0, 3]
    )
    customer_id, invoice_id = await _customer_with_invoice(db, class_id)
    async with db.transaction() as session:
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        await pay_cash(session, customer, 2000)
    await _advance(db, datetime(2026, 9, 15, 10, tzinfo=UTC))
    first, second = await _attempts(db, invoice_id)
    assert (first.status, first.amount) == (AttemptStatus.SUCCEEDED, 1000)
    assert (second.status, second.reason) == (AttemptStatus.CANCELED, "PAID")
    [payment] = await _card_payments(db, customer_id)
    assert (payment.amount, payment.status, payment.invoice_id) == (
        1000,
        PaymentStatus.COMPLETED,
        invoice_id,
    )
    assert first.payment_id == payment.id
    assert (await _invoice(db, invoice_id)).status == InvoiceStatus.PAID
    assert SimulatorProcessor().charge_log()[0][0] == f"attempt-{first.id}"
    async with db.session() as session:
        assert await ledger_problems(session) == []


async def test_a_decline_is_failed_with_its_code_and_the_next_attempt_stays_planned(
    db: Database,
) -> None:
    class_id = await _class(db, card_charging=CardCharging.ON_ISSUE, attempt_days_before_due=[5])
    _, invoice_id = await _customer_with_invoice(db, class_id, card=INSUFFICIENT)
    await _advance(db, NOON + timedelta(minutes=1))
    first, second = await _attempts(db, invoice_id)
    assert (first.status, first.decline_code, first.amount) == (
        AttemptStatus.FAILED,
        "insufficient_funds",
        3000,
    )
    assert first.message == "The card has insufficient funds."
    assert second.status == AttemptStatus.SCHEDULED
    assert (await _invoice(db, invoice_id)).status == InvoiceStatus.UNPAID


async def test_no_attempt_without_auto_payment_or_a_default_card_and_the_invoice_says_why(
    db: Database,
) -> None:
    class_id = await _class(db, card_charging=CardCharging.ON_ISSUE)
    _, off = await _customer_with_invoice(db, class_id, auto_payment=False)
    _, cardless = await _customer_with_invoice(db, class_id, card=None)
    await _advance(db, NOON + timedelta(minutes=1))
    for invoice_id, reason in ((off, "AUTO_PAYMENT_OFF"), (cardless, "NO_PAYMENT_METHOD")):
        [attempt] = await _attempts(db, invoice_id)
        assert (attempt.status, attempt.reason, attempt.amount) == (
            AttemptStatus.CANCELED,
            reason,
            None,
        )
        assert (await _invoice(db, invoice_id)).not_charged_reason == reason
    assert SimulatorProcessor().charges() == []


async def test_paying_another_way_cancels_the_pending_attempts(db: Database) -> None:
    class_id = await _class(db, card_charging=CardCharging.ON_DUE_DATE, attempt_days_after_due=[3])
    customer_id, invoice_id = await _customer_with_invoice(db, class_id)
    async with db.transaction() as session:
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        await pay_cash(session, customer, 3000)
    assert {(a.status, a.reason) for a in await _attempts(db, invoice_id)} == {
        (AttemptStatus.CANCELED, "PAID")
    }
    await _advance(db, datetime(2026, 9, 30, tzinfo=UTC))
    assert SimulatorProcessor().charges() == []


async def test_voiding_cancels_the_pending_attempts(db: Database) -> None:
    class_id = await _class(db, card_charging=CardCharging.ON_DUE_DATE)
    _, invoice_id = await _customer_with_invoice(db, class_id)
    async with db.transaction() as session:
        await void_invoices(session, admin_viewer(), [invoice_id], "Wrong customer")
    [attempt] = await _attempts(db, invoice_id)
    assert (attempt.status, attempt.reason) == (AttemptStatus.CANCELED, "VOIDED")


async def test_a_timeout_stays_unknown_until_the_lookup_by_key_settles_it(db: Database) -> None:
    class_id = await _class(db, card_charging=CardCharging.ON_ISSUE)
    customer_id, invoice_id = await _customer_with_invoice(db, class_id, card=TIMEOUT)
    await _advance(db, NOON + timedelta(minutes=1))
    [attempt] = await _attempts(db, invoice_id)
    assert (attempt.status, attempt.amount) == (AttemptStatus.UNKNOWN, 3000)
    [payment] = await _card_payments(db, customer_id)  # the intent, committed before the call
    assert (payment.id, payment.status) == (attempt.payment_id, PaymentStatus.UNKNOWN)
    assert payment.processor_key == f"attempt-{attempt.id}"
    await _advance(db, NOON + timedelta(minutes=10))  # the janitor looks it up
    [attempt] = await _attempts(db, invoice_id)
    assert attempt.status == AttemptStatus.SUCCEEDED
    [payment] = await _card_payments(db, customer_id)
    assert (payment.id, payment.status) == (attempt.payment_id, PaymentStatus.COMPLETED)
    assert len(SimulatorProcessor().charges()) == 1  # looked up, never charged again


async def test_each_invoice_is_charged_on_its_own_for_its_own_amount(db: Database) -> None:
    class_id = await _class(db, card_charging=CardCharging.ON_ISSUE)
    customer_id, first = await _customer_with_invoice(db, class_id, amount=1200)
    async with db.transaction() as session:
        customer = await session.get(Customer, customer_id)
        account = await make_account(session, customer)  # type: ignore[arg-type]
        await make_charge_at(session, account, 3400, NOON)
        second = (await close_period_out_of_turn(session, admin_viewer(), customer_id)).id
    await _advance(db, NOON + timedelta(minutes=1))
    payments = await _card_payments(db, customer_id)
    assert sorted((p.invoice_id, p.amount) for p in payments) == [(first, 1200), (second, 3400)]


async def test_a_run_catching_up_charges_once_per_invoice(db: Database) -> None:
    class_id = await _class(
        db, card_charging=CardCharging.ON_DUE_DATE, attempt_days_after_due=[0, 3, 7]
    )
    _, invoice_id = await _customer_with_invoice(db, class_id, card=DECLINE)
    async with db.transaction() as session:  # the worker was down for weeks
        await session.execute(
            update(Job).values(status=JobStatus.DONE).where(Job.kind == COLLECTION_RUN_JOB)
        )
        await clock.freeze(session, datetime(2026, 10, 1, tzinfo=UTC))
    await run_collection(db, datetime(2026, 10, 1, tzinfo=UTC))
    statuses = [(a.status, a.reason) for a in await _attempts(db, invoice_id)]
    assert statuses == [(AttemptStatus.CANCELED, "SUPERSEDED")] * 2 + [(AttemptStatus.FAILED, None)]


# --- review -----------------------------------------------------------------------------------


async def test_review_holds_the_invoice_until_approved_and_plans_attempts_then(
    db: Database,
) -> None:
    class_id = await _class(db, card_charging=CardCharging.ON_ISSUE, review=True)
    customer_id, invoice_id = await _customer_with_invoice(db, class_id)
    async with db.transaction() as session:
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        await pay_cash(session, customer, 500)  # stays credit while the invoice waits
    invoice = await _invoice(db, invoice_id)
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PENDING_REVIEW, 0)
    assert await _attempts(db, invoice_id) == []
    await _advance(db, NOON + timedelta(days=1))
    assert SimulatorProcessor().charges() == []
    async with db.transaction() as session:
        [approved] = await approve_invoices(session, admin_viewer(), [invoice_id])
        assert (approved.status, approved.amount_paid) == (InvoiceStatus.PARTIALLY_PAID, 500)
    await _advance(db, NOON + timedelta(days=1, minutes=1))
    [attempt] = await _attempts(db, invoice_id)
    assert (attempt.status, attempt.amount) == (AttemptStatus.SUCCEEDED, 2500)
    async with db.transaction() as session:
        with pytest.raises(UserError) as error:
            await approve_invoices(session, admin_viewer(), [invoice_id])
    assert error.value.code == "NOT_PENDING_REVIEW"


# --- transitions and suspension ---------------------------------------------------------------


async def _changes(
    db: Database, subject: StatusSubject, subject_id: int
) -> list[tuple[str | None, str, str]]:
    async with db.session() as session:
        rows = (
            await session.scalars(
                select(StatusChange)
                .where(StatusChange.subject == subject, StatusChange.subject_id == subject_id)
                .order_by(StatusChange.id)
            )
        ).all()
    return [(r.from_status, r.to_status, r.cause) for r in rows]


async def test_every_transition_is_recorded_with_its_cause(db: Database) -> None:
    class_id = await _class(db, card_charging=CardCharging.ON_DUE_DATE, grace_period_days=2)
    customer_id, invoice_id = await _customer_with_invoice(db, class_id, card=DECLINE)
    await _advance(db, datetime(2026, 9, 18, 1, tzinfo=UTC))  # due 15th, grace to the 17th
    async with db.session() as session:
        customer = await session.get(Customer, customer_id)
        assert customer is not None and customer.status == CustomerStatus.SUSPENDED
    async with db.transaction() as session:
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        await pay_cash(session, customer, 3000)
    assert await _changes(db, StatusSubject.INVOICE, invoice_id) == [
        (None, "UNPAID", "ISSUED"),
        ("UNPAID", "OVERDUE", "DUE_DATE_PASSED"),
        ("OVERDUE", "PAID", "PAYMENT"),
    ]
    assert await _changes(db, StatusSubject.CUSTOMER, customer_id) == [
        ("ACTIVE", "SUSPENDED", "GRACE_PERIOD_EXCEEDED"),
        ("SUSPENDED", "ACTIVE", "NOTHING_OVERDUE"),
    ]


async def test_suspension_waits_for_the_end_of_the_grace_period(db: Database) -> None:
    class_id = await _class(db, grace_period_days=3)
    customer_id, _ = await _customer_with_invoice(db, class_id, card=None)
    await jobs.advance_clock(db, datetime(2026, 9, 18, 23, tzinfo=UTC))  # due the 15th
    async with db.transaction() as session:
        assert await suspend_overdue_customers(session, datetime(2026, 9, 18, 23, tzinfo=UTC)) == []
        assert await suspend_overdue_customers(session, datetime(2026, 9, 19, tzinfo=UTC)) == [
            customer_id
        ]


async def test_a_customer_suspended_by_hand_stays_suspended_when_paid_up(db: Database) -> None:
    class_id = await _class(db)
    customer_id, _ = await _customer_with_invoice(db, class_id, card=None)
    async with db.transaction() as session:
        await update_customer(
            session, admin_viewer(), customer_id, CustomerInput(status=CustomerStatus.SUSPENDED)
        )
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        await pay_cash(session, customer, 3000)
    async with db.session() as session:
        customer = await session.get(Customer, customer_id)
        assert customer is not None and customer.status == CustomerStatus.SUSPENDED
    assert await _changes(db, StatusSubject.CUSTOMER, customer_id) == [
        ("ACTIVE", "SUSPENDED", "STAFF")
    ]


async def test_processor_configuration_reaches_new_instances() -> None:
    registry.configure("simulator", latency_ms=7)
    try:
        assert registry.get_processor("simulator")._latency_ms == 7  # type: ignore[attr-defined]
    finally:
        registry.configure("simulator")
    assert registry.get_processor("simulator")._latency_ms == 0  # type: ignore[attr-defined]


# --- the job ----------------------------------------------------------------------------------


async def _pending_runs(db: Database) -> list[Job]:
    async with db.session() as session:
        return list(
            (
                await session.scalars(
                    select(Job).where(
                        Job.kind == COLLECTION_RUN_JOB, Job.status == JobStatus.PENDING
                    )
                )
            ).all()
        )


async def test_the_run_reschedules_its_job_for_the_next_attempt_then_retires_it(
    db: Database,
) -> None:
    class_id = await _class(db, card_charging=CardCharging.ON_DUE_DATE, attempt_days_after_due=[3])
    await _customer_with_invoice(db, class_id, card=DECLINE)
    await _advance(db, datetime(2026, 9, 15, 10, tzinfo=UTC))
    [job] = await _pending_runs(db)
    assert job.due_at == datetime(2026, 9, 18, 9, tzinfo=UTC)  # not the 10-minute lease
    await _advance(db, datetime(2026, 9, 18, 10, tzinfo=UTC))
    assert await _pending_runs(db) == []


async def test_a_detached_job_that_fails_is_retried_by_its_successor(db: Database) -> None:
    calls = []

    @jobs.detached_handler("test_detached_failure")
    async def failing(database: Database, payload: dict[str, object], now: datetime) -> None:
        calls.append(now)
        raise RuntimeError("the processor is down")

    async with db.transaction() as session:
        await clock.freeze(session, NOON)
        await jobs.schedule(session, "test_detached_failure", NOON, unique_key="detached")
    assert await jobs.run_one(db)
    async with db.session() as session:
        rows = (
            await session.scalars(select(Job).where(Job.unique_key == "detached").order_by(Job.id))
        ).all()
    assert [(j.status, j.due_at) for j in rows] == [
        (JobStatus.FAILED, NOON),
        (JobStatus.PENDING, NOON + jobs.DETACHED_RETRY),
    ]
    assert "the processor is down" in (rows[0].last_error or "")
    assert calls == [NOON]
