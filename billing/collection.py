"""Collection: when an invoice's outstanding amount is charged to the customer's card.

Invoices never call a processor (as in Kill Bill, the invoice module only makes invoices);
this module decides *when* to charge, and :mod:`billing.collection_run` makes the charges
(through :mod:`billing.card_charges`, like every card charge).  Retries are data, not code
paths: when an invoice is issued (or approved after review) its attempts are planned as
``collection_attempts`` rows, SCHEDULED for their days, and the singleton
``collection_run`` job wakes at the earliest one.

Settings are per customer class and per invoice kind (REGULAR, OUT_OF_TURN), in
``collection_settings`` (:class:`CollectionPolicy` is the resolved form):

* payment terms (net days: issue date → due date) and the grace period after the due date
  before the customer is suspended — a null means the class's own ``payment_terms_days`` /
  ``grace_period_days``;
* when to charge the card: NEVER, ON_ISSUE or ON_DUE_DATE;
* additional attempts: days before the due date (with ON_ISSUE) and days after it
  (``0,3,7``: 0 is the due date itself);
* review: new invoices wait in PENDING_REVIEW until approved (see
  :func:`billing.invoices.approve_invoices`); attempts are planned on approval.

A customer without a class, or a class without a row for the kind, gets
:data:`DEFAULT_POLICY`: net 14, grace 7, never charged, no review — nothing is charged
unless someone chose a charging rule.

Dates are the customer's local calendar days; an attempt falls due at
:data:`ATTEMPT_TIME` (09:00) local time on its day, except the charge upon issue and
attempts whose day has already passed when they are planned (an invoice approved late):
those are made at once.  At most one attempt per invoice and day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import bulk, jobs
from billing.errors import UserError
from billing.models import (
    AttemptStatus,
    CardCharging,
    CollectionAttempt,
    CollectionSettings,
    Customer,
    CustomerClass,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
)
from billing.periods import local_date, local_time_utc
from billing.validation import non_negative_int

#: Local wall-clock time at which an attempt of a given day falls due.
ATTEMPT_TIME = time(9, 0)
DEFAULT_PAYMENT_TERMS_DAYS = 14
DEFAULT_GRACE_PERIOD_DAYS = 7
#: The longest list of extra attempt days and the furthest day one may be from the due date.
MAX_ATTEMPT_DAYS = 20
MAX_DAYS_FROM_DUE = 365
_IDS_PER_STATEMENT = 1000
#: The tables the set-based statements below write (Core, for executemany).
_ATTEMPTS = cast(Table, CollectionAttempt.__table__)
_INVOICES = cast(Table, Invoice.__table__)


class NotCharged(StrEnum):
    """Why collection passed an invoice by (``invoices.not_charged_reason``)."""

    CHARGING_OFF = "CHARGING_OFF"  # the class never charges cards for this kind of invoice
    AUTO_PAYMENT_OFF = "AUTO_PAYMENT_OFF"  # the customer turned automatic payment off
    NO_PAYMENT_METHOD = "NO_PAYMENT_METHOD"  # no default card when the attempt fell due


class CancelReason(StrEnum):
    """Why an attempt was canceled before it was made (``collection_attempts.reason``)."""

    PAID = "PAID"  # nothing left to charge: paid another way, or by an earlier attempt
    VOIDED = "VOIDED"
    SUPERSEDED = "SUPERSEDED"  # a later attempt of the same invoice was due too (catch-up)
    AUTO_PAYMENT_OFF = NotCharged.AUTO_PAYMENT_OFF.value
    NO_PAYMENT_METHOD = NotCharged.NO_PAYMENT_METHOD.value


# --- settings -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CollectionPolicy:
    """The settings that apply to one invoice: its class's row for its kind, resolved."""

    payment_terms_days: int = DEFAULT_PAYMENT_TERMS_DAYS
    grace_period_days: int = DEFAULT_GRACE_PERIOD_DAYS
    card_charging: CardCharging = CardCharging.NEVER
    days_before_due: tuple[int, ...] = ()
    days_after_due: tuple[int, ...] = ()
    review: bool = False


DEFAULT_POLICY = CollectionPolicy()


def parse_days(text: str | None) -> tuple[int, ...]:
    """``"0,3,7"`` → ``(0, 3, 7)``; empty → ``()``."""
    return tuple(int(part) for part in (text or "").split(",") if part.strip())


def format_days(days: Iterable[int]) -> str:
    return ",".join(str(day) for day in days)


