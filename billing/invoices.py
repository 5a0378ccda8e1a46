"""Invoices: closing a billing period, closing one early on demand, voiding, reading.

Closing a period turns the customer's uninvoiced charges into a REGULAR invoice; closing early
on demand makes an OUT_OF_TURN invoice and the period's regular invoice later takes whatever
is left.  A period with nothing on it (:func:`is_empty`) gets no invoice unless the
customer's class asks for one (``issue_empty_invoices``).  Invoices move no money — the
charges were posted to the ledger when they happened — so issuing one writes no ledger
transaction; voiding one does (the charges are reversed).

:func:`issue_invoices` is set-based because the bill run closes tens of thousands of periods
at a time: a handful of statements per batch of customers (one read of their uninvoiced
charges, one of their payments, one INSERT … RETURNING of the invoices, one UPDATE per period
rank pointing the charges at their invoices — an invoice's lines are its charges, not copies —
and last the numbers, so that the lock on the number sequence is held only at the end), never
a round trip per charge.
Those bulk statements bypass the session's identity map; reload objects read before them.

The figures on an invoice (see :func:`statement_figures`) are derived from the ledger at
closing time, so they always reconcile with the customer's balance::

    balance_due = previous_balance − payments_in_period + total
                = customer balance − charges not yet invoiced + payments received after the period
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import groupby
from typing import Any, TypeVar
from uuid import uuid4

from sqlalchemy import (
    BigInteger,
    FromClause,
    Integer,
    Row,
    Select,
    String,
    and_,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

# ``customers`` as a module: it wakes the bill run, whose module imports this one.
from billing import (
    bulk,
    clock,
    collection,
    customers,
    dunning,
    invoice_pdfs,
    jobs,
    ledger,
    settlement,
    validation,
)
from billing.access import Viewer, require_staff, visible
from billing.errors import NotFound, UserError
from billing.models import (
    Charge,
    ChargeStatus,
    CollectionSettings,
    Customer,
    CustomerClass,
    Invoice,
    InvoiceKind,
    InvoiceSequence,
    InvoiceStatus,
    LedgerAccount,
    LedgerAccountKind,
    Payment,
    PaymentAllocation,
    StatusChange,
    StatusSubject,
    TransactionKind,
    UTCDateTime,
    table_of,
)
from billing.periods import Period, due_date_for, local_date, local_midnight_utc
from billing.status_changes import Cause, Change, record, record_many

#: Invoice numbers are zero-padded to this many digits ("INV-000123").
INVOICE_NUMBER_DIGITS = 6
#: The job that flips unpaid invoices to OVERDUE once their due date has passed.
OVERDUE_JOB = "invoice_overdue"
#: Statuses an invoice can become OVERDUE from.
UNSETTLED_STATUSES = (InvoiceStatus.UNPAID, InvoiceStatus.PARTIALLY_PAID)
#: Invoice ids per statement: far below the bind-parameter limits of SQLite and asyncpg.
_IDS_PER_STATEMENT = 1000

_T = TypeVar("_T")


# --- numbers ------------------------------------------------------------------------------


def invoice_number(owner_key: str, sequence: int) -> str:
    """The printed number: ``INV-000123`` for the provider, ``R<id>-000123`` for a reseller.

    Each owner numbers its own invoices, so the prefix keeps two owners' invoice 123 apart on
    paper.
    """
    prefix = "INV" if owner_key == ledger.system_owner_key(None) else "R" + owner_key.split(":")[1]
    return f"{prefix}-{sequence:0{INVOICE_NUMBER_DIGITS}d}"


async def next_invoice_numbers(session: AsyncSession, owner_key: str, count: int) -> list[str]:
    """Take the next ``count`` numbers of ``owner_key``'s sequence, in one atomic upsert.

    The sequence row stays locked until the transaction ends and rolls back with it, so
    numbers are never handed out twice and an invoice that is not committed leaves no gap.
    """
    if count == 0:
        return []
    dialect_insert = (
        postgresql_insert
        if session.bind.dialect.name == "postgresql"  # type: ignore[union-attr]
        else sqlite_insert
    )
    upsert = (
        dialect_insert(InvoiceSequence)
        .values(owner_key=owner_key, next_number=1 + count)
        .on_conflict_do_update(
            index_elements=[InvoiceSequence.owner_key],
            set_={"next_number": InvoiceSequence.next_number + count},
        )
        .returning(InvoiceSequence.next_number)
    )
    after_last = int((await session.execute(upsert)).scalar_one())
    return [invoice_number(owner_key, n) for n in range(after_last - count, after_last)]


# --- what is invoiced, and when -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Billee:
    """What invoicing needs to know about a customer, read for a whole batch in one query."""

    id: int
    reseller_id: int | None
    currency: str
    time_zone: str
    #: Net days for the kind being issued (see :func:`invoice_dates`).
    payment_terms_days: int
    balance: int
    #: New invoices wait in PENDING_REVIEW (the class's setting for the kind being issued).
    review: bool = False
    #: A period with nothing on it is invoiced all the same (the class's setting).
    issue_empty_invoices: bool = False

    @property
    def owner_key(self) -> str:
        """Whose invoice-number sequence this customer's invoices take numbers from."""
        return ledger.system_owner_key(self.reseller_id)


