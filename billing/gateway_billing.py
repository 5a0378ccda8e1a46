"""Direct-debit gateway billing: kassa keeps the balance and the schedule, a gateway such as
Debitsuccess debits the one-off schedules kassa submits, and kassa polls what became of them.

A gateway holds no balance and no schedule of its own, so everything that decides *when* and
*how much* stays in kassa, and the gateway is asked only to move money on a day:

1. **On-boarding** (:func:`offer`, :func:`start_enrollment`, :func:`complete_enrollment`).  A
   customer of a class billed through a gateway (:class:`~billing.models.GatewayBilledClass`)
   is shown the gateway's establishment fee and commission (:class:`~billing.models.
   GatewaySettings`) before committing; then kassa creates the customer and its account at the
   gateway (the account's external reference is kassa's customer id) and sends the customer
   to the gateway's hosted form with a one-time token valid for minutes.  Back from it, kassa
   asks the gateway what it holds and keeps only the account (as a payment method whose token
   is the gateway's account id, with its kind and last four digits) — never a bank account or
   card number.
2. **Submitting** is the collection run's (:mod:`billing.collection_run`): an attempt that
   falls due for a customer whose default method is a gateway account opens a DIRECT_DEBIT
   payment under the attempt's key (``attempt-<id>``) and the adapter submits a one-off
   schedule under that key, for the amount and the customer's local due date.  The answer
   (:func:`note_submissions`, called by :func:`billing.card_charges.record`) is written as a
   :class:`~billing.models.GatewaySchedule`: SUBMITTED (the payment stays PENDING for the
   poll), UNKNOWN (no answer: the card-charge janitor looks the schedule up by its key and
   submits it again under the same key only if the gateway never saw it — never a second
   schedule) or REJECTED.
3. **Rejections**: a schedule refused at submission is a payment stop (a lost or stolen card,
   a closed account).  The attempt is FAILED with the reason, the enrollment STOPPED and
   flagged, its payment method removed — so nothing more is submitted for the customer until
   the method is replaced through the hosted form — and the administrators are e-mailed.
4. **Polling** (:data:`POLL_JOB`, :func:`poll_account`): the singleton job asks each gateway
   account for payment statuses by date range, in windows of at most
   :data:`~billing.payment_systems.MAX_POLL_DAYS` days that overlap by :data:`OVERLAP`, from
   the persisted cursor up to today.  Each (schedule, status, status date) is written once
   (:class:`~billing.models.GatewayScheduleStatus`) and applied only the first time:
   Unattempted, Pending, Retry and InRetry change nothing; Cleared or Settled — whichever
   the operator chose counts as paid (``paid_on``) — complete the payment and pay the invoice;
   Failed fails the attempt (with the gateway's code) and kassa's own retry schedule takes
   over; Unbillable fails it and stops the enrollment as a payment stop does.
5. **Faults**: a timeout or a 5xx at submission leaves the attempt UNKNOWN (above); one
   during a poll leaves the cursor where it was, records the error for the administrators
   and tries again at the next poll.

Where the gateway's answers disagree with kassa (a status for another amount, a failure after
the operator's "paid" status), nothing moves: the payment is flagged for an administrator.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import card_charges, clock, collection_run, customers, jobs, money, notifications
from billing import processor_accounts as accounts
from billing.access import Viewer, require_self_or_staff, require_staff
from billing.db import Database
from billing.errors import NotFound, UserError
from billing.models import (
    Customer,
    GatewayBilledClass,
    GatewayEnrollment,
    GatewaySchedule,
    GatewayScheduleStatus,
    GatewaySettings,
    Payment,
    PaymentMethod,
    PaymentStatus,
    ProcessorAccount,
    Role,
    User,
)
from billing.payment_systems import (
    MAX_POLL_DAYS,
    Capability,
    Payer,
    ScheduleGateway,
    ScheduleStatus,
    catalog,
)
from billing.periods import local_date
from billing.processing import ChargeOutcome, ChargeResult, ProcessorError, ProcessorTimeout

log = logging.getLogger("kassa.billing.gateway_billing")

#: The singleton job that polls every gateway account's payment statuses.
POLL_JOB = "gateway_status_poll"
#: How often the poll runs while any schedule is still open (gateways settle once a day).
POLL_EVERY = timedelta(hours=6)
#: How far each window reaches back into the one before (a status dated late is still seen).
OVERLAP = timedelta(days=2)


class PaidOn(StrEnum):
    """Which gateway status counts as paid: the operator's choice.  CLEARED credits the
    customer as soon as the bank cleared the debit; SETTLED waits for the money to reach
    the business (a later dishonour is then impossible)."""

    CLEARED = "CLEARED"
    SETTLED = "SETTLED"


class EnrollmentStatus(StrEnum):
    AWAITING_METHOD = "AWAITING_METHOD"
    ACTIVE = "ACTIVE"
    #: A payment stop: nothing is submitted until the method is replaced.
    STOPPED = "STOPPED"


class ScheduleState(StrEnum):
    """A schedule's state before the gateway reports on it; afterwards its ``status`` is the
    gateway's own status name."""

    SUBMITTED = "SUBMITTED"
    UNKNOWN = "UNKNOWN"
    REJECTED = "REJECTED"


