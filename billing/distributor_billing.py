"""Distributor billing: closing each distributor's billing period in its own time zone, its
invoice for the period, and the statistics e-mail to its accounting address.

A distributor's period ends at local midnight of the period's end in its zone, exactly as
a customer's does (:func:`billing.billrun.elapsed_periods` on the same
:mod:`billing.periods` rules).  Closing it makes a :class:`~billing.models.DistributorInvoice`:
what the distributor owed before the period, the period's movements of its book by kind
(sales and collections with their gross, commission and net; reversals; payments to the
provider; anything else), and the balance it owes the provider as of the period's end.
The invoice moves no money — every movement was booked when it happened — so its figures
are read from the ledger and reconcile by construction::

    balance_due = previous_balance + sales net + collections net + reversals net
                  − payments + other

It is due after its class's payment terms (no class: 14 days), like a customer invoice
(:func:`billing.invoices.invoice_dates`), and is PAID once the distributor's payments to the
provider since the period's end reach its balance due (:func:`settle`); a balance due of
zero or less is PAID at once.  Its number comes from its owner's invoice sequence.

The statistics e-mail goes with it, through the outbox, as the distributor's
``statistics_email`` says: SUMMARY (the figures), FULL_WITH_CSV (the figures and the
period's transactions as CSV, the export of :func:`billing.distributors.transactions_csv`),
NONE (nothing).  Its dedupe key names the invoice, so a period is mailed once.

Exactly once: the distributor's row is locked and re-read, its open period moves on in the
same transaction as its invoices, and ``uq_distributor_invoices_period`` refuses a second
invoice for a period, so a second or concurrent run finds nothing to do.  One distributor
never stops the others (:mod:`billing.run_failures`, kind ``DISTRIBUTOR_BILLING``): its work
is rolled back, recorded and retried after a backoff.  Distributors are few (hundreds, not
the customers' hundreds of thousands), so each is closed on its own rather than set-based.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

# ``distributors`` as a module: it wakes this job and settles these invoices, so it imports
# this module, and its names are read when they are used.
from billing import (
    billrun,
    collection,
    commissions,
    distributors,
    invoices,
    jobs,
    ledger,
    notifications,
    run_failures,
)
from billing.errors import UserError
from billing.models import (
    CollectionSettings,
    CustomerClass,
    Distributor,
    DistributorInvoice,
    DistributorInvoiceStatus,
    InvoiceKind,
    LedgerEntry,
    LedgerTransaction,
    RunFailure,
    RunKind,
    StatisticsEmail,
    TransactionKind,
    table_of,
)
from billing.money import format_amount
from billing.periods import Period, local_date

log = logging.getLogger("kassa.billing.distributor_billing")

#: The singleton job that closes distributors' periods (:func:`distributor_billing_job`).
DISTRIBUTOR_BILLING_JOB = "distributor_billing"
#: Distributors read per batch of the work list.
BATCH_SIZE = 100


# --- the figures --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Movement:
    """What changed hands with end users (``gross``), what the distributor kept, what it owes."""

    gross: int = 0
    commission: int = 0

    @property
    def net(self) -> int:
        return self.gross - self.commission


@dataclass(frozen=True, slots=True)
class Figures:
    """A period's figures, in minor units of the distributor's currency."""

    previous_balance: int
    sales: Movement
    collections: Movement
    reversals: Movement
    #: Paid to the provider (positive: it lowered the balance).
    payments: int
    #: Any other movement of the book, as it moved the balance.
    other: int

    @property
    def balance_due(self) -> int:
        return (
            self.previous_balance
            + self.sales.net
            + self.collections.net
            + self.reversals.net
            - self.payments
            + self.other
        )


async def balance_before(session: AsyncSession, distributor: Distributor, at: datetime) -> int:
    """The distributor's balance just before ``at``: the sum of its book's earlier entries."""
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(
            LedgerEntry.ledger_account_id == distributor.ledger_account_id,
            LedgerTransaction.created_at < at,
        )
    )
    return int(total or 0)


async def period_figures(
    session: AsyncSession, distributor: Distributor, period: Period
) -> Figures:
    """The figures of ``period`` (local days in the distributor's zone), from the same rows
    as its transaction list and CSV, so the three always agree."""
    starts = period.start_utc(distributor.time_zone)
    ends = period.end_utc(distributor.time_zone)
    rows = distributors.transaction_query(distributor, since=starts, until=ends).subquery()
    by_kind: dict[distributors.DistributorTransactionKind, Movement] = {}
    for ledger_kind, amount, commission in (
        await session.execute(
            select(rows.c.kind, func.sum(rows.c.amount), func.sum(rows.c.commission)).group_by(
                rows.c.kind
            )
        )
    ).all():
        kind = distributors.kind_of(ledger_kind)
        seen = by_kind.get(kind, Movement())
        by_kind[kind] = Movement(
            seen.gross + int(amount) + int(commission), seen.commission + int(commission)
        )
    kinds = distributors.DistributorTransactionKind
    moved = Movement()
    return Figures(
        previous_balance=await balance_before(session, distributor, starts),
        sales=by_kind.get(kinds.SALE, moved),
        collections=by_kind.get(kinds.COLLECTION, moved),
        reversals=by_kind.get(kinds.REVERSAL, moved),
        payments=-by_kind.get(kinds.PAYMENT_TO_PROVIDER, moved).net,
        other=by_kind.get(kinds.ADJUSTMENT, moved).net,
    )


def figures_of(invoice: DistributorInvoice) -> Figures:
    """The figures an invoice was issued with."""
    return Figures(
        previous_balance=invoice.previous_balance,
        sales=Movement(invoice.sales_gross, invoice.sales_commission),
        collections=Movement(invoice.collections_gross, invoice.collections_commission),
        reversals=Movement(invoice.reversals_gross, invoice.reversals_commission),
        payments=invoice.payments,
        other=invoice.other,
    )


async def payment_terms(session: AsyncSession, distributor: Distributor) -> int:
    """The net days of the distributor's invoices: its class's terms for regular invoices
    (:func:`billing.collection.payment_terms`; no class: the default)."""
    if distributor.class_id is None:
        return collection.payment_terms(None, None)
    row = (
        await session.execute(
            select(CustomerClass.payment_terms_days, CollectionSettings.payment_terms_days)
            .outerjoin(
                CollectionSettings,
                (CollectionSettings.class_id == CustomerClass.id)
                & (CollectionSettings.invoice_kind == InvoiceKind.REGULAR),
            )
            .where(CustomerClass.id == distributor.class_id)
        )
    ).one()
    return collection.payment_terms(row[0], row[1])


# --- closing ------------------------------------------------------------------------------


async def _issue(
    session: AsyncSession, distributor: Distributor, period: Period, terms: int, now: datetime
) -> DistributorInvoice:
    """The invoice of one ended period, numbered from its owner's sequence."""
    figures = await period_figures(session, distributor, period)
    owner_key = ledger.system_owner_key(distributor.reseller_id)
    [number] = await invoices.next_invoice_numbers(session, owner_key, 1)
    issue_date, due_date = invoices.invoice_dates(
        period, local_date(now, distributor.time_zone), terms
    )
    invoice = DistributorInvoice(
        distributor_id=distributor.id,
        owner_key=owner_key,
        number=number,
        currency=distributor.currency,
        time_zone=distributor.time_zone,
        period_start=period.start,
        period_end=period.end,
        closed_at=period.end_utc(distributor.time_zone),
        issue_date=issue_date,
        due_date=due_date,
        previous_balance=figures.previous_balance,
        sales_gross=figures.sales.gross,
        sales_commission=figures.sales.commission,
        collections_gross=figures.collections.gross,
        collections_commission=figures.collections.commission,
        reversals_gross=figures.reversals.gross,
        reversals_commission=figures.reversals.commission,
        payments=figures.payments,
        other=figures.other,
        balance_due=figures.balance_due,
        status=DistributorInvoiceStatus.OPEN,
        created_at=now,
    )
    session.add(invoice)
    await session.flush()
    return invoice


async def close_periods(session: AsyncSession, distributor_id: int, now: datetime) -> int:
    """Invoice every period of the distributor that has ended by ``now`` (oldest first),
    mail their statistics, and move it on to its open period; returns the invoices made.

    The row is locked and re-read first: a run that finds the period already moved on (an
    earlier or concurrent run closed it) does nothing.
    """
    distributor = await commissions.lock_distributor(session, distributor_id)
    if distributor.next_bill_at > now:
        return 0
    ended, open_period = billrun.elapsed_periods(
        distributor.billing_period,
        distributor.billing_anchor,
        distributor.period_start,
        distributor.time_zone,
        now,
    )
    terms = await payment_terms(session, distributor)
    issued = [await _issue(session, distributor, period, terms, now) for period in ended]
    distributor.period_start = open_period.start
    distributor.next_bill_at = open_period.end_utc(distributor.time_zone)
    distributor.updated_at = now
    await settle(session, distributor, now)
    drafts = [await statistics_mail(session, distributor, invoice) for invoice in issued]
    if await notifications.write_outbox(session, [d for d in drafts if d is not None], now):
        await notifications.schedule_sending(session, now)
    await session.flush()
    return len(issued)


async def settle(session: AsyncSession, distributor: Distributor, now: datetime) -> None:
    """Mark PAID the distributor's OPEN invoices whose balance due its payments to the
    provider since their period's end now reach (or that had nothing due).

    Each invoice's balance due includes the unpaid balance of the ones before it, so paying
    a later invoice's balance pays the earlier ones too.  Called after the distributor
    pays and after invoices are issued (a late run may find them paid already).
    """
    table = table_of(DistributorInvoice)
    paid_since = (
        select(func.coalesce(func.sum(-LedgerEntry.amount), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(
            LedgerEntry.ledger_account_id == distributor.ledger_account_id,
            LedgerTransaction.kind == TransactionKind.DISTRIBUTOR_PAYMENT,
            LedgerTransaction.created_at >= table.c.closed_at,
        )
        .scalar_subquery()
    )
    await session.execute(
        update(table)
        .where(
            table.c.distributor_id == distributor.id,
            table.c.status == DistributorInvoiceStatus.OPEN,
            table.c.balance_due <= paid_since,
        )
        .values(status=DistributorInvoiceStatus.PAID, paid_at=now)
        .execution_options(synchronize_session=False)
    )


# --- the statistics e-mail ----------------------------------------------------------------


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows as text: the label left-aligned, the figures right-aligned in their columns."""
    widths = [max(len(row[i]) for row in rows if len(row) > i) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(widths[i + 1]) for i, cell in enumerate(row[1:])]
        lines.append("  ".join(cells).rstrip())
    return lines


def statistics_text(
    distributor: Distributor, invoice: DistributorInvoice, attachment: str | None
) -> str:
    """The statistics e-mail's plain-text body: the invoice's figures, and what is attached."""
    figures = figures_of(invoice)
    currency = invoice.currency

    def money(amount: int) -> str:
        return format_amount(amount, currency)

    def movement(label: str, moved: Movement) -> tuple[str, ...]:
        return (label, money(moved.gross), money(moved.commission), money(moved.net))

    last_day = invoice.period_end - timedelta(days=1)
    rows: list[tuple[str, ...]] = [
        ("", "Gross", "Commission", f"Net ({currency})"),
        ("Previous balance", "", "", money(figures.previous_balance)),
        movement("Sales", figures.sales),
        movement("Collections", figures.collections),
    ]
    if figures.reversals != Movement():
        rows.append(movement("Reversals", figures.reversals))
    rows.append(("Payments to us", "", "", money(-figures.payments)))
    if figures.other:
        rows.append(("Other movements", "", "", money(figures.other)))
    rows.append(("Balance due", "", "", money(figures.balance_due)))
    commission = figures.sales.commission + figures.collections.commission
    commission += figures.reversals.commission
    if figures.balance_due > 0:
        due = f"Please pay {money(figures.balance_due)} {currency} by {invoice.due_date}."
    else:
        due = f"Nothing is due: you hold {money(-figures.balance_due)} {currency} in credit."
    body = [
        f"Dear {distributor.name},",
        "",
        f"here is invoice {invoice.number} for your billing period {invoice.period_start} "
        f"to {last_day} ({invoice.time_zone} time).",
        "",
        *_table(rows),
        "",
        f"You earned {money(commission)} {currency} in commission this period. {due}",
    ]
    if attachment is not None:
        body += ["", f"The period's transactions are attached ({attachment})."]
    return "\n".join(body) + "\n"


async def statistics_mail(
    session: AsyncSession, distributor: Distributor, invoice: DistributorInvoice
) -> notifications.Draft | None:
    """The statistics e-mail the distributor asked for, if any (and it has an address).

    A transaction list too long for one export (:data:`billing.distributors.MAX_CSV_ROWS`)
    is not attached; the mail says so, and the list can be exported in parts by date.
    """
    mode = distributor.statistics_email
    if mode == StatisticsEmail.NONE or not distributor.accounting_email:
        return None
    name = content = None
    note = ""
    if mode == StatisticsEmail.FULL_WITH_CSV:
        try:
            csv = await distributors.transactions_csv(
                session,
                distributor,
                since=Period(invoice.period_start, invoice.period_end).start_utc(invoice.time_zone),
                until=invoice.closed_at,
            )
        except UserError as error:
            if error.code != "TOO_MANY_ROWS":
                raise
            note = (
                f"\nThe period has more than {distributors.MAX_CSV_ROWS} transactions, too "
                "many to attach: export them from your portal a few days at a time.\n"
            )
        else:
            name, content = f"transactions-{invoice.number}.csv", csv.encode()
    return notifications.Draft(
        dedupe_key=f"distributor-invoice:{invoice.id}",
        customer_id=None,
        to=distributor.accounting_email,
        subject=f"{distributor.name}: invoice {invoice.number}, "
        f"{format_amount(invoice.balance_due, invoice.currency)} {invoice.currency} due",
        body=statistics_text(distributor, invoice, name) + note,
        attachment_name=name,
        attachment=content,
    )


# --- the job ------------------------------------------------------------------------------


def _not_waiting(now: datetime) -> Any:
    """Distributors that are not waiting for the retry of an earlier failure."""
    return ~run_failures.waiting(RunKind.DISTRIBUTOR_BILLING, now, Distributor.id)


async def wake_at(session: AsyncSession, at: datetime) -> None:
    """Have distributor billing wake by ``at`` (a distributor's open period ends then)."""
    await jobs.schedule(session, DISTRIBUTOR_BILLING_JOB, at, unique_key=DISTRIBUTOR_BILLING_JOB)


async def run_distributor_billing(session: AsyncSession, now: datetime) -> int:
    """Close every distributor period that has ended by ``now``; returns the invoices made.

    A distributor whose closing fails is skipped, recorded and retried later; then the job
    is woken for the earliest open period's end or retry."""
    issued = 0
    after_id = 0
    while ids := list(
        await session.scalars(
            select(Distributor.id)
            .where(Distributor.next_bill_at <= now, Distributor.id > after_id, _not_waiting(now))
            .order_by(Distributor.id)
            .limit(BATCH_SIZE)
        )
    ):
        after_id = ids[-1]

        async def close(chunk: Sequence[int]) -> int:
            return sum([await close_periods(session, pk, now) for pk in chunk])

        closed = await run_failures.isolate(
            session,
            RunKind.DISTRIBUTOR_BILLING,
            ids,
            lambda pk: run_failures.Subject(None, distributor_id=pk),
            close,
            now,
            log,
        )
        issued += sum(closed.results)
    first = await session.scalar(
        select(func.min(Distributor.next_bill_at)).where(_not_waiting(now))
    )
    retry = await run_failures.next_retry_at(session, RunKind.DISTRIBUTOR_BILLING, now)
    wake = min((at for at in (first, retry) if at is not None), default=None)
    if wake is not None:
        await wake_at(session, wake)
    return issued


@jobs.handler(DISTRIBUTOR_BILLING_JOB)
async def distributor_billing_job(
    session: AsyncSession, payload: dict[str, Any], now: datetime
) -> None:
    """The singleton ``distributor_billing`` job: idempotent, as closed periods move on."""
    await run_distributor_billing(session, now)


# --- reading ------------------------------------------------------------------------------


def invoice_query(distributor: Distributor) -> Select[DistributorInvoice]:
    """The distributor's invoices (the caller has already been allowed to see it)."""
    return select(DistributorInvoice).where(DistributorInvoice.distributor_id == distributor.id)


async def open_failure(session: AsyncSession, distributor: Distributor) -> RunFailure | None:
    """Why the distributor's last period could not be closed, while that is unresolved."""
    return await session.scalar(
        select(RunFailure).where(
            RunFailure.kind == RunKind.DISTRIBUTOR_BILLING,
            RunFailure.distributor_id == distributor.id,
            RunFailure.resolved_at.is_(None),
        )
    )