def billee_query(kind: InvoiceKind = InvoiceKind.REGULAR) -> Select:  # type: ignore[type-arg]
    """Customers with their ledger balance and their class's payment terms, review and
    empty-invoice settings for invoices of ``kind``; callers add filters and columns."""
    return (
        select(
            Customer.id,
            Customer.reseller_id,
            Customer.currency,
            Customer.time_zone,
            CustomerClass.payment_terms_days.label("class_terms"),
            CollectionSettings.payment_terms_days.label("kind_terms"),
            collection.review_column().label("review"),
            func.coalesce(CustomerClass.issue_empty_invoices, False).label("issue_empty"),
            LedgerAccount.balance,
        )
        .join(LedgerAccount, LedgerAccount.id == Customer.ledger_account_id)
        .outerjoin(CustomerClass, CustomerClass.id == Customer.class_id)
        .outerjoin(CollectionSettings, collection.settings_join(kind))
    )


def billee_from_row(row: Row[Any]) -> Billee:
    return Billee(
        id=row.id,
        reseller_id=row.reseller_id,
        currency=row.currency,
        time_zone=row.time_zone,
        payment_terms_days=collection.payment_terms(row.class_terms, row.kind_terms),
        balance=int(row.balance),
        review=bool(row.review),
        issue_empty_invoices=bool(row.issue_empty),
    )


@dataclass(frozen=True, slots=True)
class Closing:
    """One period of one customer to invoice, as a REGULAR or an OUT_OF_TURN invoice."""

    billee: Billee
    period: Period
    kind: InvoiceKind


def invoice_dates(period: Period, today: date, payment_terms_days: int) -> tuple[date, date]:
    """An invoice's issue date and due date: how every invoice, of either kind, gets them.

    It is dated the local day its period closes — the period's end, or today when closed
    early — so a bill run that runs late still dates each invoice at its own period's end and
    due dates do not drift with the run.  It is due ``payment_terms_days`` calendar days later
    on the customer's calendar (:func:`billing.periods.due_date_for`), the terms being those of
    the customer's class for the invoice's kind (:func:`billing.collection.payment_terms`).
    Approving a reviewed invoice keeps both dates.
    """
    issue_date = min(period.end, today)
    return issue_date, due_date_for(issue_date, payment_terms_days)


def out_of_turn_period(open_period_start: date, today: date) -> Period:
    """Closing early covers the open period from its first day up to and including today."""
    return Period(open_period_start, max(today, open_period_start) + timedelta(days=1))


def overdue_from(due_date: date, time_zone: str) -> datetime:
    """An invoice due on a local day is overdue from the next local midnight in its zone."""
    return local_midnight_utc(due_date + timedelta(days=1), time_zone)


@dataclass(frozen=True, slots=True)
class StatementFigures:
    previous_balance: int
    payments_in_period: int
    total: int


def is_empty(figures: StatementFigures, line_count: int) -> bool:
    """Whether an invoice would tell the customer nothing: no lines (so a total of 0), nothing
    carried over from before (no debt and no credit: a previous balance of 0) and nothing
    paid, net of refunds, during the period — hence a balance due of 0.

    A customer who still owes, holds credit or paid during the period gets the invoice all
    the same: it is their statement.
    """
    return line_count == 0 and figures.previous_balance == 0 and figures.payments_in_period == 0


def statement_figures(
    balance: int,
    total: int,
    uninvoiced_after: int,
    payments_in_period: int,
    payments_after: int,
) -> StatementFigures:
    """The invoice's previous balance: what was owed before the period's activity.

    Derived from the customer's ledger ``balance`` at closing time rather than chained from
    the last invoice, so it stays right through voids, refunds, adjustments and catch-up runs:
    the balance, less the charges left for later invoices (``uninvoiced_after``), plus the
    payments received after the period (``payments_after``), is what is owed as of this
    invoice (``balance_due``); taking away this period's charges and adding back this
    period's payments leaves the previous balance.
    """
    balance_due = balance - uninvoiced_after + payments_after
    return StatementFigures(
        previous_balance=balance_due - total + payments_in_period,
        payments_in_period=payments_in_period,
        total=total,
    )


