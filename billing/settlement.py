"""How payments settle invoices: credit is applied to open invoices oldest first.

A payment's *unapplied* part is its amount, less what was refunded, less what is allocated
to invoices.  Whenever money or invoices change (a payment, a new invoice, a refund, a void),
:func:`apply_credit` matches unapplied payments (oldest first) with outstanding invoices
(oldest first).  Allocations are never edited: taking money back off an invoice is a
negative allocation row.  The invoice status follows from its figures and the customer's
local date (:func:`status_for`).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import collection, dunning, invoice_pdfs
from billing.models import (
    Customer,
    CustomerStatus,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAllocation,
    PaymentStatus,
    StatusSubject,
    table_of,
)
from billing.periods import local_date
from billing.status_changes import Cause, Change, record, record_many

#: Payments whose money (less refunds) counts as the customer's.
SETTLED_PAYMENT_STATUSES = (
    PaymentStatus.COMPLETED,
    PaymentStatus.PARTIALLY_REFUNDED,
    PaymentStatus.REFUNDED,
)


def status_for(total: int, amount_paid: int, due_date: date, today: date) -> InvoiceStatus:
    """UNPAID → PARTIALLY_PAID → PAID; past the due date with money outstanding → OVERDUE."""
    if amount_paid >= total:
        return InvoiceStatus.PAID
    if today > due_date:
        return InvoiceStatus.OVERDUE
    if amount_paid > 0:
        return InvoiceStatus.PARTIALLY_PAID
    return InvoiceStatus.UNPAID


async def refresh_status(
    session: AsyncSession,
    invoice: Invoice,
    now: datetime,
    today: date,
    cause: Cause,
    detail: str | None = None,
) -> None:
    """Set the status the invoice's figures call for; record the transition and, once PAID,
    cancel the card attempts still planned for it.

    A VOID invoice stays void and one waiting for review stays there: payments do not reach
    it (see :func:`open_invoices`), and approving it sets its status.
    """
    if invoice.status in (InvoiceStatus.VOID, InvoiceStatus.PENDING_REVIEW):
        return
    before = invoice.status
    invoice.status = status_for(invoice.total, invoice.amount_paid, invoice.due_date, today)
    if invoice.status == before:
        return
    await record(
        session,
        Change(
            StatusSubject.INVOICE,
            invoice.id,
            invoice.customer_id,
            before.value,
            invoice.status.value,
            cause,
            detail,
        ),
        now,
    )
    if invoice.status == InvoiceStatus.PAID:
        await collection.cancel_pending(session, [invoice.id], collection.CancelReason.PAID, now)


async def _allocated_by_payment(session: AsyncSession, payment_ids: list[int]) -> dict[int, int]:
    if not payment_ids:
        return {}
    rows = await session.execute(
        select(PaymentAllocation.payment_id, func.sum(PaymentAllocation.amount))
        .where(PaymentAllocation.payment_id.in_(payment_ids))
        .group_by(PaymentAllocation.payment_id)
    )
    return {int(pid): int(total) for pid, total in rows.all()}


async def unapplied_payments(session: AsyncSession, customer_id: int) -> list[tuple[Payment, int]]:
    """Payments with money not yet on an invoice, oldest first, with that amount."""
    payments = (
        await session.scalars(
            select(Payment)
            .where(Payment.customer_id == customer_id, Payment.status.in_(SETTLED_PAYMENT_STATUSES))
            .order_by(Payment.received_at, Payment.id)
        )
    ).all()
    allocated = await _allocated_by_payment(session, [p.id for p in payments])
    result = []
    for payment in payments:
        free = payment.amount - payment.refunded_amount - allocated.get(payment.id, 0)
        if free > 0:
            result.append((payment, free))
    return result


async def open_invoices(session: AsyncSession, customer_id: int) -> list[Invoice]:
    return list(
        (
            await session.scalars(
                select(Invoice)
                .where(
                    Invoice.customer_id == customer_id,
                    Invoice.status.not_in(
                        [InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.PENDING_REVIEW]
                    ),
                    Invoice.amount_paid < Invoice.total,
                )
                .order_by(Invoice.issue_date, Invoice.id)
            )
        ).all()
    )


async def _allocate(
    session: AsyncSession,
    payment: Payment,
    invoice: Invoice,
    amount: int,
    now: datetime,
    today: date,
) -> None:
    """Put ``amount`` of ``payment`` on ``invoice`` (a new allocation row, never an edit)."""
    session.add(
        PaymentAllocation(
            payment_id=payment.id, invoice_id=invoice.id, amount=amount, created_at=now
        )
    )
    invoice.amount_paid += amount
    await refresh_status(session, invoice, now, today, Cause.PAYMENT, f"payment:{payment.id}")


async def apply_to_invoice(
    session: AsyncSession, payment: Payment, invoice: Invoice, now: datetime, time_zone: str
) -> None:
    """Put as much of ``payment``'s unapplied money as ``invoice`` still needs onto it.

    A payment made *for* an invoice (a customer paying it by card) goes there first, even
    when older invoices are open; :func:`apply_credit` then spreads the rest oldest first.
    """
    allocated = (await _allocated_by_payment(session, [payment.id])).get(payment.id, 0)
    free = payment.amount - payment.refunded_amount - allocated
    take = 0 if invoice.status == InvoiceStatus.PENDING_REVIEW else min(free, invoice.outstanding)
    if take > 0:
        await _allocate(session, payment, invoice, take, now, local_date(now, time_zone))
        await session.flush()
        await invoice_pdfs.schedule_pdf_rendering(session, now)


async def apply_credit(session: AsyncSession, customer: Customer, now: datetime) -> None:
    """Allocate every unapplied payment to outstanding invoices, oldest to oldest."""
    invoices = await open_invoices(session, customer.id)
    if not invoices:
        await dunning.reinstate_if_settled(session, customer, now)
        return
    today = local_date(now, customer.time_zone)
    payments = await unapplied_payments(session, customer.id)
    invoice_iter = iter(invoices)
    invoice = next(invoice_iter, None)
    for payment, free in payments:
        while free > 0 and invoice is not None:
            take = min(free, invoice.total - invoice.amount_paid)
            await _allocate(session, payment, invoice, take, now, today)
            free -= take
            if invoice.amount_paid >= invoice.total:
                invoice = next(invoice_iter, None)
        if invoice is None:
            break
    await session.flush()
    await dunning.reinstate_if_settled(session, customer, now)
    if payments:  # credit and open invoices: something was allocated
        await invoice_pdfs.schedule_pdf_rendering(session, now)


async def release_payment(
    session: AsyncSession, payment: Payment, amount: int, now: datetime, time_zone: str
) -> None:
    """Take up to ``amount`` of ``payment`` back off its invoices, newest invoice first.

    Used when a payment is refunded or voided: the invoices it paid become open again.
    Only what is not still unapplied needs releasing.
    """
    allocated = (await _allocated_by_payment(session, [payment.id])).get(payment.id, 0)
    unapplied = payment.amount - payment.refunded_amount - allocated
    to_release = amount - max(unapplied, 0)
    if to_release <= 0:
        return
    rows = await session.execute(
        select(PaymentAllocation.invoice_id, func.sum(PaymentAllocation.amount))
        .where(PaymentAllocation.payment_id == payment.id)
        .group_by(PaymentAllocation.invoice_id)
        .having(func.sum(PaymentAllocation.amount) > 0)
        .order_by(PaymentAllocation.invoice_id.desc())
    )
    today = local_date(now, time_zone)
    for invoice_id, on_invoice in rows.all():
        if to_release <= 0:
            break
        take = min(int(on_invoice), to_release)
        invoice = await session.get(Invoice, invoice_id)
        assert invoice is not None
        session.add(
            PaymentAllocation(
                payment_id=payment.id, invoice_id=invoice_id, amount=-take, created_at=now
            )
        )
        invoice.amount_paid -= take
        await refresh_status(
            session, invoice, now, today, Cause.PAYMENT_RELEASED, f"payment:{payment.id}"
        )
        to_release -= take
    await session.flush()
    await invoice_pdfs.schedule_pdf_rendering(session, now)


async def release_invoice(session: AsyncSession, invoice: Invoice, now: datetime) -> None:
    """Return every payment on ``invoice`` to credit (the invoice is being voided)."""
    rows = await session.execute(
        select(PaymentAllocation.payment_id, func.sum(PaymentAllocation.amount))
        .where(PaymentAllocation.invoice_id == invoice.id)
        .group_by(PaymentAllocation.payment_id)
        .having(func.sum(PaymentAllocation.amount) > 0)
    )
    for payment_id, on_invoice in rows.all():
        session.add(
            PaymentAllocation(
                payment_id=payment_id,
                invoice_id=invoice.id,
                amount=-int(on_invoice),
                created_at=now,
            )
        )
    invoice.amount_paid = 0
    await session.flush()


async def settle_payments(
    session: AsyncSession, payments: list[tuple[int, int, int]], now: datetime
) -> set[int]:
    """Put new payments on the invoices they were made for, set-based (the collection run).

    ``payments`` are (payment id, invoice id, amount).  Like :func:`apply_to_invoice` for
    each, in a handful of statements: one read of the invoices, one INSERT of allocations,
    one executemany of the invoices' figures and statuses, the transitions, and the
    attempts of invoices now PAID canceled.  Returns the customers :func:`apply_credit` must
    still see: those with money left over (the invoice needed less, or is void) and those
    suspended, who may be due reinstatement.  The caller holds the customers' locks.
    """
    invoice_ids = sorted({invoice_id for _, invoice_id, _ in payments})
    rows = {
        row.id: row
        for row in (
            await session.execute(
                select(
                    Invoice.id,
                    Invoice.customer_id,
                    Invoice.status,
                    Invoice.total,
                    Invoice.amount_paid,
                    Invoice.due_date,
                    Customer.time_zone,
                    Customer.status.label("customer_status"),
                )
                .join(Customer, Customer.id == Invoice.customer_id)
                .where(Invoice.id.in_(invoice_ids))
            )
        ).all()
    }
    paid = {invoice_id: rows[invoice_id].amount_paid for invoice_id in invoice_ids}
    allocations, changes, revisit = [], [], set()
    last_payment: dict[int, int] = {}
    for payment_id, invoice_id, amount in payments:
        row = rows[invoice_id]
        last_payment[invoice_id] = payment_id
        open_ = row.status not in (
            InvoiceStatus.VOID,
            InvoiceStatus.PENDING_REVIEW,
            InvoiceStatus.PAID,
        )
        take = min(amount, row.total - paid[invoice_id]) if open_ else 0
        if take > 0:
            allocations.append(
                {
                    "payment_id": payment_id,
                    "invoice_id": invoice_id,
                    "amount": take,
                    "created_at": now,
                }
            )
            paid[invoice_id] += take
        if take < amount or row.customer_status == CustomerStatus.SUSPENDED:
            revisit.add(row.customer_id)
    if allocations:
        await session.execute(insert(PaymentAllocation), allocations)
    updates, now_paid = [], []
    for invoice_id in invoice_ids:
        row = rows[invoice_id]
        if paid[invoice_id] == row.amount_paid:
            continue
        status = status_for(
            row.total, paid[invoice_id], row.due_date, local_date(now, row.time_zone)
        )
        updates.append({"b_id": invoice_id, "b_paid": paid[invoice_id], "b_status": status})
        if status != row.status:
            changes.append(
                Change(
                    StatusSubject.INVOICE,
                    invoice_id,
                    row.customer_id,
                    row.status.value,
                    status.value,
                    Cause.PAYMENT,
                    f"payment:{last_payment[invoice_id]}",
                )
            )
        if status == InvoiceStatus.PAID:
            now_paid.append(invoice_id)
    if updates:
        table = table_of(Invoice)
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(amount_paid=bindparam("b_paid"), status=bindparam("b_status")),
            updates,
        )
        await record_many(session, changes, now)
        await collection.cancel_pending(session, now_paid, collection.CancelReason.PAID, now)
        await invoice_pdfs.schedule_pdf_rendering(session, now)
    return revisit