#: What applying a polled status did (``gateway_schedule_statuses.outcome``).
PENDING, COMPLETED, FAILED, FLAGGED, NO_SCHEDULE = (
    "PENDING",
    "COMPLETED",
    "FAILED",
    "FLAGGED",
    "NO_SCHEDULE",
)
_STILL_PENDING = frozenset({"Unattempted", "Pending", "Retry", "InRetry"})
#: Statuses after which a schedule changes no more.
_FINAL = frozenset({"Settled", "Failed", "Unbillable", ScheduleState.REJECTED.value})


# --- settings -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingsInput:
    paid_on: PaidOn
    establishment_fee: str
    fee_currency: str
    commission_percent: str


def _is_gateway(account: ProcessorAccount) -> bool:
    info = catalog().describe(account.processor)
    return info is not None and Capability.SCHEDULES in info.capabilities


async def _gateway_account(
    session: AsyncSession, viewer: Viewer, account_id: int
) -> ProcessorAccount:
    """A processor account the viewer administers that is a gateway, else a UserError."""
    details = await accounts.get_account(session, viewer, account_id)
    account = await session.get(ProcessorAccount, details.id)
    assert account is not None
    if not _is_gateway(account):
        raise UserError(
            "NOT_A_GATEWAY", f"{account.name} is not a direct-debit gateway", "processorAccountId"
        )
    return account


async def settings_of(session: AsyncSession, account_id: int) -> GatewaySettings:
    """The account's gateway settings (unsaved defaults when none were saved: paid on
    SETTLED, no fee, no commission)."""
    row = await session.get(GatewaySettings, account_id)
    if row is not None:
        return row
    account = await session.get(ProcessorAccount, account_id)
    currency = min(account.minimums) if account is not None and account.minimums else "USD"
    return GatewaySettings(
        processor_account_id=account_id,
        paid_on=PaidOn.SETTLED.value,
        establishment_fee=0,
        fee_currency=currency,
        commission_basis_points=0,
        last_poll_seen=0,
        last_poll_applied=0,
    )


async def save_settings(
    session: AsyncSession, viewer: Viewer, account_id: int, data: SettingsInput
) -> GatewaySettings:
    """Set what counts as paid and the fee and commission shown to customers (checked whole
    before anything is written)."""
    require_staff(viewer, write=True)
    account = await _gateway_account(session, viewer, account_id)
    currency = money.validate_currency(data.fee_currency, "feeCurrency")
    fee = money.parse_amount(data.establishment_fee or "0", currency, "establishmentFee")
    if fee < 0:
        raise UserError(
            "NEGATIVE_FEE", "the establishment fee cannot be negative", "establishmentFee"
        )
    commission = money.parse_percent(data.commission_percent or "0", "commissionPercent")
    now = await clock.now(session)
    row = await _settings_row(session, account.id, now)
    row.paid_on = PaidOn(data.paid_on).value
    row.establishment_fee = fee
    row.fee_currency = currency
    row.commission_basis_points = commission
    row.updated_at = now
    await session.flush()
    return row