# --- issuing ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Draft:
    """An invoice about to be inserted, with what is needed to attach its charges."""

    closing: Closing
    rank: int  # 0 for a customer's first closing in this call, 1 for the next, …
    #: The charges it takes: uninvoiced, served from ``since`` (None: any time before) until
    #: its period's end.
    since: datetime | None
    until: datetime
    line_count: int
    figures: StatementFigures
    issue_date: date
    due_date: date
    status: InvoiceStatus


def _spans(closings: list[Closing]) -> list[tuple[datetime | None, datetime | None]]:
    """The service times each of one customer's closings (oldest first) takes charges from,
    as (since, until): a charge goes on the first invoice whose period ends after it; then
    the span after the last closing, whose charges wait for a later invoice."""
    ends = [c.period.end_utc(c.billee.time_zone) for c in closings]
    return list(zip([None, *ends], [*ends, None], strict=True))


def _span_table(
    session: AsyncSession, spans: list[tuple[Any, ...]], key: tuple[str, TypeEngine[Any]]
) -> FromClause:
    """Spans (customer, since, until, and ``key``: what each stands for) as a table."""
    return bulk.rows_table(
        session,
        "span",
        [
            ("customer_id", BigInteger()),
            ("since", UTCDateTime()),
            ("until", UTCDateTime()),
            key,
        ],
        spans,
    )


def _within(charges: Any, span: Any, customer_ids: Sequence[int]) -> Any:
    """The uninvoiced posted charges of ``span``'s customer served within it
    (``customer_ids``: the spans' customers, see :func:`billing.bulk.matching`)."""
    return and_(
        bulk.matching(charges.c.customer_id, span.c.customer_id, customer_ids),
        charges.c.invoice_id.is_(None),
        charges.c.status == ChargeStatus.POSTED,
        or_(span.c.since.is_(None), charges.c.service_at >= span.c.since),
        or_(span.c.until.is_(None), charges.c.service_at < span.c.until),
    )


async def _uninvoiced_sums(
    session: AsyncSession, closings: list[Closing]
) -> dict[int, dict[int, tuple[int, int]]]:
    """The customers' uninvoiced posted charges summed per span (:func:`_spans`): customer →
    rank → (total, count), the rank after a customer's last closing holding what waits.

    Summed in the database, so a batch reads a row per span, not one per charge.
    """
    spans = []
    for customer_id, own in groupby(closings, key=lambda c: c.billee.id):
        spans += [
            (customer_id, since, until, rank)
            for rank, (since, until) in enumerate(_spans(list(own)))
        ]
    span = _span_table(session, spans, ("rank", Integer()))
    charges = table_of(Charge)
    rows = await session.execute(
        select(span.c.customer_id, span.c.rank, func.sum(charges.c.amount), func.count())
        .select_from(span)
        .join(charges, _within(charges, span, [customer_id for customer_id, *_ in spans]))
        .group_by(span.c.customer_id, span.c.rank)
    )
    sums: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
    for customer_id, rank, total, count in rows.all():
        sums[customer_id][rank] = (int(total), int(count))
    return sums


async def _settled_payments(
    session: AsyncSession, customer_ids: list[int], since: datetime
) -> dict[int, list[tuple[datetime, int]]]:
    """Each customer's settled payments since ``since`` as (received time, amount net of refunds)."""
    rows = await session.execute(
        select(
            Payment.customer_id, Payment.received_at, Payment.amount - Payment.refunded_amount
        ).where(
            bulk.among(session, Payment.customer_id, customer_ids),
            Payment.status.in_(settlement.SETTLED_PAYMENT_STATUSES),
            Payment.received_at >= since,
        )
    )
    payments: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for customer_id, received_at, net in rows.all():
        payments[customer_id].append((received_at, int(net)))
    return payments


