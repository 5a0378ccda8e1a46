"""Paying on a redirect system's page (PayPal, Skrill, Payarena, Remita): issue 13, section 1.

The customer picks one of the redirect accounts its owner offers (:func:`options`), an amount
(an open invoice's outstanding, or a top-up) and is sent to the system's page; the payment
counts only once the system itself says so.  The flow mirrors :mod:`billing.card_charges`:

1. **Intent** (:func:`start`).  In one transaction, with the customer locked: the account must
   be one routing lets this customer pay through (:func:`billing.processor_accounts.
   accounts_for`) with :attr:`~billing.payment_systems.Capability.REDIRECT`, the amount at
   least the account's minimum, and whatever the system needs of the payer (Remita: phone and
   e-mail, :class:`~billing.payment_systems.CheckedRedirect`) present.  A refusal writes
   nothing and calls nothing.  Then a PENDING REDIRECT payment is written under the processor
   key ``payment-<id>`` with the idempotency record, and committed *before* the system is
   called, so a crash leaves a payment the expiry job finds.
2. **Call.**  Outside any transaction the system opens its payment
   (:meth:`~billing.payment_systems.RedirectProcessor.start_redirect`).  Its id is kept as the
   payment's ``processor_reference``, the page as its ``action_url`` and the deadline as
   ``expires_at`` (:data:`DEFAULT_LIFETIME` when the system names none).  A system that
   refuses or does not answer leaves the payment FAILED (``start_failed``).
3. **Outcome.**  Never from the return address alone: on return (:func:`returned`) the system
   is asked (:meth:`complete_return`: PayPal captures, the others answer a status query); a
   signed notification or an unsigned one followed by a status query
   (:mod:`billing.payment_notifications`) does the same.  Every answer is booked by
   :func:`settle` through :func:`billing.card_charges.record` — once, whichever comes first:
   SUCCEEDED → COMPLETED (ledger, the invoice first, then credit), DECLINED → FAILED; an
   answer for another amount or currency is flagged and never credited; still pending
   changes nothing.  A customer who came back through the cancel address while the system
   says the payment is not made is FAILED ``canceled`` at once (:func:`_canceled`).
4. **Expiry** (:data:`EXPIRY_JOB`).  A PENDING redirect payment past ``expires_at`` is asked
   about once more and becomes FAILED ``expired`` unless the system says it was paid; each
   payment is isolated (:func:`billing.run_failures.isolate`), so one customer's failure never
   stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import (
    card_charges,
    clock,
    customers,
    idempotency,
    jobs,
    payments,
    processor_accounts,
    run_failures,
)
from billing.access import Viewer, require_self_or_staff, require_write
from billing.db import Database
from billing.errors import NotFound, UserError
from billing.models import (
    Customer,
    Payment,
    PaymentChannel,
    PaymentStatus,
    ProcessorAccount,
    RunKind,
)
from billing.payment_systems import (
    Capability,
    CheckedRedirect,
    Notification,
    NotificationKind,
    Payer,
    RedirectProcessor,
    RedirectRequest,
    RedirectStart,
    reject_mismatch,
)
from billing.processing import ChargeOutcome, ChargeResult, ProcessorError

log = logging.getLogger("kassa.billing.redirect_payments")

#: Where the system sends the customer back (and where it sends them when they give up): the
#: customer portal's outcome page, which asks the system before it shows anything.
RETURN_PATH = "/portal/pay/return/{payment_id}"
#: How long an abandoned redirect stays payable when the system names no deadline.
DEFAULT_LIFETIME = timedelta(hours=1)
#: The singleton job that expires abandoned redirects (:func:`run_expiry`).
EXPIRY_JOB = "redirect_payment_expiry"
#: Expired payments the job asks about per transaction.
EXPIRY_BATCH = 200
#: What a payment whose start the system refused or never answered says.
START_FAILED = "start_failed"
#: The query parameter kassa's cancel address carries: the customer gave up on the system's
#: page (systems with a cancel address of their own send them there, PayPal and Skrill).
CANCEL_MARK = "canceled"
#: The decline code of a payment its customer canceled.
CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class Option:
    """A redirect account a customer may pay through, as the portal offers it."""

    account_id: int
    name: str
    processor: str
    currency: str
    minimum: int


@dataclass(frozen=True, slots=True)
class Started:
    """A started redirect: the PENDING payment, and where to send the customer (None when the
    payment is no longer payable: a replay of a settled or failed one)."""

    payment: Payment
    redirect: RedirectStart | None


async def options(session: AsyncSession, viewer: Viewer, customer_id: int) -> list[Option]:
    """The redirect accounts ``customer_id`` may pay through in its currency, routing order."""
    customer = await customers.get_customer(session, viewer, customer_id)
    require_self_or_staff(viewer, customer)
    accounts = await processor_accounts.accounts_for(
        session, customer, customer.currency, Capability.REDIRECT
    )
    return [
        Option(
            a.id, a.name, a.processor, customer.currency, int(a.minimums.get(customer.currency, 0))
        )
        for a in accounts
    ]


async def start(
    transaction: card_charges.Transactions,
    viewer: Viewer,
    customer_id: int,
    account_id: int,
    amount: int | None,
    invoice_id: int | None,
    idempotency_key: str,
) -> Started:
    """Open a redirect payment (see the module's docstring, steps 1 and 2).

    With ``invoice_id`` the amount defaults to the invoice's outstanding and may not exceed
    it; without, ``amount`` is a top-up.  A replay of the same key returns the same payment,
    with the system asked again for its page (under the same key, so it opens nothing new)
    while the payment is still PENDING.
    """
    arguments = {
        "customer": customer_id,
        "account": account_id,
        "amount": amount,
        "invoice": invoice_id,
    }
    async with transaction() as session:
        customer = await customers.get_customer_for_update(session, viewer, customer_id)
        require_self_or_staff(viewer, customer, write=True)
        previous = await idempotency.replay(
            session, viewer.idempotency_scope, idempotency_key, "redirect_payment", arguments
        )
        if previous is not None:
            payment = await session.get(Payment, previous)
            assert payment is not None
            account = await session.get(ProcessorAccount, payment.processor_account_id)
            assert account is not None
            if payment.status != PaymentStatus.PENDING:
                return Started(payment, None)
        else:
            account = await _account(session, customer, account_id)
            amount = await payments._amount_to_pay(session, customer, amount, invoice_id)
            processor_accounts.check_minimum(account, amount, customer.currency)
            now = await clock.now(session)
            payment = Payment(
                customer_id=customer.id,
                method=PaymentChannel.REDIRECT,
                amount=amount,
                currency=customer.currency,
                refunded_amount=0,
                status=PaymentStatus.PENDING,
                reference=account.name,
                received_at=now,
                invoice_id=invoice_id,
                processor=account.processor,
                processor_account_id=account.id,
                expires_at=now + DEFAULT_LIFETIME,
                message="Waiting for the payment system to confirm the payment.",
            )
            session.add(payment)
            await session.flush()
            payment.processor_key = f"payment-{payment.id}"
            await idempotency.remember(
                session,
                viewer.idempotency_scope,
                idempotency_key,
                "redirect_payment",
                arguments,
                payment.id,
                now,
            )
            await jobs.schedule(session, EXPIRY_JOB, now + DEFAULT_LIFETIME, unique_key=EXPIRY_JOB)
        processor = _processor(session, account)
        request = _request(session, customer, account, payment)
        if isinstance(processor, CheckedRedirect):
            processor.check_redirect(request)  # a refusal rolls the new payment back
        payment_id, charged = payment.id, (payment.amount, payment.currency)
    try:
        redirect = await processor.start_redirect(request)
    except (ProcessorError, UserError) as error:
        log.warning("payment %s: the redirect could not be started: %s", payment_id, error)
        async with transaction() as session:
            failed = ChargeResult(ChargeOutcome.DECLINED, None, START_FAILED, str(error), *charged)
            await card_charges.record(session, [(payment_id, failed)], await clock.now(session))
        raise UserError(
            "PAYMENT_SYSTEM_UNAVAILABLE",
            f"{account.name} could not start the payment; try again later or pay another way",
            "processorAccountId",
        ) from None
    async with transaction() as session:
        payment = await session.get(Payment, payment_id, populate_existing=True)
        assert payment is not None
        now = await clock.now(session)
        payment.processor_reference = redirect.external_id
        payment.action_url = redirect.url[:2000]
        payment.expires_at = redirect.expires_at or now + DEFAULT_LIFETIME
        await jobs.schedule(session, EXPIRY_JOB, payment.expires_at, unique_key=EXPIRY_JOB)
        await session.flush()
    return Started(payment, redirect)


async def returned(
    transaction: card_charges.Transactions,
    viewer: Viewer,
    payment_id: int,
    query: Mapping[str, str],
) -> Payment:
    """The payment after the customer came back with ``query`` (step 3): the system is asked
    (the query is only its hint), and a final answer booked once.  Safe to repeat: a settled
    payment is returned as it is, without asking."""
    require_write(viewer)
    async with transaction() as session:
        payment = await redirect_payment(session, viewer, payment_id)
        if payment.status != PaymentStatus.PENDING or payment.processor_reference is None:
            return payment
        processor, redirect = await _asking(session, payment)
    try:
        result: ChargeResult | None = await processor.complete_return(redirect, query)
    except ProcessorError as error:
        log.warning("payment %s: the return could not be confirmed: %s", payment_id, error)
        result = None
    if result is not None and CANCEL_MARK in query:
        result = _canceled(result)
    async with transaction() as session:
        if result is not None:
            await settle(session, payment_id, result, await clock.now(session))
        found = await session.get(Payment, payment_id, populate_existing=True)
        assert found is not None
        return found


def _canceled(result: ChargeResult) -> ChargeResult:
    """The system's answer for a customer who came back through the cancel address.

    Systems with a cancel address (PayPal, Skrill) record nothing when the customer gives up:
    the order stays unapproved, the session unpaid, and the status query says "not paid yet"
    until the system's own deadline.  That answer, asked server to server just now, together
    with the customer's cancel is final: nothing was paid, so the payment is FAILED
    ``canceled`` at once instead of waiting for its expiry.  A success (paid in another tab, an
    order approved before the cancel) or a decline is the system's and stands as it is; money
    confirmed after the cancel is still credited (:func:`settle`).
    """
    if result.status != ChargeOutcome.UNKNOWN:
        return result
    return ChargeResult(
        ChargeOutcome.DECLINED,
        result.processor_reference,
        CANCELED,
        "You canceled the payment on the payment system's page.",
        result.amount,
        result.currency,
    )


async def redirect_payment(session: AsyncSession, viewer: Viewer, payment_id: int) -> Payment:
    """A redirect payment the viewer may act for (its customer, or staff), else NOT_FOUND."""
    payment = await payments.get_payment(session, viewer, payment_id)
    customer = await customers.get_customer(session, viewer, payment.customer_id)
    if payment.method != PaymentChannel.REDIRECT:
        raise NotFound("payment", "paymentId")
    require_self_or_staff(viewer, customer)
    return payment


async def status_of(session: AsyncSession, payment: Payment) -> ChargeResult | None:
    """What the system says of an open redirect payment, or None when it could not be asked.

    Called inside a transaction that holds no lock (a notification's, before it writes), so a
    slow system delays only that one callback."""
    if payment.method != PaymentChannel.REDIRECT or payment.processor_reference is None:
        return None
    processor, redirect = await _asking(session, payment)
    try:
        return await processor.redirect_status(redirect)
    except ProcessorError as error:
        log.warning("payment %s: the status query failed: %s", payment.id, error)
        return None


async def settle(
    session: AsyncSession, payment_id: int, result: ChargeResult, now: datetime
) -> bool:
    """Book the system's final answer about an open redirect payment; True when it was final.

    Still pending (UNKNOWN) changes nothing.  A success for another amount or currency than
    the payment's is flagged for an administrator and never credited.
    """
    if result.status not in (ChargeOutcome.SUCCEEDED, ChargeOutcome.DECLINED):
        return False
    payment = await session.get(Payment, payment_id)
    assert payment is not None
    if result.status == ChargeOutcome.SUCCEEDED:
        said = Notification(
            "", NotificationKind.SUCCEEDED, amount=result.amount, currency=result.currency
        )
        mismatch = reject_mismatch(said, payment.amount, payment.currency)
        if mismatch is not None:
            payment.flagged_reason = mismatch[:500]
            await session.flush()
            log.warning("payment %s: the system's answer refused: %s", payment_id, mismatch)
            return True
    await card_charges.record(session, [(payment_id, result)], now)
    return True


def given_up(payment: Payment) -> bool:
    """Whether ``payment`` is a redirect payment kassa stopped waiting for (expired, canceled,
    declined, never started) that its system may yet confirm: see :func:`credit_late`."""
    return payment.method == PaymentChannel.REDIRECT and payment.status == PaymentStatus.FAILED


async def credit_late(
    session: AsyncSession, payment: Payment, result: ChargeResult, now: datetime
) -> None:
    """Credit a verified success that arrived after kassa gave up on the payment.

    Money the system confirms did reach the provider's account there, whatever kassa decided
    meanwhile (the customer paid a Remita RRR at a bank after the deadline, Skrill confirmed a
    session late): dropping it would leave the provider holding money the customer's balance
    never shows.  So the FAILED payment is booked as any success is — COMPLETED, one PAYMENT
    ledger transaction, its invoice first if still open, the rest credit on the balance (an
    invoice paid another way meanwhile leaves the whole amount as credit, which the next
    invoice uses or staff refund) — and its message says it came late, for the administrator
    reading the payment.  The caller has verified the answer (a signed notification, or the
    system's own status) and checked its amount; it holds the customer's lock.
    """
    was = payment.decline_code or "failed"
    payment.status = PaymentStatus.PENDING  # reopened within this transaction only
    await session.flush()
    await card_charges.record(session, [(payment.id, result)], now)
    await session.refresh(payment)
    payment.message = (
        f"The payment system confirmed this payment after it {_LATE_WORDS.get(was, 'failed')};"
        " it was credited when the confirmation arrived."
    )
    await session.flush()
    log.warning("payment %s: confirmed after it was %s; credited", payment.id, was)


#: How a late payment's message words what had become of it, by its decline code.
_LATE_WORDS = {"expired": "had expired", CANCELED: "was canceled"}


# --- expiry ---------------------------------------------------------------------------------


@dataclass
class ExpiryReport:
    """What an expiry run did, for logs and tests."""

    asked: int = 0
    paid: int = 0
    expired: int = 0


async def run_expiry(db: Database, now: datetime) -> ExpiryReport:
    """Ask about every PENDING redirect payment past its deadline and settle it: paid if the
    system says so, FAILED ``expired`` otherwise; then plan the next run."""
    report = ExpiryReport()
    after = 0
    while True:
        async with db.session() as session:
            due = list(
                await session.scalars(
                    select(Payment)
                    .where(
                        Payment.method == PaymentChannel.REDIRECT,
                        Payment.status == PaymentStatus.PENDING,
                        Payment.expires_at <= now,
                        Payment.id > after,
                    )
                    .order_by(Payment.id)
                    .limit(EXPIRY_BATCH)
                )
            )
            answers = [_Due(p.id, p.customer_id, p.invoice_id, p.amount, p.currency,
                            await status_of(session, p)) for p in due]  # fmt: skip
        if not due:
            break
        after = due[-1].id
        report.asked += len(due)
        async with db.transaction() as session:
            done = await run_failures.isolate(
                session,
                RunKind.COLLECTION,
                answers,
                lambda item: run_failures.Subject(item.customer_id, item.invoice_id),
                lambda chunk: _expire(session, chunk, now),
                now,
                log,
            )
        for paid, expired in done.results:
            report.paid += paid
            report.expired += expired
    async with db.transaction() as session:
        await jobs.reschedule(session, EXPIRY_JOB, EXPIRY_JOB, _next_expiry)
    log.info("redirect expiry at %s: %s", now.isoformat(), report)
    return report


@dataclass(frozen=True, slots=True)
class _Due:
    """An expired payment and the system's answer about it (None: it could not be asked)."""

    payment_id: int
    customer_id: int
    invoice_id: int | None
    amount: int
    currency: str
    result: ChargeResult | None


async def _expire(session: AsyncSession, chunk: Sequence[_Due], now: datetime) -> tuple[int, int]:
    """Settle expired payments by the system's answers: (paid, expired)."""
    paid = expired = 0
    for due in chunk:
        result = due.result
        if result is not None and result.status == ChargeOutcome.SUCCEEDED:
            await settle(session, due.payment_id, result, now)
            paid += 1
            continue
        if result is None or result.status != ChargeOutcome.DECLINED:
            # Unpaid when its deadline passed, whatever the system still calls it.
            result = ChargeResult(
                ChargeOutcome.DECLINED,
                None if result is None else result.processor_reference,
                "expired",
                "The payment was not completed in time and has expired.",
                due.amount,
                due.currency,
            )
        await card_charges.record(session, [(due.payment_id, result)], now)
        expired += 1
    return paid, expired


async def _next_expiry(session: AsyncSession) -> datetime | None:
    """The earliest deadline of an open redirect payment; None when none is open."""
    return await session.scalar(
        select(func.min(Payment.expires_at)).where(
            Payment.method == PaymentChannel.REDIRECT, Payment.status == PaymentStatus.PENDING
        )
    )


@jobs.detached_handler(EXPIRY_JOB)
async def expiry_job(db: Database, payload: dict[str, Any], now: datetime) -> None:
    """The singleton job: running it twice changes nothing the second time."""
    await run_expiry(db, now)


# --- the steps ------------------------------------------------------------------------------


async def _account(session: AsyncSession, customer: Customer, account_id: int) -> ProcessorAccount:
    """The redirect account ``account_id`` if routing lets ``customer`` pay through it."""
    for account in await processor_accounts.accounts_for(
        session, customer, customer.currency, Capability.REDIRECT
    ):
        if account.id == account_id:
            return account
    raise NotFound("processor account", "processorAccountId")


def _processor(session: AsyncSession, account: ProcessorAccount) -> RedirectProcessor:
    processor = processor_accounts.make_processor(
        account.processor, processor_accounts.config_of(session, account)
    )
    assert isinstance(processor, RedirectProcessor), f"{account.processor} takes no redirects"
    return processor


async def _asking(
    session: AsyncSession, payment: Payment
) -> tuple[RedirectProcessor, RedirectStart]:
    """The processor of the payment's account and the redirect as the system opened it."""
    account = await session.get(ProcessorAccount, payment.processor_account_id)
    assert account is not None and payment.processor_reference is not None
    redirect = RedirectStart(
        url=payment.action_url or "",
        external_id=payment.processor_reference,
        expires_at=payment.expires_at,
    )
    return _processor(session, account), redirect


def _request(
    session: AsyncSession, customer: Customer, account: ProcessorAccount, payment: Payment
) -> RedirectRequest:
    """What the system is asked to open for ``payment``."""
    public_url = session.info["settings"].public_url
    back = public_url + RETURN_PATH.format(payment_id=payment.id)
    what = "Top-up" if payment.invoice_id is None else f"Invoice {payment.invoice_id}"
    assert payment.processor_key is not None
    return RedirectRequest(
        idempotency_key=payment.processor_key,
        amount=payment.amount,
        currency=payment.currency,
        description=f"{what} for {customer.name}",
        payer=Payer(customer_id=customer.id, name=customer.name, email=customer.email),
        return_url=back,
        cancel_url=f"{back}?{CANCEL_MARK}=1",
        notify_url=f"{public_url}/callbacks/{account.id}",
        phone=customer.phone,
    )