async def bill_class_through(
    session: AsyncSession, viewer: Viewer, class_id: int, account_id: int | None
) -> int | None:
    """Have a class's customers billed through gateway account ``account_id`` (None: not
    through a gateway any more).  Returns the account id set."""
    require_staff(viewer, write=True)
    cls = await customers.get_customer_class(session, viewer, class_id)
    row = await session.get(GatewayBilledClass, cls.id)
    if account_id is None:
        if row is not None:
            await session.delete(row)
            await session.flush()
        return None
    account = await _gateway_account(session, viewer, account_id)
    if row is None:
        session.add(GatewayBilledClass(class_id=cls.id, processor_account_id=account.id))
    else:
        row.processor_account_id = account.id
    await session.flush()
    return account.id


# --- on-boarding --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offer:
    """What the portal shows before the customer commits to direct debit."""

    account: ProcessorAccount
    establishment_fee: int
    fee_currency: str
    commission_basis_points: int
    enrollment: GatewayEnrollment | None


async def _class_gateway(session: AsyncSession, customer: Customer) -> ProcessorAccount | None:
    if customer.class_id is None:
        return None
    return await session.scalar(
        select(ProcessorAccount)
        .join(GatewayBilledClass, GatewayBilledClass.processor_account_id == ProcessorAccount.id)
        .where(GatewayBilledClass.class_id == customer.class_id, ProcessorAccount.enabled)
    )


async def enrollment_of(session: AsyncSession, customer_id: int) -> GatewayEnrollment | None:
    return await session.scalar(
        select(GatewayEnrollment).where(GatewayEnrollment.customer_id == customer_id)
    )


async def offer(session: AsyncSession, viewer: Viewer, customer_id: int) -> Offer | None:
    """The gateway the customer's class is billed through, with its fee and commission;
    None when the class is not gateway-billed."""
    customer = await customers.get_customer(session, viewer, customer_id)
    require_self_or_staff(viewer, customer)
    account = await _class_gateway(session, customer)
    if account is None:
        return None
    settings = await settings_of(session, account.id)
    return Offer(
        account,
        settings.establishment_fee,
        settings.fee_currency,
        settings.commission_basis_points,
        await enrollment_of(session, customer.id),
    )


def _gateway(session: AsyncSession, account: ProcessorAccount) -> ScheduleGateway:
    processor = accounts.make_processor(account.processor, accounts.config_of(session, account))
    assert isinstance(processor, ScheduleGateway)
    return processor


@dataclass(frozen=True, slots=True)
class FormStart:
    url: str
    valid_to: datetime


async def start_enrollment(
    session: AsyncSession, viewer: Viewer, customer_id: int, return_url: str
) -> FormStart:
    """Create the customer and its account at the gateway (once) and open its hosted form
    for a payment method (also to replace a stopped one)."""
    customer = await customers.get_customer_for_update(session, viewer, customer_id)
    require_self_or_staff(viewer, customer, write=True)
    account = await _class_gateway(session, customer)
    if account is None:
        raise UserError(
            "NOT_GATEWAY_BILLED",
            "this customer's class is not billed by direct debit",
            "customerId",
        )
    gateway = _gateway(session, account)
    now = await clock.now(session)
    enrollment = await enrollment_of(session, customer.id)
    if enrollment is None:
        # Retry-safe: the adapter finds what a try whose answer was lost made.
        with _asking(account):
            at_gateway = await gateway.enroll(
                Payer(customer.id, customer.name, customer.email),
                local_date(now, customer.time_zone),
            )
        enrollment = GatewayEnrollment(
            customer_id=customer.id,
            processor_account_id=account.id,
            gateway_customer_id=at_gateway.customer_id,
            gateway_account_id=at_gateway.account_id,
            account_reference=at_gateway.account_reference,
            status=EnrollmentStatus.AWAITING_METHOD.value,
            created_at=now,
            updated_at=now,
        )
        session.add(enrollment)
        await session.flush()
    with _asking(account):
        form = await gateway.payment_form(enrollment.gateway_account_id, return_url)
    return FormStart(form.url, form.valid_to)