def _draft_customer(
    closings: list[Closing],
    sums: dict[int, tuple[int, int]],
    payments: list[tuple[datetime, int]],
    now: datetime,
) -> list[_Draft]:
    """Drafts for one customer's closings (oldest first), each taking its span's charges
    (``sums``: rank → total and count, see :func:`_uninvoiced_sums`).

    A charge goes on the first invoice whose period ends after its service time: late charges
    for an already invoiced period land on the next invoice, early ones wait for theirs.  An
    empty closing (:func:`is_empty`) gets no draft unless the class asks for empty invoices.
    """
    drafts = []
    for rank, (closing, (since, until)) in enumerate(
        zip(closings, _spans(closings), strict=False)  # the last span follows every closing
    ):
        assert until is not None  # only the span after the last closing is open-ended
        tz = closing.billee.time_zone
        starts = closing.period.start_utc(tz)
        total, line_count = sums.get(rank, (0, 0))
        figures = statement_figures(
            balance=closing.billee.balance,
            total=total,
            uninvoiced_after=sum(t for later, (t, _) in sums.items() if later > rank),
            payments_in_period=sum(net for at, net in payments if starts <= at < until),
            payments_after=sum(net for at, net in payments if at >= until),
        )
        if is_empty(figures, line_count) and not closing.billee.issue_empty_invoices:
            continue
        today = local_date(now, tz)
        issue_date, due_date = invoice_dates(
            closing.period, today, closing.billee.payment_terms_days
        )
        status = (
            InvoiceStatus.PENDING_REVIEW
            if closing.billee.review
            else settlement.status_for(figures.total, 0, due_date, today)
        )
        drafts.append(
            _Draft(
                closing=closing,
                rank=rank,
                since=since,
                until=until,
                line_count=line_count,
                figures=figures,
                issue_date=issue_date,
                due_date=due_date,
                status=status,
            )
        )
    return drafts


def _invoice_rows(drafts: list[_Draft], now: datetime) -> list[dict[str, Any]]:
    """Invoice rows for ``drafts``, each under a provisional number of its own that
    :func:`_number` replaces before the transaction ends (no one else ever sees it)."""
    return [
        {
            "customer_id": d.closing.billee.id,
            "owner_key": d.closing.billee.owner_key,
            "number": uuid4().hex,  # 32 characters, the column's width
            "kind": d.closing.kind,
            "currency": d.closing.billee.currency,
            "period_start": d.closing.period.start,
            "period_end": d.closing.period.end,
            "issue_date": d.issue_date,
            "due_date": d.due_date,
            "previous_balance": d.figures.previous_balance,
            "payments_in_period": d.figures.payments_in_period,
            "total": d.figures.total,
            "amount_paid": 0,
            "status": d.status,
            "created_at": now,
            "voided_at": None,
        }
        for d in drafts
    ]


async def _number(
    session: AsyncSession, drafts: list[_Draft], ids: list[int], never_charged: set[int]
) -> None:
    """Give the new invoices their numbers, per owner in draft order, in one UPDATE — which
    also marks those whose class never charges (see :func:`billing.collection.plan_attempts`).

    Taking a number locks the owner's sequence row until the transaction ends (so that no
    number is lost or given twice), which makes concurrent issuers — the bill run's batches
    on several workers — wait for one another; numbering last keeps that wait to the end of
    each transaction instead of all its writes.
    """
    numbered = []
    by_owner = groupby(
        sorted(zip(drafts, ids, strict=True), key=lambda p: p[0].closing.billee.owner_key),
        key=lambda p: p[0].closing.billee.owner_key,
    )
    for owner_key, owned in by_owner:
        pairs = list(owned)
        numbers = await next_invoice_numbers(session, owner_key, len(pairs))
        numbered += [
            (
                invoice_id,
                number,
                collection.NotCharged.CHARGING_OFF.value if invoice_id in never_charged else None,
            )
            for (_, invoice_id), number in zip(pairs, numbers, strict=True)
        ]
    invoices = table_of(Invoice)
    numbering = bulk.rows_table(
        session,
        "numbering",
        [("id", BigInteger()), ("number", String()), ("not_charged", String())],
        numbered,
    )
    await session.execute(
        update(invoices)
        .where(bulk.matching(invoices.c.id, numbering.c.id, ids))
        .values(number=numbering.c.number, not_charged_reason=numbering.c.not_charged)
    )


async def _attach_charges(session: AsyncSession, drafts: list[_Draft], ids: list[int]) -> None:
    """Point each invoice's charges at it — they are its lines — in one UPDATE over the
    drafts' spans (customer, since, until, invoice) as a table.

    The customer rows are locked, so the charges are those the drafts counted; the count is
    checked all the same: an invoice whose lines disagree with its total must never be
    committed.
    """
    spans = [
        (d.closing.billee.id, d.since, d.until, invoice_id)
        for d, invoice_id in zip(drafts, ids, strict=True)
        if d.line_count
    ]
    if not spans:
        return
    span = _span_table(session, spans, ("invoice_id", BigInteger()))
    charges = table_of(Charge)
    result = await session.execute(
        update(charges)
        .where(_within(charges, span, [customer_id for customer_id, *_ in spans]))
        .values(invoice_id=span.c.invoice_id)
    )
    expected = sum(d.line_count for d in drafts)
    if result.rowcount != expected:  # type: ignore[attr-defined]
        raise RuntimeError(f"invoiced {result.rowcount} charges, expected {expected}")  # type: ignore[attr-defined]