def validate_days(days: Sequence[int], field: str) -> tuple[int, ...]:
    """Day counts 0–365, at most 20 of them; returned sorted without repeats."""
    if len(days) > MAX_ATTEMPT_DAYS:
        raise UserError("OUT_OF_RANGE", f"at most {MAX_ATTEMPT_DAYS} attempt days", field)
    if any(not 0 <= day <= MAX_DAYS_FROM_DUE for day in days):
        raise UserError(
            "OUT_OF_RANGE", f"attempt days must be between 0 and {MAX_DAYS_FROM_DUE}", field
        )
    return tuple(sorted(set(days)))


def payment_terms(class_terms: int | None, kind_terms: int | None) -> int:
    """The net days of an invoice: its class's setting for its kind, else the class's own
    terms, else :data:`DEFAULT_PAYMENT_TERMS_DAYS` (no class)."""
    if kind_terms is not None:
        return kind_terms
    return DEFAULT_PAYMENT_TERMS_DAYS if class_terms is None else class_terms


def resolve_policy(
    class_terms: int | None, class_grace: int | None, row: CollectionSettings | None
) -> CollectionPolicy:
    """The policy from a class's own terms and grace (None: no class) and its row for a kind."""
    grace = DEFAULT_GRACE_PERIOD_DAYS if class_grace is None else class_grace
    if row is None:
        return CollectionPolicy(
            payment_terms_days=payment_terms(class_terms, None), grace_period_days=grace
        )
    return CollectionPolicy(
        payment_terms_days=payment_terms(class_terms, row.payment_terms_days),
        grace_period_days=grace if row.grace_period_days is None else row.grace_period_days,
        card_charging=row.card_charging,
        days_before_due=parse_days(row.attempt_days_before_due),
        days_after_due=parse_days(row.attempt_days_after_due),
        review=row.review,
    )


def policy_of(cls: CustomerClass | None, row: CollectionSettings | None) -> CollectionPolicy:
    if cls is None:
        return DEFAULT_POLICY
    return resolve_policy(cls.payment_terms_days, cls.grace_period_days, row)


def settings_join(kind: Any) -> Any:
    """The ON clause joining a query over ``Customer`` to its class's settings for ``kind``
    (an :class:`InvoiceKind` or a column such as ``Invoice.kind``)."""
    return and_(
        CollectionSettings.class_id == Customer.class_id, CollectionSettings.invoice_kind == kind
    )


def review_column() -> Any:
    return func.coalesce(CollectionSettings.review, False)


@dataclass
class SettingsInput:
    """What a caller may set for one kind of invoice; ``None`` keeps the current value."""

    payment_terms_days: int | None = None
    grace_period_days: int | None = None
    card_charging: CardCharging | None = None
    attempt_days_before_due: list[int] | None = None
    attempt_days_after_due: list[int] | None = None
    review: bool | None = None


def _days_field(kind: InvoiceKind, name: str) -> str:
    prefix = "regularInvoices" if kind == InvoiceKind.REGULAR else "outOfTurnInvoices"
    return f"{prefix}.{name}"


def _require_days_before_due_charged(
    card_charging: CardCharging, days_before: Sequence[int], kind: InvoiceKind
) -> None:
    """Attempts before the due date are made only when the card is charged upon issue
    (:func:`attempt_days`); with ON_DUE_DATE the first charge is the due date itself, so such
    days would do nothing, and a class that asks for them is refused rather than kept."""
    if card_charging == CardCharging.ON_DUE_DATE and days_before:
        raise UserError(
            "DAYS_BEFORE_DUE_NOT_CHARGED",
            "attempts before the due date need the card charged upon issue (ON_ISSUE): "
            "with ON_DUE_DATE the first charge is on the due date",
            _days_field(kind, "attemptDaysBeforeDue"),
        )