@contextmanager
def _asking(account: ProcessorAccount) -> Iterator[None]:
    """A gateway call made for a customer: a fault is a UserError the portal can show (the
    transaction is rolled back; trying again is safe)."""
    try:
        yield
    except ProcessorTimeout:
        raise UserError(
            "GATEWAY_UNAVAILABLE",
            f"{account.name} did not answer in time. Nothing was changed: try again in a "
            "few minutes.",
            "customerId",
        ) from None
    except ProcessorError as error:
        raise UserError("GATEWAY_REFUSED", error.message, "customerId") from None


async def complete_enrollment(
    session: AsyncSession, viewer: Viewer, customer_id: int
) -> PaymentMethod:
    """Back from the hosted form: ask the gateway what it holds (the return itself proves
    nothing) and keep the account as the customer's default payment method, replacing a
    stopped one; automatic payment is turned on."""
    customer = await customers.get_customer_for_update(session, viewer, customer_id)
    require_self_or_staff(viewer, customer, write=True)
    enrollment = await enrollment_of(session, customer.id)
    if enrollment is None:
        raise UserError("NOT_ENROLLED", "start the direct-debit set-up first", "customerId")
    account = await session.get(ProcessorAccount, enrollment.processor_account_id)
    assert account is not None
    account_id = enrollment.gateway_account_id
    with _asking(account):
        held = await _gateway(session, account).payment_method(account_id)
    if held is None:
        raise UserError(
            "NO_PAYMENT_METHOD_YET",
            f"{account.name} holds no payment details for you yet: the form was not "
            "completed, or its link had expired (it lasts a few minutes). Start again.",
            "paymentMethod",
        )
    kind, last4 = held.kind.replace("_", " "), held.last4[-4:]
    kept = await method_in_use(session, enrollment)
    if kept is not None and (kept.brand, kept.last4) == (kind, last4):
        return kept  # completed already (the return page reloaded): one method
    now = await clock.now(session)
    await _retire_method(session, enrollment, now)
    await session.execute(
        update(PaymentMethod)
        .where(PaymentMethod.customer_id == customer.id)
        .values(is_default=False)
        .execution_options(synchronize_session="fetch")
    )
    method = PaymentMethod(
        customer_id=customer.id,
        processor=account.processor,
        processor_account_id=account.id,
        token=account_id,
        brand=kind,
        last4=last4,
        exp_month=0,
        exp_year=0,
        is_default=True,
        created_at=now,
    )
    session.add(method)
    await session.flush()
    enrollment.payment_method_id = method.id
    enrollment.status = EnrollmentStatus.ACTIVE.value
    enrollment.stop_code = enrollment.stop_message = None
    enrollment.stopped_at = None
    enrollment.updated_at = now
    customer.auto_payment = True
    await session.flush()
    return method


async def method_in_use(
    session: AsyncSession, enrollment: GatewayEnrollment
) -> PaymentMethod | None:
    """The active enrollment's payment method, unless it was removed since."""
    if enrollment.status != EnrollmentStatus.ACTIVE or enrollment.payment_method_id is None:
        return None
    method = await session.get(PaymentMethod, enrollment.payment_method_id)
    return None if method is None or method.removed_at is not None else method


async def _retire_method(
    session: AsyncSession, enrollment: GatewayEnrollment, now: datetime
) -> None:
    """The enrollment's payment method is no longer charged (replaced or stopped)."""
    if enrollment.payment_method_id is None:
        return
    await session.execute(
        update(PaymentMethod)
        .where(PaymentMethod.id == enrollment.payment_method_id, PaymentMethod.removed_at.is_(None))
        .values(removed_at=now, is_default=False)
        .execution_options(synchronize_session="fetch")
    )


# --- submissions --------------------------------------------------------------------------