async def _customers_with_credit(session: AsyncSession, customer_ids: list[int]) -> list[int]:
    """Customers holding payment money not yet on an invoice: only they need apply_credit."""
    allocated = (
        select(func.coalesce(func.sum(PaymentAllocation.amount), 0))
        .where(PaymentAllocation.payment_id == Payment.id)
        .scalar_subquery()
    )
    rows = await session.scalars(
        select(Payment.customer_id)
        .distinct()
        .where(
            bulk.among(session, Payment.customer_id, customer_ids),
            Payment.status.in_(settlement.SETTLED_PAYMENT_STATUSES),
            Payment.amount - Payment.refunded_amount - allocated > 0,
        )
    )
    return list(rows.all())


async def _apply_existing_credit(
    session: AsyncSession, customer_ids: list[int], now: datetime
) -> None:
    """New invoices are paid from credit the customer already has, oldest invoice first."""
    credited = await _customers_with_credit(session, customer_ids)
    if credited:
        holders = await session.scalars(select(Customer).where(Customer.id.in_(credited)))
        for customer in holders.all():
            await settlement.apply_credit(session, customer, now)


async def issue_invoices(
    session: AsyncSession, closings: list[Closing], now: datetime
) -> list[int]:
    """Make one invoice per closing that is not empty (or whose class wants empty ones) and
    return their ids (set-based; see the module doc).

    Closings of one customer must come oldest period first.  The customers must be locked
    by the caller (``FOR UPDATE``), so that no charge or payment changes under the drafts.
    """
    if not closings:
        return []
    closings = sorted(closings, key=lambda c: c.billee.id)  # stable: each one's oldest first
    customer_ids = sorted({c.billee.id for c in closings})
    sums = await _uninvoiced_sums(session, closings)
    payments = await _settled_payments(
        session, customer_ids, min(c.period.start_utc(c.billee.time_zone) for c in closings)
    )
    drafts: list[_Draft] = []
    for customer_id, own in groupby(closings, key=lambda c: c.billee.id):
        drafts += _draft_customer(list(own), sums[customer_id], payments[customer_id], now)
    if not drafts:
        return []
    rows = _invoice_rows(drafts, now)
    invoices = table_of(Invoice)
    inserted = await session.execute(
        bulk.insert_from_rows(session, invoices, rows).returning(invoices.c.id, invoices.c.number)
    )
    by_number = {number: int(invoice_id) for invoice_id, number in inserted.all()}
    ids = [by_number[row["number"]] for row in rows]  # the provisional numbers are unique
    await _attach_charges(session, drafts, ids)
    await record_many(
        session,
        [
            Change(
                StatusSubject.INVOICE,
                invoice_id,
                d.closing.billee.id,
                None,
                d.status.value,
                Cause.ISSUED,
            )
            for d, invoice_id in zip(drafts, ids, strict=True)
        ],
        now,
    )
    await _apply_existing_credit(session, customer_ids, now)
    never_charged = set(await collection.plan_attempts(session, ids, now))
    unpaid = [d for d in drafts if d.status == InvoiceStatus.UNPAID]
    if unpaid:
        first_overdue = min(overdue_from(d.due_date, d.closing.billee.time_zone) for d in unpaid)
        await jobs.schedule(session, OVERDUE_JOB, first_overdue, unique_key=OVERDUE_JOB)
    await invoice_pdfs.schedule_pdf_rendering(session, now)
    await _number(session, drafts, ids, never_charged)
    return ids


async def close_period_out_of_turn(
    session: AsyncSession, viewer: Viewer, customer_id: int
) -> Invoice:
    """Invoice the open period now (staff only): every uninvoiced charge served up to today.

    The period's regular invoice is still made when the period ends, with the charges that
    come after this one.  Works for a CLOSED customer too: that is how a final invoice is made.
    """
    require_staff(viewer, write=True)
    customer = await customers.get_customer_for_update(session, viewer, customer_id)
    now = await clock.now(session)
    period = out_of_turn_period(customer.period_start, local_date(now, customer.time_zone))
    waiting = await session.scalar(
        select(func.count(Charge.id)).where(
            Charge.customer_id == customer.id,
            Charge.invoice_id.is_(None),
            Charge.status == ChargeStatus.POSTED,
            Charge.service_at < period.end_utc(customer.time_zone),
        )
    )
    if not waiting:
        raise UserError(
            "NOTHING_TO_INVOICE", "the customer has no uninvoiced charges", "customerId"
        )
    billee = billee_from_row(
        (
            await session.execute(
                billee_query(InvoiceKind.OUT_OF_TURN).where(Customer.id == customer.id)
            )
        ).one()
    )
    [invoice_id] = await issue_invoices(
        session, [Closing(billee, period, InvoiceKind.OUT_OF_TURN)], now
    )
    invoice = await session.get(Invoice, invoice_id)
    assert invoice is not None
    return invoice