async def save_settings(
    session: AsyncSession, class_id: int, kind: InvoiceKind, data: SettingsInput
) -> CollectionSettings:
    """Create or change a class's settings for one kind of invoice.

    Changes apply to invoices issued (or approved) from now on: planned attempts and due
    dates of existing invoices stay as they were when they were made.
    """
    row = await session.scalar(
        select(CollectionSettings).where(
            CollectionSettings.class_id == class_id, CollectionSettings.invoice_kind == kind
        )
    )
    if row is None:
        row = CollectionSettings(
            class_id=class_id,
            invoice_kind=kind,
            card_charging=CardCharging.NEVER,
            attempt_days_before_due="",
            attempt_days_after_due="",
            review=False,
        )
        session.add(row)
    if data.payment_terms_days is not None:
        row.payment_terms_days = non_negative_int(
            data.payment_terms_days, _days_field(kind, "paymentTermsDays")
        )
    if data.grace_period_days is not None:
        row.grace_period_days = non_negative_int(
            data.grace_period_days, _days_field(kind, "gracePeriodDays")
        )
    if data.attempt_days_before_due is not None:
        days_before = validate_days(
            data.attempt_days_before_due, _days_field(kind, "attemptDaysBeforeDue")
        )
    else:
        days_before = parse_days(row.attempt_days_before_due)
    card_charging = row.card_charging if data.card_charging is None else data.card_charging
    _require_days_before_due_charged(card_charging, days_before, kind)
    row.card_charging = card_charging
    row.attempt_days_before_due = format_days(days_before)
    if data.attempt_days_after_due is not None:
        row.attempt_days_after_due = format_days(
            validate_days(data.attempt_days_after_due, _days_field(kind, "attemptDaysAfterDue"))
        )
    if data.review is not None:
        row.review = data.review
    await session.flush()
    return row


async def settings_rows(
    session: AsyncSession, class_ids: Sequence[int]
) -> dict[tuple[int, InvoiceKind], CollectionSettings]:
    """Every settings row of the given classes, by (class id, kind), in one query."""
    if not class_ids:
        return {}
    rows = await session.scalars(
        select(CollectionSettings).where(CollectionSettings.class_id.in_(list(class_ids)))
    )
    return {(row.class_id, row.invoice_kind): row for row in rows.all()}


# --- the planning rules ---------------------------------------------------------------------


def attempt_days(policy: CollectionPolicy, issue_date: date, due_date: date) -> list[date]:
    """The local days an invoice is to be charged on, by its policy, earliest first.

    ON_ISSUE: the issue date, plus each "days before the due date" that is not before it.
    ON_DUE_DATE: the due date.  Both: plus each "days after the due date" (0 = the due date,
    which is then one attempt, not two).  NEVER: none at all.
    """
    if policy.card_charging == CardCharging.NEVER:
        return []
    days = {due_date + timedelta(days=after) for after in policy.days_after_due}
    if policy.card_charging == CardCharging.ON_ISSUE:
        days.add(issue_date)
        days |= {
            due_date - timedelta(days=before)
            for before in policy.days_before_due
            if due_date - timedelta(days=before) >= issue_date
        }
    else:
        days.add(due_date)
    return sorted(days)


def attempt_schedule(
    policy: CollectionPolicy, issue_date: date, due_date: date, now: datetime, time_zone: str
) -> list[tuple[date, datetime]]:
    """Each attempt as (local day, UTC instant it falls due), planned at ``now``.

    An attempt falls due at :data:`ATTEMPT_TIME` on its day.  The charge upon issue is due
    at once, and so is a day already past when planning (an invoice approved after the day
    of some of its attempts): those collapse into one attempt today.
    """
    today = local_date(now, time_zone)
    planned: dict[date, datetime] = {}
    for day in attempt_days(policy, issue_date, due_date):
        upon_issue = policy.card_charging == CardCharging.ON_ISSUE and day == issue_date
        missed = day < today
        day = max(day, today)
        at = now if upon_issue or missed else max(now, local_time_utc(day, ATTEMPT_TIME, time_zone))
        planned[day] = min(planned.get(day, at), at)
    return sorted(planned.items())


# --- planning and canceling -------------------------------------------------------------------


