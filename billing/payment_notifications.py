"""Payment notifications: what a processor's verified callback does to a payment.

The HTTP side (``resolvers/callbacks.py``) finds the processor account named in the path,
has its processor verify and parse the request (:class:`~billing.payment_systems.
NotifiedProcessor`; a forged one never gets here) and hands the :class:`Notification` to
:func:`apply`, in one transaction:

1. **Once per event.**  A row in ``processor_notifications`` under the unique
   ``(processor_account_id, event_id)`` is written first; a resent callback finds it there
   and changes nothing (it is acknowledged all the same, so the processor stops resending).
2. **Which payment.**  The payment made through *this* account under the notification's
   idempotency key (``processor_key``), else its ``processor_reference``: an account's
   callbacks can never touch another account's payments.
3. **What happens**, under the customer's lock:

   * SUCCEEDED — a PENDING/UNKNOWN payment is booked exactly as an answered charge is
     (:func:`billing.card_charges.record`: ledger credit, its invoice first, then credit); so
     is a redirect payment kassa had given up on (expired, canceled): money the system
     confirms arrived is credited late, never dropped
     (:func:`billing.redirect_payments.credit_late`);
   * FAILED — a PENDING/UNKNOWN payment becomes FAILED with the decline code;
   * REVERSED (chargeback, return) — a settled payment's remaining credit is undone in a new
     REVERSAL transaction and the invoices it paid reopen, as a refund does
     (:func:`billing.payments.give_back`); the payment becomes REVERSED;
   * REFUNDED, IGNORED — nothing (kassa books its own refunds when it makes them);
   * CHECK_STATUS (an unsigned "ask me": Payarena, Remita) — nothing is believed: the system
     is asked for the (open or given-up) redirect payment's status first and its answer is applied as a
     SUCCEEDED or FAILED would be; while it has none, nothing is written at all.

   A notification whose amount or currency differs from the payment's
   (:func:`~billing.payment_systems.reject_mismatch`) is refused: the payment is left as it
   was, never credited, and ``Payment.flagged_reason`` says why for an administrator.

The outcome is kept on the notification's row (APPLIED, FLAGGED, UNCHANGED, NO_PAYMENT; a
DUPLICATE is only answered).  Log lines name the account, event and payment — never the body.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing import (
    card_charges,
    cash_slips,
    customers,
    payment_labels,
    payments,
    redirect_payments,
    settlement,
)
from billing.models import (
    Customer,
    Payment,
    PaymentStatus,
    ProcessorAccount,
    ProcessorNotification,
    TransactionKind,
)
from billing.payment_systems import Notification, NotificationKind, reject_mismatch
from billing.processing import ChargeOutcome, ChargeResult

log = logging.getLogger("kassa.billing.payment_notifications")

#: The payments a chargeback or return can take back.
_REVERSIBLE = (PaymentStatus.COMPLETED, PaymentStatus.PARTIALLY_REFUNDED)


class Outcome(StrEnum):
    """What a notification did."""

    APPLIED = "APPLIED"
    #: Already applied under this event id: nothing changed now.
    DUPLICATE = "DUPLICATE"
    #: Refused for an amount or currency that differs from the payment's.
    FLAGGED = "FLAGGED"
    #: About a payment already in that state, or news kassa does not act on.
    UNCHANGED = "UNCHANGED"
    NO_PAYMENT = "NO_PAYMENT"


async def account_by_id(session: AsyncSession, account_id: int) -> ProcessorAccount | None:
    """The processor account a callback path names (disabled ones too: their payments still
    settle), or None."""
    return await session.get(ProcessorAccount, account_id)


async def authorize(
    session: AsyncSession, account_id: int, notification: Notification
) -> cash_slips.Decision:
    """Whether to take the payment an AUTHORIZATION asks about (a cash slip's: see
    :func:`billing.cash_slips.authorize`); nothing is written, a resent question is
    answered afresh."""
    return await cash_slips.authorize(session, account_id, notification)


async def _first_time(
    session: AsyncSession, account_id: int, notification: Notification, now: datetime
) -> int | None:
    """Record the event; its row id, or None when it was recorded before."""
    dialect = session.bind.dialect.name  # type: ignore[union-attr]
    insert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(
        ProcessorNotification
    )
    row_id = await session.scalar(
        insert.values(
            processor_account_id=account_id,
            event_id=notification.event_id,
            kind=notification.kind,
            payment_id=None,
            outcome=Outcome.NO_PAYMENT,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["processor_account_id", "event_id"])
        .returning(ProcessorNotification.id)
    )
    return None if row_id is None else int(row_id)


async def _payment_of(
    session: AsyncSession, account_id: int, notification: Notification
) -> Payment | None:
    """The payment made through the account that the notification names."""
    names = []
    if notification.idempotency_key:
        names.append(Payment.processor_key == notification.idempotency_key)
    if notification.processor_reference:
        names.append(Payment.processor_reference == notification.processor_reference)
    if not names:
        return None
    found = list(
        await session.scalars(
            select(Payment).where(Payment.processor_account_id == account_id, or_(*names))
        )
    )
    by_key = [p for p in found if p.processor_key == notification.idempotency_key]
    return next(iter(by_key or found), None)


async def apply(
    session: AsyncSession, account_id: int, notification: Notification, now: datetime
) -> Outcome:
    """Apply a verified notification once (see the module's docstring)."""
    if notification.kind == NotificationKind.CHECK_STATUS:
        asked = await _ask_status(session, account_id, notification)
        if asked is None:
            return Outcome.UNCHANGED
        notification = asked
    row_id = await _first_time(session, account_id, notification, now)
    if row_id is None:
        log.info("account %s: event %s again, already applied", account_id, notification.event_id)
        return Outcome.DUPLICATE
    payment = await _payment_of(session, account_id, notification)
    outcome = Outcome.NO_PAYMENT
    if payment is not None:
        outcome = await _act(session, payment, notification, now)
    elif notification.kind == NotificationKind.SUCCEEDED:
        # Cash paid against a standing slip: no payment waited for it, the slip names whose.
        payment = await cash_slips.book(session, account_id, notification, now)
        outcome = Outcome.NO_PAYMENT if payment is None else Outcome.APPLIED
    row = await session.get(ProcessorNotification, row_id)
    assert row is not None
    row.payment_id = None if payment is None else payment.id
    row.outcome = outcome
    await session.flush()
    log.info(
        "account %s: event %s (%s) for payment %s: %s",
        account_id,
        notification.event_id,
        notification.kind.value,
        None if payment is None else payment.id,
        outcome.value,
    )
    return outcome


async def _ask_status(
    session: AsyncSession, account_id: int, notification: Notification
) -> Notification | None:
    """An unsigned CHECK_STATUS proves nothing: the system is asked about the redirect payment
    it names (:func:`billing.redirect_payments.status_of`) and its answer is what is applied,
    as a SUCCEEDED or FAILED with the system's own amount.  None while the system has no final
    answer (or cannot be asked): nothing is written, so a resent notification asks again.
    One about no open payment is recorded as it is and changes nothing."""
    payment = await _payment_of(session, account_id, notification)
    if payment is None or not (
        payment.status in card_charges.OPEN_STATUSES or redirect_payments.given_up(payment)
    ):
        return notification
    result = await redirect_payments.status_of(session, payment)
    if result is None or result.status not in (ChargeOutcome.SUCCEEDED, ChargeOutcome.DECLINED):
        return None
    succeeded = result.status == ChargeOutcome.SUCCEEDED
    return replace(
        notification,
        kind=NotificationKind.SUCCEEDED if succeeded else NotificationKind.FAILED,
        idempotency_key=payment.processor_key,
        processor_reference=result.processor_reference or payment.processor_reference,
        amount=result.amount,
        currency=result.currency,
        decline_code=result.decline_code,
        message=result.message,
    )


async def _act(
    session: AsyncSession, payment: Payment, notification: Notification, now: datetime
) -> Outcome:
    """What the notification does to ``payment``, under its customer's lock."""
    [customer] = await customers.lock_customers(session, {payment.customer_id})
    await session.refresh(payment)
    kind = notification.kind
    opened = payment.status in card_charges.OPEN_STATUSES
    late = kind == NotificationKind.SUCCEEDED and redirect_payments.given_up(payment)
    if not (
        (kind in (NotificationKind.SUCCEEDED, NotificationKind.FAILED) and opened)
        or late
        or (kind == NotificationKind.REVERSED and payment.status in _REVERSIBLE)
    ):
        return Outcome.UNCHANGED
    mismatch = reject_mismatch(notification, payment.amount, payment.currency)
    if mismatch is not None and kind != NotificationKind.FAILED:
        payment.flagged_reason = mismatch[:500]
        await session.flush()
        log.warning(
            "payment %s: notification %s refused: %s", payment.id, notification.event_id, mismatch
        )
        return Outcome.FLAGGED
    if kind == NotificationKind.REVERSED:
        await _reverse(session, customer, payment, now)
        return Outcome.APPLIED
    answer = ChargeResult(
        ChargeOutcome.SUCCEEDED if kind == NotificationKind.SUCCEEDED else ChargeOutcome.DECLINED,
        notification.processor_reference or payment.processor_reference,
        None if kind == NotificationKind.SUCCEEDED else notification.decline_code or "declined",
        notification.message,
        payment.amount,
        payment.currency,
    )
    if late:
        await redirect_payments.credit_late(session, payment, answer, now)
    else:
        await card_charges.record(session, [(payment.id, answer)], now)
    return Outcome.APPLIED


async def _reverse(
    session: AsyncSession, customer: Customer, payment: Payment, now: datetime
) -> None:
    """Take back what is left of a settled payment's credit (a chargeback or return)."""
    remaining = payment.amount - payment.refunded_amount
    label = await payment_labels.label_of(session, payment)
    await payments.give_back(
        session,
        customer,
        payment,
        remaining,
        TransactionKind.REVERSAL,
        f"Chargeback of {label}: the payer's bank took the payment back",
    )
    payment.status = PaymentStatus.REVERSED
    await session.flush()
    await settlement.apply_credit(session, customer, now)