# --- voiding ------------------------------------------------------------------------------


async def _reverse_charges(
    session: AsyncSession, customer: Customer, invoice: Invoice, reason: str, now: datetime
) -> None:
    """One VOID transaction taking the invoice's charges back: customer −, revenue +, per account."""
    per_account = (
        await session.execute(
            select(Charge.account_id, func.sum(Charge.amount))
            .where(
                Charge.customer_id == invoice.customer_id,
                Charge.invoice_id == invoice.id,
                Charge.status == ChargeStatus.POSTED,
            )
            .group_by(Charge.account_id)
            .order_by(Charge.account_id)
        )
    ).all()
    if not per_account:
        return
    revenue = await ledger.system_book(
        session, LedgerAccountKind.REVENUE, customer.reseller_id, invoice.currency
    )
    postings = []
    for account_id, amount in per_account:
        postings.append(
            ledger.Posting(customer.ledger_account_id, -int(amount), invoice.currency, account_id)
        )
        postings.append(ledger.Posting(revenue, int(amount), invoice.currency, account_id))
    await ledger.post(
        session,
        TransactionKind.VOID,
        postings,
        at=now,
        description=f"Void of invoice {invoice.number}: {reason}",
        customer_id=customer.id,
    )
    await session.execute(
        update(table_of(Charge))
        .where(
            table_of(Charge).c.customer_id == invoice.customer_id,
            table_of(Charge).c.invoice_id == invoice.id,
        )
        .values(status=ChargeStatus.VOIDED)
    )


async def void_invoice(
    session: AsyncSession, viewer: Viewer, invoice_id: int, reason: str
) -> Invoice:
    """Cancel an invoice (staff only): its charges are reversed and its payments become credit.

    The released credit is applied straight away to the customer's other open invoices.
    The voided invoice keeps its number and lines, so the numbering has no gap, and the
    reason, which its PDF prints.
    """
    require_staff(viewer, write=True)
    reason = validation.required_text(reason, "reason", 400)
    found = await get_invoice(session, viewer, invoice_id)
    customer = await customers.get_customer_for_update(session, viewer, found.customer_id)
    invoice = await session.get(Invoice, found.id, populate_existing=True)
    assert invoice is not None
    if invoice.status == InvoiceStatus.VOID:
        raise UserError("ALREADY_VOID", f"invoice {invoice.number} is already void", "id")
    now = await clock.now(session)
    await _reverse_charges(session, customer, invoice, reason, now)
    await settlement.release_invoice(session, invoice, now)
    await record(
        session,
        Change(
            StatusSubject.INVOICE,
            invoice.id,
            invoice.customer_id,
            invoice.status.value,
            InvoiceStatus.VOID.value,
            Cause.VOIDED,
            viewer.idempotency_scope,
        ),
        now,
    )
    await collection.cancel_pending(session, [invoice.id], collection.CancelReason.VOIDED, now)
    invoice.status = InvoiceStatus.VOID
    invoice.voided_at = now
    invoice.void_reason = reason
    await session.flush()
    await invoice_pdfs.schedule_pdf_rendering(session, now)
    await settlement.apply_credit(session, customer, now)
    return invoice


#: The most invoices one approveInvoices / voidInvoices call takes.
MAX_INVOICES_PER_BATCH = 500


def _batch_ids(invoice_ids: Sequence[int]) -> list[int]:
    """The ids in the order given, without repeats; at least one, at most the batch limit."""
    ids = list(dict.fromkeys(invoice_ids))
    if not ids:
        raise UserError("REQUIRED", "name at least one invoice", "ids")
    if len(ids) > MAX_INVOICES_PER_BATCH:
        raise UserError("TOO_MANY", f"at most {MAX_INVOICES_PER_BATCH} invoices at a time", "ids")
    return ids


