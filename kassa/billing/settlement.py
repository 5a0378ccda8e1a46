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

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kassa.billing.models import (
    Customer,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAllocation,
    PaymentStatus,
)
from kassa.billing.periods import local_date

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


def refresh_status(invoice: Invoice, today: date) -> None:
    if invoice.status != InvoiceStatus.VOID:
        invoice.status = status_for(invoice.total, invoice.amount_paid, invoice.due_date, today)


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
            .where(Payment.customer_id == customer_id,
                   Payment.status.in_(SETTLED_PAYMENT_STATUSES))
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
                .where(Invoice.customer_id == customer_id,
                       Invoice.status.not_in([InvoiceStatus.PAID, InvoiceStatus.VOID]),
                       Invoice.amount_paid < Invoice.total)
                .order_by(Invoice.issue_date, Invoice.id)
            )
        ).all()
    )


def _allocate(session: AsyncSession, payment: Payment, invoice: Invoice, amount: int,
              now: datetime, today: date) -> None:
    """Put ``amount`` of ``payment`` on ``invoice`` (a new allocation row, never an edit)."""
    session.add(PaymentAllocation(payment_id=payment.id, invoice_id=invoice.id,
                                  amount=amount, created_at=now))
    invoice.amount_paid += amount
    refresh_status(invoice, today)


async def apply_to_invoice(session: AsyncSession, payment: Payment, invoice: Invoice,
                           now: datetime, time_zone: str) -> None:
    """Put as much of ``payment``'s unapplied money as ``invoice`` still needs onto it.

    A payment made *for* an invoice (a customer paying it by card) goes there first, even
    when older invoices are open; :func:`apply_credit` then spreads the rest oldest first.
    """
    allocated = (await _allocated_by_payment(session, [payment.id])).get(payment.id, 0)
    free = payment.amount - payment.refunded_amount - allocated
    take = min(free, invoice.outstanding)
    if take > 0:
        _allocate(session, payment, invoice, take, now, local_date(now, time_zone))
        await session.flush()


async def apply_credit(session: AsyncSession, customer: Customer, now: datetime) -> None:
    """Allocate every unapplied payment to outstanding invoices, oldest to oldest."""
    invoices = await open_invoices(session, customer.id)
    if not invoices:
        return
    today = local_date(now, customer.time_zone)
    payments = await unapplied_payments(session, customer.id)
    invoice_iter = iter(invoices)
    invoice = next(invoice_iter, None)
    for payment, free in payments:
        while free > 0 and invoice is not None:
            take = min(free, invoice.total - invoice.amount_paid)
            _allocate(session, payment, invoice, take, now, today)
            free -= take
            if invoice.amount_paid >= invoice.total:
                invoice = next(invoice_iter, None)
        if invoice is None:
            break
    await session.flush()


async def release_payment(session: AsyncSession, payment: Payment, amount: int,
                          now: datetime, time_zone: str) -> None:
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
        session.add(PaymentAllocation(payment_id=payment.id, invoice_id=invoice_id,
                                      amount=-take, created_at=now))
        invoice.amount_paid -= take
        refresh_status(invoice, today)
        to_release -= take
    await session.flush()


async def release_invoice(session: AsyncSession, invoice: Invoice, now: datetime) -> None:
    """Return every payment on ``invoice`` to credit (the invoice is being voided)."""
    rows = await session.execute(
        select(PaymentAllocation.payment_id, func.sum(PaymentAllocation.amount))
        .where(PaymentAllocation.invoice_id == invoice.id)
        .group_by(PaymentAllocation.payment_id)
        .having(func.sum(PaymentAllocation.amount) > 0)
    )
    for payment_id, on_invoice in rows.all():
        session.add(PaymentAllocation(payment_id=payment_id, invoice_id=invoice.id,
                                      amount=-int(on_invoice), created_at=now))
    invoice.amount_paid = 0
    await session.flush()