async def note_submissions(
    session: AsyncSession, answers: Sequence[tuple[int, ChargeResult | None]], now: datetime
) -> None:
    """Write what the gateway answered to DIRECT_DEBIT submissions (see the module
    docstring, 2 and 3).  Schedules the poll has reported on already are left alone, so a
    failure the poll books through :func:`billing.card_charges.record` is not a rejection."""
    ids = [payment_id for payment_id, _ in answers]
    payments = {p.id: p for p in await session.scalars(select(Payment).where(Payment.id.in_(ids)))}
    existing = {
        s.payment_id: s
        for s in await session.scalars(
            select(GatewaySchedule).where(GatewaySchedule.payment_id.in_(ids))
        )
    }
    zones = dict(
        (
            await session.execute(
                select(Customer.id, Customer.time_zone).where(
                    Customer.id.in_({p.customer_id for p in payments.values()})
                )
            )
        ).all()
    )
    submitted = False
    for payment_id, result in answers:
        payment = payments[payment_id]
        schedule = existing.get(payment_id)
        if schedule is not None and schedule.status != ScheduleState.UNKNOWN:
            continue
        if result is None or result.status == ChargeOutcome.UNKNOWN:
            state = ScheduleState.UNKNOWN
        elif result.status == ChargeOutcome.SUBMITTED:
            state = ScheduleState.SUBMITTED
        else:
            state = ScheduleState.REJECTED
        if schedule is None:
            schedule = GatewaySchedule(
                payment_id=payment.id,
                customer_id=payment.customer_id,
                processor_account_id=payment.processor_account_id,
                external_identifier=payment.processor_key,
                amount=payment.amount,
                currency=payment.currency,
                due_date=local_date(now, zones[payment.customer_id]),
                submitted_at=now,
            )
            session.add(schedule)
        schedule.status = state.value
        schedule.updated_at = now
        if result is not None and result.processor_reference:
            schedule.schedule_id = result.processor_reference
        if state == ScheduleState.REJECTED:
            assert result is not None
            schedule.error_code = result.decline_code
            await _stop(session, payment.customer_id, result.decline_code, result.message, now)
        submitted |= state != ScheduleState.REJECTED
    await session.flush()
    if submitted:
        await jobs.schedule(session, POLL_JOB, now + POLL_EVERY, unique_key=POLL_JOB)


async def _stop(
    session: AsyncSession, customer_id: int, code: str | None, message: str, now: datetime
) -> None:
    """A payment stop: flag the enrollment, retire its method, e-mail the administrators."""
    enrollment = await enrollment_of(session, customer_id)
    if enrollment is None or enrollment.status == EnrollmentStatus.STOPPED:
        return
    enrollment.status = EnrollmentStatus.STOPPED.value
    enrollment.stop_code = (code or "stopped")[:64]
    enrollment.stop_message = message[:500]
    enrollment.stopped_at = now
    enrollment.updated_at = now
    await _retire_method(session, enrollment, now)
    await session.flush()
    await _notify_administrators(session, enrollment, now)


async def _notify_administrators(
    session: AsyncSession, enrollment: GatewayEnrollment, now: datetime
) -> None:
    """One e-mail per staff member who administers the customer (the provider's
    administrators, and the reseller's staff for a reseller's customer)."""
    customer = await session.get(Customer, enrollment.customer_id)
    assert customer is not None
    staff = select(User.email).where(
        (User.role == Role.ADMIN)
        | ((User.role == Role.RESELLER) & (User.reseller_id == customer.reseller_id))
    )
    if customer.reseller_id is not None:
        staff = staff.where(
            (User.reseller_id == customer.reseller_id) | (User.reseller_id.is_(None))
        )
    else:
        staff = staff.where(User.reseller_id.is_(None))
    body = (
        f"The direct-debit gateway refused to debit {customer.name} (account "
        f"{enrollment.account_reference}): {enrollment.stop_message}\n\n"
        "Nothing more is submitted for this customer until the payment method is replaced "
        "(the customer does it in the portal's direct-debit page). See Administration > "
        "Direct debit."
    )
    await notifications.write_outbox(
        session,
        [
            notifications.Draft(
                dedupe_key=f"gateway-stop:{enrollment.id}:{now.isoformat()}:{email}",
                customer_id=None,
                to=email,
                subject=f"Direct debit stopped for {customer.name}",
                body=body,
            )
            for email in (await session.scalars(staff)).all()
        ],
        now,
    )
    await notifications.schedule_sending(session, now)