async def void_invoices(
    session: AsyncSession, viewer: Viewer, invoice_ids: Sequence[int], reason: str
) -> list[Invoice]:
    """Void several invoices (staff only), all or none: see :func:`void_invoice`."""
    require_staff(viewer, write=True)
    voided = []
    for invoice_id in _batch_ids(invoice_ids):
        try:
            voided.append(await void_invoice(session, viewer, invoice_id, reason))
        except UserError as error:
            error.field = "ids" if error.field == "id" else error.field
            raise
    return voided


# --- review -------------------------------------------------------------------------------


async def approve_invoices(
    session: AsyncSession, viewer: Viewer, invoice_ids: Sequence[int]
) -> list[Invoice]:
    """Approve invoices waiting for review (staff only), all or none.

    Each takes the status its figures call for on the customer's local date (UNPAID, or
    OVERDUE when approved after its due date — the due date stays the one it was issued
    with), is paid from credit the customer already holds, and gets its card attempts
    planned now (:func:`billing.collection.plan_attempts`).
    """
    require_staff(viewer, write=True)
    ids = _batch_ids(invoice_ids)
    now = await clock.now(session)
    approved = []
    for invoice_id in ids:
        found = await get_invoice(session, viewer, invoice_id)
        customer = await customers.get_customer_for_update(session, viewer, found.customer_id)
        invoice = await session.get(Invoice, found.id, populate_existing=True)
        assert invoice is not None
        if invoice.status != InvoiceStatus.PENDING_REVIEW:
            raise UserError(
                "NOT_PENDING_REVIEW", f"invoice {invoice.number} is not waiting for review", "ids"
            )
        invoice.status = settlement.status_for(
            invoice.total,
            invoice.amount_paid,
            invoice.due_date,
            local_date(now, customer.time_zone),
        )
        await record(
            session,
            Change(
                StatusSubject.INVOICE,
                invoice.id,
                invoice.customer_id,
                InvoiceStatus.PENDING_REVIEW.value,
                invoice.status.value,
                Cause.APPROVED,
                viewer.idempotency_scope,
            ),
            now,
        )
        await session.flush()
        await settlement.apply_credit(session, customer, now)
        approved.append(invoice)
    await collection.mark_never_charged(
        session,
        await collection.plan_attempts(session, [invoice.id for invoice in approved], now),
    )
    await schedule_overdue_check(session)
    await dunning.schedule_suspension_check(session)
    await invoice_pdfs.schedule_pdf_rendering(session, now)
    for invoice in approved:
        await session.refresh(invoice)
    return approved


# --- overdue ------------------------------------------------------------------------------


async def mark_overdue(session: AsyncSession, now: datetime) -> None:
    """Flip unpaid invoices to OVERDUE where the customer's local date is past the due date.

    One UPDATE per time zone that has candidates: "today" differs by zone, not by invoice.
    No zone is more than a day ahead of UTC, so only invoices due by UTC today can qualify.
    """
    invoices = table_of(Invoice)
    unsettled = (
        invoices.c.status.in_(UNSETTLED_STATUSES),
        invoices.c.amount_paid < invoices.c.total,
    )
    zones = await session.scalars(
        select(Customer.time_zone)
        .distinct()
        .join(Invoice, Invoice.customer_id == Customer.id)
        .where(*unsettled, Invoice.due_date <= now.date())
    )
    for zone in zones.all():
        due = (
            *unsettled,
            invoices.c.due_date < local_date(now, zone),
            invoices.c.customer_id.in_(select(Customer.id).where(Customer.time_zone == zone)),
        )
        await _record_overdue(session, due, now)
        await session.execute(update(invoices).where(*due).values(status=InvoiceStatus.OVERDUE))


async def _record_overdue(session: AsyncSession, due: tuple[Any, ...], now: datetime) -> None:
    """Record the transitions :func:`mark_overdue` is about to make, in one INSERT … SELECT."""
    invoices = table_of(Invoice)
    await session.execute(
        insert(table_of(StatusChange)).from_select(
            ["subject", "subject_id", "customer_id", "from_status", "to_status", "at", "cause"],
            select(
                literal(StatusSubject.INVOICE.value),
                invoices.c.id,
                invoices.c.customer_id,
                invoices.c.status,
                literal(InvoiceStatus.OVERDUE.value),
                literal(now, table_of(StatusChange).c.at.type),
                literal(Cause.DUE_DATE_PASSED.value),
            ).where(*due),
        )
    )