async def plan_attempts(
    session: AsyncSession, invoice_ids: Sequence[int], now: datetime
) -> list[int]:
    """Plan the attempts of newly issued (or just approved) invoices; returns those the
    class never charges, for the caller to mark (:func:`mark_never_charged`) — the bill run
    does it in the statement that numbers its invoices, saving a second write of each.

    Set-based for the bill run: one read of the invoices with their customers' settings,
    one INSERT of the attempts.  Invoices waiting for review, void or already paid get
    nothing.
    """
    rows: list[dict[str, Any]] = []
    never: list[int] = []
    for start in range(0, len(invoice_ids), _IDS_PER_STATEMENT):
        chunk = list(invoice_ids[start : start + _IDS_PER_STATEMENT])
        found = await session.execute(
            select(
                Invoice.id,
                Invoice.customer_id,
                Invoice.issue_date,
                Invoice.due_date,
                Invoice.currency,
                Customer.time_zone,
                CustomerClass.payment_terms_days,
                CustomerClass.grace_period_days,
                CollectionSettings,
            )
            .join(Customer, Customer.id == Invoice.customer_id)
            .outerjoin(CustomerClass, CustomerClass.id == Customer.class_id)
            .outerjoin(CollectionSettings, settings_join(Invoice.kind))
            .where(
                # The range as well: the planner then reads these invoices by their key
                # rather than every open invoice by status (the bill run adds thousands a
                # second, faster than the table's statistics follow).
                Invoice.id.between(min(chunk), max(chunk)),
                bulk.among(session, Invoice.id, chunk),
                Invoice.status.in_(
                    (InvoiceStatus.UNPAID, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.OVERDUE)
                ),
                Invoice.amount_paid < Invoice.total,
            )
        )
        for row in found.all():
            policy = resolve_policy(
                row.payment_terms_days, row.grace_period_days, row.CollectionSettings
            )
            if policy.card_charging == CardCharging.NEVER:
                never.append(row.id)
                continue
            for day, at in attempt_schedule(
                policy, row.issue_date, row.due_date, now, row.time_zone
            ):
                rows.append(
                    {
                        "invoice_id": row.id,
                        "customer_id": row.customer_id,
                        "scheduled_for": day,
                        "scheduled_at": at,
                        "status": AttemptStatus.SCHEDULED,
                        "currency": row.currency,
                        "created_at": now,
                    }
                )
    if rows:
        # Imported here: the run (and the card-charge flow under it) builds on this module's
        # rules, and its job's name lives beside its handler (issue 7).
        from billing import collection_run

        await session.execute(insert(CollectionAttempt), rows)
        await jobs.schedule(
            session,
            collection_run.COLLECTION_RUN_JOB,
            min(r["scheduled_at"] for r in rows),
            unique_key=collection_run.COLLECTION_RUN_JOB,
        )
    return never


async def mark_never_charged(session: AsyncSession, invoice_ids: Sequence[int]) -> None:
    """Record on each invoice that its class never charges cards (``CHARGING_OFF``)."""
    for start in range(0, len(invoice_ids), _IDS_PER_STATEMENT):
        await session.execute(
            update(_INVOICES)
            .where(_INVOICES.c.id.in_(invoice_ids[start : start + _IDS_PER_STATEMENT]))
            .values(not_charged_reason=NotCharged.CHARGING_OFF.value)
        )


async def cancel_pending(
    session: AsyncSession, invoice_ids: Sequence[int], reason: CancelReason, now: datetime
) -> None:
    """Cancel the invoices' attempts that have not been made yet (paid another way, void).

    An attempt in flight (UNKNOWN) is not touched: its outcome is still to be learned.
    """
    attempts = _ATTEMPTS
    for start in range(0, len(invoice_ids), _IDS_PER_STATEMENT):
        await session.execute(
            update(attempts)
            .where(
                attempts.c.invoice_id.in_(list(invoice_ids[start : start + _IDS_PER_STATEMENT])),
                attempts.c.status == AttemptStatus.SCHEDULED,
            )
            .values(status=AttemptStatus.CANCELED, reason=reason.value, finished_at=now)
        )


# --- reading --------------------------------------------------------------------------------


async def attempts_for_invoices(
    session: AsyncSession, invoice_ids: Sequence[int]
) -> dict[int, list[CollectionAttempt]]:
    """Each invoice's attempts in the order they fall due (for DataLoaders).

    The caller has already authorised the invoices.
    """
    found: dict[int, list[CollectionAttempt]] = {invoice_id: [] for invoice_id in invoice_ids}
    ids = list(invoice_ids)
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        rows = await session.scalars(
            select(CollectionAttempt)
            .where(CollectionAttempt.invoice_id.in_(ids[start : start + _IDS_PER_STATEMENT]))
            .order_by(CollectionAttempt.scheduled_at, CollectionAttempt.id)
        )
        for row in rows.all():
            found[row.invoice_id].append(row)
    return found


def next_attempt_at(attempts: Sequence[CollectionAttempt]) -> datetime | None:
    """When the next planned attempt falls due, if one is still planned."""
    return min(
        (a.scheduled_at for a in attempts if a.status == AttemptStatus.SCHEDULED), default=None
    )