# --- polling ------------------------------------------------------------------------------


@dataclass
class PollReport:
    windows: int = 0
    seen: int = 0
    applied: int = 0
    error: str | None = None


def windows(cursor: date, today: date) -> list[tuple[date, date]]:
    """The date ranges a poll asks for, from ``cursor`` (less :data:`OVERLAP`) to ``today``,
    each at most :data:`MAX_POLL_DAYS` long and reaching :data:`OVERLAP` into the last."""
    found: list[tuple[date, date]] = []
    start = min(cursor, today) - OVERLAP
    while True:
        end = min(start + timedelta(days=MAX_POLL_DAYS), today)
        found.append((start, end))
        if end >= today:
            return found
        start = end - OVERLAP


async def poll_account(db: Database, account_id: int, now: datetime) -> PollReport:
    """Poll one gateway account window by window, each window's statuses applied and the
    cursor moved in one transaction; a failed call stops here, the cursor where it was."""
    report = PollReport()
    async with db.session() as session:
        account = await session.get(ProcessorAccount, account_id)
        assert account is not None
        gateway = _gateway(session, account)
        settings = await settings_of(session, account_id)
        first_due = await session.scalar(
            select(func.min(GatewaySchedule.due_date)).where(
                GatewaySchedule.processor_account_id == account_id
            )
        )
    today = now.date()
    cursor = settings.poll_cursor or first_due or today
    for start, end in windows(cursor, today):
        try:
            statuses = await gateway.payment_statuses(start, end)
        except ProcessorError as error:
            report.error = error.message
            log.warning("gateway poll of account %s: %s", account_id, error.message)
            break
        async with db.transaction() as session:
            applied = await apply_statuses(session, account_id, statuses, now)
            await _move_cursor(session, account_id, end, now, len(statuses), applied)
        report.windows += 1
        report.seen += len(statuses)
        report.applied += applied
    if report.error is not None:
        async with db.transaction() as session:
            row = await _settings_row(session, account_id, now)
            row.last_poll_at = now
            row.last_poll_error = report.error[:500]
    return report


async def _settings_row(session: AsyncSession, account_id: int, now: datetime) -> GatewaySettings:
    row = await session.get(GatewaySettings, account_id)
    if row is None:
        row = await settings_of(session, account_id)
        row.updated_at = now
        session.add(row)
    return row


async def _move_cursor(
    session: AsyncSession, account_id: int, end: date, now: datetime, seen: int, applied: int
) -> None:
    row = await _settings_row(session, account_id, now)
    row.poll_cursor = max(end, row.poll_cursor or end)
    row.last_poll_at = now
    row.last_poll_seen = seen
    row.last_poll_applied = applied
    row.last_poll_error = None
    await session.flush()