async def schedule_overdue_check(session: AsyncSession) -> None:
    """Wake the overdue job at the earliest moment any unpaid invoice becomes overdue."""
    rows = (
        await session.execute(
            select(Customer.time_zone, func.min(Invoice.due_date))
            .join(Invoice, Invoice.customer_id == Customer.id)
            .where(Invoice.status.in_(UNSETTLED_STATUSES), Invoice.amount_paid < Invoice.total)
            .group_by(Customer.time_zone)
        )
    ).all()
    if rows:
        first = min(overdue_from(due_date, zone) for zone, due_date in rows)
        await jobs.schedule(session, OVERDUE_JOB, first, unique_key=OVERDUE_JOB)


@jobs.handler(OVERDUE_JOB)
async def overdue_job(session: AsyncSession, payload: dict[str, Any], now: datetime) -> None:
    """Idempotent: an invoice already OVERDUE (or paid meanwhile) is left alone."""
    await mark_overdue(session, now)
    await schedule_overdue_check(session)
    await dunning.schedule_suspension_check(session)
    await invoice_pdfs.schedule_pdf_rendering(session, now)


# --- reading ------------------------------------------------------------------------------


async def get_invoice(session: AsyncSession, viewer: Viewer, invoice_id: int) -> Invoice:
    """The invoice if the viewer may see its customer; anything else is NOT_FOUND."""
    invoice: Invoice | None = await session.scalar(
        invoice_query(viewer).where(Invoice.id == invoice_id)
    )
    if invoice is None:
        raise NotFound("invoice")
    return invoice


def invoice_query(
    viewer: Viewer,
    customer_id: int | None = None,
    status: InvoiceStatus | None = None,
    issued_from: date | None = None,
    issued_to: date | None = None,
) -> Select:  # type: ignore[type-arg]
    """Invoices the viewer may see, by customer, status and issue dates (both inclusive)."""
    query = visible(Invoice, viewer)
    if customer_id is not None:
        query = query.where(Invoice.customer_id == customer_id)
    if status is not None:
        query = query.where(Invoice.status == status)
    if issued_from is not None:
        query = query.where(Invoice.issue_date >= issued_from)
    if issued_to is not None:
        query = query.where(Invoice.issue_date <= issued_to)
    return query


async def invoice_lines(
    session: AsyncSession, invoice_ids: Sequence[int]
) -> dict[int, list[Charge]]:
    """The lines of many invoices — their charges — in one query (for DataLoaders), in
    service order.

    Joining the invoice gives its customer, so the charges' (customer, invoice) index finds
    them: no index of its own on ``charges.invoice_id`` for every charge write to keep up.
    """
    lines: dict[int, list[Charge]] = {invoice_id: [] for invoice_id in invoice_ids}
    for chunk in _chunks(list(invoice_ids), _IDS_PER_STATEMENT):
        rows = await session.scalars(
            select(Charge)
            .join(
                Invoice,
                (Invoice.customer_id == Charge.customer_id) & (Invoice.id == Charge.invoice_id),
            )
            .where(Invoice.id.in_(chunk))
            .order_by(Charge.invoice_id, Charge.service_at, Charge.id)
        )
        for line in rows.all():
            assert line.invoice_id is not None
            lines[line.invoice_id].append(line)
    return lines


async def payments_for_invoice(session: AsyncSession, invoice_id: int) -> list[tuple[Payment, int]]:
    """The payments that (still) pay ``invoice_id`` and how much of each, oldest first.

    The caller has already authorised the invoice (see :func:`get_invoice`).
    """
    on_invoice = func.sum(PaymentAllocation.amount)
    rows = await session.execute(
        select(Payment, on_invoice)
        .join(PaymentAllocation, PaymentAllocation.payment_id == Payment.id)
        .where(PaymentAllocation.invoice_id == invoice_id)
        .group_by(Payment.id)
        .having(on_invoice > 0)
        .order_by(Payment.received_at, Payment.id)
    )
    return [(payment, int(amount)) for payment, amount in rows.all()]


def _chunks(items: list[_T], size: int) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- integrity ----------------------------------------------------------------------------


async def misfiled_charges(session: AsyncSession) -> list[tuple[int, int]]:
    """Invoiced charges whose invoice does not exist or is another customer's, as (charge,
    invoice) — empty when healthy.  ``kassa check`` runs it: ``charges.invoice_id`` has no
    foreign key (migration 0027), and this proves more than one would."""
    rows = await session.execute(
        select(Charge.id, Charge.invoice_id)
        .outerjoin(Invoice, Invoice.id == Charge.invoice_id)
        .where(
            Charge.invoice_id.is_not(None),
            or_(Invoice.id.is_(None), Invoice.customer_id != Charge.customer_id),
        )
        .order_by(Charge.id)
    )
    return [(charge, invoice) for charge, invoice in rows if invoice is not None]
