"""Payments: recorded by staff (cash, wire, cheque) or made by card; refunds and voids.

A received payment is one ledger transaction — the customer's book goes down, the cash book
(or, for cards, the processor book) goes up — and is then settled against open invoices by
:mod:`billing.settlement`.  Refunds and voids never edit that transaction: a refund is a
new REFUND transaction, a void a VOID reversal, and both first take the money back off the
invoices it paid so those reopen.

Every operation locks the customer's row first (:func:`get_customer_for_update`) and only then
looks up its idempotency key, so a concurrent double-submit waits for the first request and
then replays its result instead of racing it.

A card payment is charged through :mod:`billing.card_charges`, the one flow every card
charge takes: the intent is committed (a PENDING payment under a deterministic processor
key) before the processor is called outside any transaction, and the answer is recorded in
a new one; a janitor job settles what a crash or a timeout left open, by lookup.  A declined
card is not an exception: the FAILED payment is committed (it is the record of the attempt
and what a replay of the same key returns) and :func:`payment_error` gives the
:class:`UserError` a caller shows.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import (
    card_charges,
    clock,
    commissions,
    idempotency,
    ledger,
    metrics,
    payment_labels,
    payment_methods,
    processing,
    processor_accounts,
    settlement,
    validation,
)
from billing.access import (
    Viewer,
    require_self_or_staff,
    require_staff,
    require_write,
    sees_books,
    visible_payments,
)
from billing.customers import get_customer_for_update
from billing.errors import Forbidden, NotFound, UserError
from billing.models import (
    Customer,
    Invoice,
    InvoiceStatus,
    LedgerAccountKind,
    Payment,
    PaymentAllocation,
    PaymentChannel,
    PaymentMethod,
    PaymentStatus,
    ProcessorAccount,
    Role,
    TransactionKind,
)
from billing.money import Money, validate_currency
from billing.processing import ProcessorError, RefundResult

log = logging.getLogger("kassa.billing.payments")

#: Payments staff record by hand; card payments go through :func:`pay_with_payment_method`.
MANUAL_METHODS = (PaymentChannel.CASH, PaymentChannel.WIRE, PaymentChannel.CHEQUE)

# --- reading ------------------------------------------------------------------------------


async def get_payment(session: AsyncSession, viewer: Viewer, payment_id: int) -> Payment:
    """The payment if the viewer may see it (:func:`billing.access.visible_payments`);
    otherwise NotFound."""
    payment = await session.scalar(visible_payments(viewer).where(Payment.id == payment_id))
    if payment is None:
        raise NotFound("payment", "paymentId")
    return payment


def payment_query(
    viewer: Viewer,
    *,
    customer_id: int | None = None,
    method: PaymentChannel | None = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
    status: PaymentStatus | None = None,
    flagged: bool | None = None,
    flag_reviewed: bool | None = None,
) -> Select:  # type: ignore[type-arg]
    """Payments the viewer may see, filtered; ``received_to`` is exclusive, so periods abut.

    ``flagged``: only those flagged for an administrator (a notification whose amount or
    currency differed, a failure after the payment counted as paid: ``flagged_reason``), or
    only the others.  ``flag_reviewed``: only flagged payments someone has (or has not yet)
    looked into (:func:`review_flag`).  Whether a payment is flagged is part of the books,
    which a distributor does not see (:func:`~billing.access.sees_books`), so it may not
    filter on either.
    """
    if (flagged is not None or flag_reviewed is not None) and not sees_books(viewer):
        raise Forbidden("a distributor does not see which payments are flagged")
    query = visible_payments(viewer)
    if flagged is not None:
        query = query.where(
            Payment.flagged_reason.is_not(None) if flagged else Payment.flagged_reason.is_(None)
        )
    if flag_reviewed is not None:
        reviewed = Payment.flag_reviewed_at
        query = query.where(
            Payment.flagged_reason.is_not(None),
            reviewed.is_not(None) if flag_reviewed else reviewed.is_(None),
        )
    if customer_id is not None:
        query = query.where(Payment.customer_id == customer_id)
    if method is not None:
        query = query.where(Payment.method == method)
    if received_from is not None:
        query = query.where(Payment.received_at >= received_from)
    if received_to is not None:
        query = query.where(Payment.received_at < received_to)
    if status is not None:
        query = query.where(Payment.status == status)
    return query


async def allocations_for_payments(
    session: AsyncSession, payment_ids: Sequence[int]
) -> dict[int, list[PaymentAllocation]]:
    """Each payment's allocation rows, oldest first, in one query for a DataLoader batch.

    Negative rows are money taken back off an invoice (refund, void); a payment without
    allocations maps to an empty list.
    """
    by_payment: dict[int, list[PaymentAllocation]] = defaultdict(list)
    if payment_ids:
        rows = await session.scalars(
            select(PaymentAllocation)
            .where(PaymentAllocation.payment_id.in_(payment_ids))
            .order_by(PaymentAllocation.id)
        )
        for allocation in rows:
            by_payment[allocation.payment_id].append(allocation)
    return {payment_id: by_payment[payment_id] for payment_id in payment_ids}


def payment_error(payment: Payment) -> UserError | None:
    """The UserError to show for a failed card payment; ``None`` for any other payment.

    Codes: ``CARD_DECLINED``, ``INSUFFICIENT_FUNDS``, ``CARD_EXPIRED``.  The payment is
    returned rather than this raised because the FAILED row must be committed.
    """
    if payment.status != PaymentStatus.FAILED:
        return None
    code, words = card_charges.decline_words(payment.decline_code)
    return UserError(code, payment.message or words, "paymentMethodId")


# --- payments recorded by staff -----------------------------------------------------------


async def record_payment(
    session: AsyncSession,
    viewer: Viewer,
    customer_id: int,
    amount: int,
    currency: str,
    method: PaymentChannel,
    idempotency_key: str,
    reference: str | None = None,
    received_at: datetime | None = None,
) -> Payment:
    """Record money staff received (cash, wire, cheque) and settle open invoices with it.

    ``received_at`` may be in the past (a cheque that arrived yesterday) but not the future;
    it orders payments for settlement, while the ledger entry is dated when it is booked.

    A distributor records cash it took from one of its own customers: the payment remembers
    it, and is booked with its payment commission (:func:`book_received`).
    """
    if viewer.role == Role.DISTRIBUTOR:
        require_write(viewer)
    else:
        require_staff(viewer, write=True)
    currency = validate_currency(currency)  # before the key's arguments: "usd" is USD
    customer = await get_customer_for_update(session, viewer, customer_id)
    arguments = {
        "customer": customer_id,
        "amount": amount,
        "currency": currency,
        "method": method,
        "reference": reference,
        "received_at": received_at,
    }
    replayed = await _replayed(session, viewer, idempotency_key, "record_payment", arguments)
    if replayed is not None:
        return replayed
    _require_positive(amount, "amount")
    if currency != customer.currency:
        raise UserError(
            "CURRENCY_MISMATCH", f"the customer pays in {customer.currency}", "currency"
        )
    if method not in MANUAL_METHODS:
        raise UserError("INVALID_METHOD", "card payments are made with a stored card", "method")
    if viewer.distributor_id is not None and method != PaymentChannel.CASH:
        raise UserError("INVALID_METHOD", "a distributor records cash", "method")
    now = await clock.now(session)
    if received_at is not None and received_at.tzinfo is None:
        raise UserError("INVALID_TIME", "receivedAt must include a UTC offset", "receivedAt")
    if received_at is not None and received_at > now:
        raise UserError("INVALID_TIME", "receivedAt cannot be in the future", "receivedAt")
    payment = Payment(
        customer_id=customer.id,
        method=method,
        amount=amount,
        currency=customer.currency,
        refunded_amount=0,
        status=PaymentStatus.PENDING,
        reference=validation.text(reference, "reference", 200),
        received_at=received_at or now,
        recorded_by_distributor_id=viewer.distributor_id,
    )
    session.add(payment)
    await session.flush()
    await book_received(session, customer, payment, now)
    metrics.PAYMENTS.labels(method, "completed").inc()
    await _remember(session, viewer, idempotency_key, "record_payment", arguments, payment, now)
    return payment


async def refund_payment(
    session: AsyncSession,
    viewer: Viewer,
    payment_id: int,
    amount: int | None,
    idempotency_key: str,
    reason: str,
) -> Payment:
    """Give back ``amount`` (everything still unrefunded when ``None``) of a payment.

    Card payments are refunded through their processor first; a refusal raises REFUND_FAILED
    before anything is written.  The invoices the money paid reopen, the customer's balance
    goes back up by ``amount``, and the payment becomes PARTIALLY_REFUNDED or REFUNDED.
    """
    require_staff(viewer, write=True)
    payment, customer = await _lock_payment(session, viewer, payment_id)
    arguments = {"payment": payment_id, "amount": amount, "reason": reason}
    replayed = await _replayed(session, viewer, idempotency_key, "refund_payment", arguments)
    if replayed is not None:
        return replayed
    reason = validation.required_text(reason, "reason", 500)
    if payment.recorded_by_distributor_id is not None:
        raise UserError(
            "NOT_REFUNDABLE",
            "cash a distributor collected is voided (which takes back its commission), "
            "not refunded",
            "paymentId",
        )
    if payment.method == PaymentChannel.BITCOIN:
        raise UserError(
            "NOT_REFUNDABLE",
            "kassa holds no bitcoin to send back: refund from the wallet, then book it",
            "paymentId",
        )
    if payment.status not in settlement.SETTLED_PAYMENT_STATUSES:
        raise UserError(
            "NOT_REFUNDABLE",
            f"a {payment.status.value.lower()} payment cannot be refunded",
            "paymentId",
        )
    if amount is not None:
        _require_positive(amount, "amount")
    refundable = payment.amount - payment.refunded_amount
    refund = refundable if amount is None else amount
    if not 0 < refund <= refundable:
        raise UserError(
            "REFUND_EXCEEDS_PAYMENT",
            f"{Money(refundable, payment.currency)} of this payment is left to refund",
            "amount",
        )
    if payment.method == PaymentChannel.CARD:
        await _refund_at_processor(
            session, payment, refund, f"{viewer.idempotency_scope}:{idempotency_key}"
        )
    now = await clock.now(session)
    label = await payment_labels.label_of(session, payment)
    await give_back(
        session, customer, payment, refund, TransactionKind.REFUND, f"Refund of {label}: {reason}"
    )
    payment.refunded_amount += refund
    payment.status = (
        PaymentStatus.REFUNDED
        if payment.refunded_amount == payment.amount
        else PaymentStatus.PARTIALLY_REFUNDED
    )
    await session.flush()
    # Invoices reopened by the release may be covered by the customer's other credit.
    await settlement.apply_credit(session, customer, now)
    await _remember(session, viewer, idempotency_key, "refund_payment", arguments, payment, now)
    return payment


async def give_back(
    session: AsyncSession,
    customer: Customer,
    payment: Payment,
    amount: int,
    kind: TransactionKind,
    description: str,
) -> None:
    """Undo ``amount`` of a settled payment's credit: the invoices it paid reopen (latest
    first) and a new ``kind`` transaction takes the money back out of the book it went into
    (customer +, cash/processor −), naming the payment's transaction as the one it reverses.

    A refund gives money back this way, and so does a chargeback or return the processor
    reports (:mod:`billing.payment_notifications`).  The caller holds the customer's lock and
    sets the payment's status and refunded amount.
    """
    now = await clock.now(session)
    await settlement.release_payment(session, payment, amount, now, customer.time_zone)
    book = await _money_book(session, customer, payment.method)
    await ledger.post(
        session,
        kind,
        [
            ledger.Posting(customer.ledger_account_id, amount, customer.currency),
            ledger.Posting(book, -amount, customer.currency),
        ],
        at=now,
        description=description,
        customer_id=customer.id,
        reverses_id=payment.transaction_id,
    )


async def review_flag(session: AsyncSession, viewer: Viewer, payment_id: int, note: str) -> Payment:
    """Mark a flagged payment as looked into (staff), with what was found.

    kassa moved no money on the notice that flagged it, and this moves none either: whatever
    the administrator found is put right by the usual means (a payment recorded, a refund),
    and the note says so.  A payment is reviewed once; the flag itself stays, as history.
    """
    require_staff(viewer, write=True)
    payment, _ = await _lock_payment(session, viewer, payment_id)
    note = validation.required_text(note, "note", 500)
    if payment.flagged_reason is None:
        raise UserError("NOT_FLAGGED", "this payment is not flagged", "paymentId")
    if payment.flag_reviewed_at is not None:
        raise UserError(
            "ALREADY_REVIEWED", "this flagged payment was reviewed already", "paymentId"
        )
    payment.flag_reviewed_at = await clock.now(session)
    payment.flag_review_note = note
    await session.flush()
    return payment


async def void_payment(
    session: AsyncSession, viewer: Viewer, payment_id: int, reason: str
) -> Payment:
    """Undo a payment recorded in error (wrong customer, a bounced cheque) as if never made.

    Only a completed, never-refunded cash/wire/cheque payment can be voided: card money really
    moved, so it goes back by refund.  Its ledger transaction is reversed and the invoices it
    paid reopen, to be covered by other credit where there is some.  Voiding twice fails, so
    no idempotency key is needed.
    """
    require_staff(viewer, write=True)
    payment, customer = await _lock_payment(session, viewer, payment_id)
    reason = validation.required_text(reason, "reason", 500)
    if payment.method == PaymentChannel.CARD:
        raise UserError("NOT_VOIDABLE", "card payments are refunded, not voided", "paymentId")
    if payment.method == PaymentChannel.BITCOIN:
        raise UserError(
            "NOT_VOIDABLE", "a bitcoin payment is undone only by the chain itself", "paymentId"
        )
    if payment.status != PaymentStatus.COMPLETED or payment.refunded_amount:
        raise UserError(
            "NOT_VOIDABLE", "only a completed payment with no refunds can be voided", "paymentId"
        )
    assert payment.transaction_id is not None
    now = await clock.now(session)
    await settlement.release_payment(session, payment, payment.amount, now, customer.time_zone)
    if payment.recorded_by_distributor_id is not None:
        # Locked before the reversal moves its book, like every movement of it.
        distributor = await commissions.lock_distributor(
            session, payment.recorded_by_distributor_id
        )
    void = await ledger.reverse(
        session,
        payment.transaction_id,
        TransactionKind.VOID,
        at=now,
        description=f"Void of {await payment_labels.label_of(session, payment)}: {reason}",
    )
    if payment.recorded_by_distributor_id is not None:
        await commissions.balance_moved(session, distributor, void.id, now)
    payment.status = PaymentStatus.VOIDED
    await session.flush()
    await settlement.apply_credit(session, customer, now)
    return payment


# --- card payments ------------------------------------------------------------------------


async def pay_with_payment_method(
    transaction: card_charges.Transactions,
    viewer: Viewer,
    customer_id: int,
    amount: int | None,
    invoice_id: int | None,
    payment_method_id: int | None,
    idempotency_key: str,
) -> Payment:
    """Charge a stored card (the default one unless named) to pay an invoice or top up.

    With ``invoice_id`` the amount defaults to what the invoice still needs and may not exceed
    it, and the money goes to that invoice first; without, ``amount`` is required and becomes
    credit (or pays the oldest open invoices).  Returns the payment: COMPLETED, FAILED for a
    decline (see :func:`payment_error`) or UNKNOWN when the processor did not answer.

    Three transactions from ``transaction`` (see :mod:`billing.card_charges`): the intent
    and the idempotency record commit together before the card processor is called, so a
    replay — also one after a crash — returns this payment however far it got.
    """
    async with transaction() as session:
        customer = await get_customer_for_update(session, viewer, customer_id)
        require_self_or_staff(viewer, customer, write=True)
        arguments = {
            "customer": customer_id,
            "amount": amount,
            "invoice": invoice_id,
            "payment_method": payment_method_id,
        }
        # Checked under the customer's lock, so of two requests with one key only one charges.
        replayed = await _replayed(session, viewer, idempotency_key, "card_payment", arguments)
        if replayed is None:
            card = await _card_to_charge(session, viewer, customer, payment_method_id)
            amount = await _amount_to_pay(session, customer, amount, invoice_id)
            if card.processor_account_id is None:
                # An unknown processor is refused before writing.  A card stored through a
                # processor account has its processor made from the account's config.
                processing.processor_named(card.processor)
            else:
                processor_accounts.check_minimum(
                    await session.get(ProcessorAccount, card.processor_account_id),
                    amount,
                    customer.currency,
                )
            now = await clock.now(session)
            [intent] = await card_charges.open_charges(
                session,
                [
                    card_charges.Draft(
                        customer.id,
                        card.id,
                        card.processor,
                        card.token,
                        amount,
                        customer.currency,
                        invoice_id,
                    )
                ],
                now,
            )
            await idempotency.remember(
                session,
                viewer.idempotency_scope,
                idempotency_key,
                "card_payment",
                arguments,
                intent.payment_id,
                now,
            )
    if replayed is not None:
        return await _outcome_of(transaction, replayed)
    [answer] = await card_charges.send([intent])
    async with transaction() as session:
        recorded = await card_charges.record(
            session, [(intent.payment_id, answer)], await clock.now(session)
        )
        payment = await session.get(Payment, intent.payment_id, populate_existing=True)
        assert payment is not None
    recorded.count()
    return payment


#: How long a replay waits for the request it repeats to hear from the processor.
REPLAY_WAIT = timedelta(seconds=10)
_REPLAY_POLL = 0.05


async def _outcome_of(transaction: card_charges.Transactions, payment: Payment) -> Payment:
    """``payment`` once the request that made it has its processor's answer.

    A double click sends the same key twice at once: the second request finds the first's
    payment still PENDING, its card being charged.  It waits (at most :data:`REPLAY_WAIT`)
    for that answer so both show the same outcome; a payment left PENDING by a crash is
    returned as it is after the wait, for the janitor to settle.
    """
    deadline = asyncio.get_running_loop().time() + REPLAY_WAIT.total_seconds()
    # A charge waiting for the customer's confirmation (3-D Secure) has its answer already.
    while payment.status == PaymentStatus.PENDING and payment.action_url is None:
        if asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(_REPLAY_POLL)
        async with transaction() as session:
            found = await session.get(Payment, payment.id, populate_existing=True)
        assert found is not None
        payment = found
    return payment


# --- the steps ----------------------------------------------------------------------------


def _require_positive(amount: int, field: str) -> None:
    if amount <= 0:
        raise UserError("AMOUNT_NOT_POSITIVE", "amount must be greater than zero", field)


async def _replayed(
    session: AsyncSession, viewer: Viewer, key: str, operation: str, arguments: dict[str, Any]
) -> Payment | None:
    """The payment an earlier identical request returned, as it is now; None if it is new."""
    previous = await idempotency.replay(
        session, viewer.idempotency_scope, key, operation, arguments
    )
    return None if previous is None else await session.get(Payment, previous)


async def _remember(
    session: AsyncSession,
    viewer: Viewer,
    key: str,
    operation: str,
    arguments: dict[str, Any],
    payment: Payment,
    now: datetime,
) -> None:
    await idempotency.remember(
        session, viewer.idempotency_scope, key, operation, arguments, payment.id, now
    )


async def _lock_payment(
    session: AsyncSession, viewer: Viewer, payment_id: int
) -> tuple[Payment, Customer]:
    """The payment and its customer, with the customer locked and the payment read after the
    lock, so a refund that committed meanwhile is seen."""
    payment = await get_payment(session, viewer, payment_id)
    customer = await get_customer_for_update(session, viewer, payment.customer_id)
    await session.refresh(payment)
    return payment, customer


async def _money_book(session: AsyncSession, customer: Customer, method: PaymentChannel) -> int:
    """The system book holding received money: the processor's for cards and for cash a
    terminal network or PayNearMe took (held by someone else until paid out), cash otherwise."""
    held = method in (PaymentChannel.CARD, PaymentChannel.TERMINAL, PaymentChannel.PAYNEARME)
    kind = LedgerAccountKind.PROCESSOR if held else LedgerAccountKind.CASH
    return await ledger.system_book(session, kind, customer.reseller_id, customer.currency)


async def book_received(
    session: AsyncSession, customer: Customer, payment: Payment, now: datetime
) -> None:
    """Book received money (customer −, cash/processor +) and settle invoices with it: a
    PENDING ``payment`` just added (flushed) for ``customer``, whose row the caller locked.
    Staff's records and cash terminals' payments (:mod:`billing.terminals`) are booked here.

    Cash a distributor collected is booked in the same one transaction as its commission
    (customer −, distributor + net, commission +: :func:`billing.commissions.collect`), and
    is refused past the distributor's credit limit before anything is written.
    A payment made for an invoice pays that invoice first; the rest goes oldest first.
    """
    description = payment_labels.sentence(await payment_labels.label_of(session, payment))
    if payment.recorded_by_distributor_id is not None:
        distributor = await commissions.lock_distributor(
            session, payment.recorded_by_distributor_id
        )
        split = await commissions.preview(session, distributor, customer, payment.amount)
        txn = await commissions.collect(
            session,
            TransactionKind.PAYMENT,
            distributor,
            customer.ledger_account_id,
            split,
            at=now,
            description=description,
            customer_id=customer.id,
        )
        payment.distributor_commission = split.commission
    else:
        book = await _money_book(session, customer, payment.method)
        txn = await ledger.post(
            session,
            TransactionKind.PAYMENT,
            [
                ledger.Posting(customer.ledger_account_id, -payment.amount, payment.currency),
                ledger.Posting(book, payment.amount, payment.currency),
            ],
            at=now,
            description=description,
            customer_id=customer.id,
        )
    payment.transaction_id = txn.id
    payment.status = PaymentStatus.COMPLETED
    await session.flush()
    if payment.invoice_id is not None:
        invoice = await session.get(Invoice, payment.invoice_id)
        assert invoice is not None
        await settlement.apply_to_invoice(session, payment, invoice, now, customer.time_zone)
    await settlement.apply_credit(session, customer, now)


async def _card_to_charge(
    session: AsyncSession, viewer: Viewer, customer: Customer, payment_method_id: int | None
) -> PaymentMethod:
    """The named card, which must be this customer's, or the customer's default card."""
    if payment_method_id is None:
        card = await payment_methods.default_payment_method(session, customer.id)
        if card is None:
            raise UserError(
                "NO_PAYMENT_METHOD", "there is no card to charge; add one first", "paymentMethodId"
            )
        return card
    card = await payment_methods.get_payment_method(session, viewer, payment_method_id)
    if card.customer_id != customer.id:
        raise NotFound("payment method", "paymentMethodId")
    return card


async def _amount_to_pay(
    session: AsyncSession, customer: Customer, amount: int | None, invoice_id: int | None
) -> int:
    """The amount to charge: as asked, or what the invoice still needs, never more than that."""
    if invoice_id is not None:
        invoice = await session.scalar(
            select(Invoice).where(Invoice.id == invoice_id, Invoice.customer_id == customer.id)
        )
        if invoice is None:
            raise NotFound("invoice", "invoiceId")
        if invoice.status == InvoiceStatus.PENDING_REVIEW:
            raise UserError(
                "INVOICE_NOT_APPROVED", "the invoice is waiting for review", "invoiceId"
            )
        if invoice.outstanding <= 0:
            raise UserError("INVOICE_NOT_OPEN", "the invoice has nothing left to pay", "invoiceId")
        if amount is None:
            amount = invoice.outstanding
        elif amount > invoice.outstanding:
            raise UserError(
                "AMOUNT_EXCEEDS_OUTSTANDING",
                f"only {Money(invoice.outstanding, invoice.currency)} is outstanding on this "
                "invoice",
                "amount",
            )
    elif amount is None:
        raise UserError("REQUIRED", "an amount is required to top up", "amount")
    _require_positive(amount, "amount")
    return amount


async def _refund_at_processor(
    session: AsyncSession, payment: Payment, amount: int, request_key: str
) -> None:
    """Refund card money at the processor; a refusal is REFUND_FAILED and nothing is written.

    The processor's key is derived from the caller's idempotency key, so a retried refund
    request (say after a crash between the processor and our commit) refunds only once.
    """
    assert payment.processor_reference is not None
    key = f"payment-{payment.id}-refund-{idempotency.request_hash({'key': request_key})[:32]}"
    assert payment.processor is not None, "a card payment names its processor"
    configs = await processor_accounts.configs_for(session, [payment.processor_account_id])
    config = configs.get(payment.processor_account_id or 0)
    try:
        processor = processor_accounts.make_processor(payment.processor, config)
        result = await processor.refund(payment.processor_reference, amount, key)
    except ProcessorError as error:
        result = RefundResult(False, None, error.message)
    if not result.succeeded:
        raise UserError(
            "REFUND_FAILED", f"the card processor refused the refund: {result.message}", "paymentId"
        )