async def apply_statuses(
    session: AsyncSession, account_id: int, statuses: Sequence[ScheduleStatus], now: datetime
) -> int:
    """Write each status not seen before and apply it (see the module docstring, 4); count
    again the ones seen before.  Returns how many were applied."""
    if not statuses:
        return 0
    paid_on = PaidOn((await settings_of(session, account_id)).paid_on)
    schedules = {
        s.external_identifier: s
        for s in await session.scalars(
            select(GatewaySchedule).where(
                GatewaySchedule.processor_account_id == account_id,
                GatewaySchedule.external_identifier.in_(
                    {status.external_identifier for status in statuses}
                ),
            )
        )
    }
    applied = 0
    answers: list[tuple[int, ChargeResult]] = []
    stops: list[tuple[GatewaySchedule, ScheduleStatus]] = []
    for status in statuses:
        schedule = schedules.get(status.external_identifier)
        if schedule is None:
            log.warning("gateway poll: no schedule %s at kassa", status.external_identifier)
            continue
        seen = await session.scalar(
            select(GatewayScheduleStatus).where(
                GatewayScheduleStatus.schedule_id == schedule.id,
                GatewayScheduleStatus.status == status.status,
                GatewayScheduleStatus.status_date == status.status_date,
            )
        )
        if seen is not None:
            seen.times_seen += 1
            continue
        payment = await session.get(Payment, schedule.payment_id)
        assert payment is not None
        outcome, answer = _decide(schedule, payment, status, paid_on)
        session.add(
            GatewayScheduleStatus(
                schedule_id=schedule.id,
                status=status.status,
                error_code=status.error_code,
                status_date=status.status_date,
                outcome=outcome,
                first_seen_at=now,
                times_seen=1,
            )
        )
        schedule.status = status.status
        schedule.error_code = status.error_code
        schedule.status_date = status.status_date
        schedule.schedule_id = schedule.schedule_id or status.schedule_id
        schedule.updated_at = now
        applied += 1
        if answer is not None:
            answers.append((payment.id, answer))
        if outcome == FLAGGED:
            payment.flagged_reason = (
                f"The gateway reported {status.status} for a payment kassa counts as "
                f"{payment.status.value.lower()}; check it at the gateway."
            )
        if status.status == "Unbillable":
            stops.append((schedule, status))
    await session.flush()
    if answers:
        recorded = await card_charges.record(session, answers, now)
        if recorded.failed:  # kassa's own retries take over from here
            await jobs.reschedule(
                session,
                collection_run.COLLECTION_RUN_JOB,
                collection_run.COLLECTION_RUN_JOB,
                lambda s: collection_run.next_run_at(s, now),
            )
    for schedule, status in stops:
        await _stop(
            session,
            schedule.customer_id,
            status.error_code or "Unbillable",
            f"the gateway reported the account unbillable ({status.error_code or 'no code'})",
            now,
        )
    return applied


def _decide(
    schedule: GatewaySchedule, payment: Payment, status: ScheduleStatus, paid_on: PaidOn
) -> tuple[str, ChargeResult | None]:
    """(outcome, the answer to book) for a status seen for the first time."""
    is_open = payment.status in card_charges.OPEN_STATUSES
    paid = status.status == "Settled" or (status.status == "Cleared" and paid_on == PaidOn.CLEARED)
    failed = status.status in ("Failed", "Unbillable")
    if status.amount != schedule.amount and (paid or failed):
        return FLAGGED, None
    if paid:
        if not is_open:
            return (
                (COMPLETED, None) if payment.status == PaymentStatus.COMPLETED else (FLAGGED, None)
            )
        return COMPLETED, _answer(ChargeOutcome.SUCCEEDED, schedule, status)
    if failed:
        if not is_open:
            return (FAILED, None) if payment.status == PaymentStatus.FAILED else (FLAGGED, None)
        return FAILED, _answer(ChargeOutcome.DECLINED, schedule, status)
    return PENDING, None


def _answer(
    outcome: ChargeOutcome, schedule: GatewaySchedule, status: ScheduleStatus
) -> ChargeResult:
    words = {
        ChargeOutcome.SUCCEEDED: f"Debited by the gateway ({status.status}).",
        ChargeOutcome.DECLINED: f"The gateway could not debit it: {status.error_code or status.status}.",
    }
    return ChargeResult(
        outcome,
        schedule.schedule_id or status.schedule_id,
        (status.error_code or status.status) if outcome == ChargeOutcome.DECLINED else None,
        words[outcome],
        schedule.amount,
        schedule.currency,
    )


async def _accounts_to_poll(session: AsyncSession) -> list[int]:
    """Every gateway account with a schedule kassa still waits on."""
    return list(
        (
            await session.scalars(
                select(GatewaySchedule.processor_account_id)
                .where(GatewaySchedule.status.not_in(_FINAL))
                .distinct()
            )
        ).all()
    )


async def poll_all(db: Database, now: datetime) -> dict[int, PollReport]:
    """Poll every gateway account that has open schedules, then plan the next poll (none
    while nothing is open: the next submission plans one)."""
    async with db.session() as session:
        account_ids = await _accounts_to_poll(session)
    reports = {account_id: await poll_account(db, account_id, now) for account_id in account_ids}
    async with db.transaction() as session:
        still_open = await _accounts_to_poll(session)
        await jobs.reschedule(session, POLL_JOB, POLL_JOB, lambda s: _next_poll(still_open, now))
    return reports


async def _next_poll(still_open: list[int], now: datetime) -> datetime | None:
    return now + POLL_EVERY if still_open else None


@jobs.detached_handler(POLL_JOB)
async def poll_job(db: Database, payload: dict[str, Any], now: datetime) -> None:
    """The singleton poll: safe to run any number of times (each status applies once)."""
    await poll_all(db, now)


# --- reading (administrators) ---------------------------------------------------------------


async def enrollments(session: AsyncSession, viewer: Viewer) -> list[GatewayEnrollment]:
    """Every enrollment of a customer the viewer administers, stopped ones first."""
    require_staff(viewer)
    query = (
        select(GatewayEnrollment)
        .join(Customer, Customer.id == GatewayEnrollment.customer_id)
        .order_by(
            (GatewayEnrollment.status != EnrollmentStatus.STOPPED.value), GatewayEnrollment.id
        )
    )
    if viewer.reseller_id is not None:
        query = query.where(Customer.reseller_id == viewer.reseller_id)
    return list((await session.scalars(query)).all())


async def schedules_of(
    session: AsyncSession, customer_ids: Sequence[int]
) -> dict[int, list[GatewaySchedule]]:
    found: dict[int, list[GatewaySchedule]] = {i: [] for i in customer_ids}
    for row in await session.scalars(
        select(GatewaySchedule)
        .where(GatewaySchedule.customer_id.in_(list(customer_ids)))
        .order_by(GatewaySchedule.id.desc())
    ):
        found[row.customer_id].append(row)
    return found


async def history_of(
    session: AsyncSession, schedule_ids: Sequence[int]
) -> dict[int, list[GatewayScheduleStatus]]:
    found: dict[int, list[GatewayScheduleStatus]] = {i: [] for i in schedule_ids}
    for row in await session.scalars(
        select(GatewayScheduleStatus)
        .where(GatewayScheduleStatus.schedule_id.in_(list(schedule_ids)))
        .order_by(GatewayScheduleStatus.status_date, GatewayScheduleStatus.id)
    ):
        found[row.schedule_id].append(row)
    return found


async def gateway_accounts(
    session: AsyncSession, viewer: Viewer
) -> list[tuple[ProcessorAccount, GatewaySettings]]:
    """The gateway processor accounts the viewer administers, with their settings."""
    listed = await accounts.list_accounts(session, viewer)
    found = []
    for details in listed:
        account = await session.get(ProcessorAccount, details.id)
        if account is not None and _is_gateway(account):
            found.append((account, await settings_of(session, account.id)))
    return found


async def billed_classes(session: AsyncSession, account_ids: Sequence[int]) -> dict[int, list[int]]:
    """The customer classes each of these gateway accounts bills, by account id."""
    found: dict[int, list[int]] = {i: [] for i in account_ids}
    for class_id, account_id in await session.execute(
        select(GatewayBilledClass.class_id, GatewayBilledClass.processor_account_id)
        .where(GatewayBilledClass.processor_account_id.in_(list(account_ids)))
        .order_by(GatewayBilledClass.class_id)
    ):
        found[account_id].append(class_id)
    return found


async def get_enrollment(
    session: AsyncSession, viewer: Viewer, customer_id: int
) -> GatewayEnrollment:
    customer = await customers.get_customer(session, viewer, customer_id)
    require_self_or_staff(viewer, customer)
    enrollment = await enrollment_of(session, customer.id)
    if enrollment is None:
        raise NotFound("direct-debit enrollment", "customerId")
    return enrollment
