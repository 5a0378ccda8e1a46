"""Cash slips: a customer pays in cash at a store (PayNearMe) against one standing slip.

**The slip** (:func:`request_slip`).  A customer whose owner's processor accounts include one
with :attr:`~billing.payment_systems.Capability.VOUCHER` in the customer's currency (routed
as every payment is, :func:`billing.processor_accounts.route`) gets one standing order at
that system under kassa's reference ``slip-<customer id>``, made on first request and kept in
``cash_slips`` (one row per customer).  The system's call happens outside any transaction; it
is idempotent on the reference itself (the processor finds the order before making one), and
the row is inserted "or nothing", so two first requests at once leave one order and one row.
The same slip pays any amount, any number of times.

**The callbacks** (through :mod:`billing.payment_notifications`, verified before they get
here; the notification names the slip by ``idempotency_key`` = the reference and the store
payment by ``processor_reference``):

* *authorization* (:func:`authorize`) — accepted only for a slip kassa made through this
  account, whose customer is not closed and pays in the notification's currency; otherwise
  refused with a reason the register prints.  Nothing is written: a resent question is
  answered afresh.
* *confirmation* (:func:`book`) — the cash was taken: a COMPLETED payment of channel
  PAYNEARME is booked at once by :func:`billing.payments.book_received` (customer −,
  processor book +, invoices oldest first) under the unique processor key
  ``<processor>:<account>:<payment id>``, so one store payment is credited once however
  often it is confirmed.  The confirmation is credited even when the customer closed since
  the authorization: the cash was taken.  One in another currency than the customer's is
  kept PENDING with ``flagged_reason`` for an administrator, never credited.
* *reversal* — the payment is found by its ``processor_reference`` and reversed as any
  chargeback is (:mod:`billing.payment_notifications`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, customers, metrics, payments, processor_accounts
from billing.access import Viewer, require_self_or_staff, scope_customers
from billing.card_charges import Transactions
from billing.errors import NotFound, UserError
from billing.models import (
    CashSlip,
    Customer,
    CustomerStatus,
    Payment,
    PaymentChannel,
    PaymentStatus,
    ProcessorAccount,
)
from billing.payment_systems import Capability, Notification, Payer, VoucherProcessor
from billing.processing import ProcessorError
from billing.settlement import open_invoices

log = logging.getLogger("kassa.billing.cash_slips")

#: The steps the customer follows at the store, as the portal's slip and the PDF print them.
HOW_TO_PAY = (
    "Take this slip to any of the stores listed above: printed, or on your phone's screen.",
    "Tell the cashier you are making a PayNearMe payment.",
    "The cashier scans the barcode and you pay in cash (the store may charge a small fee).",
    "Keep the receipt. The payment reaches your account within minutes.",
)
#: kassa's reference for a customer's standing order: ``slip-<customer id>``.
REFERENCE_PREFIX = "slip-"


def reference(customer_id: int) -> str:
    """The reference the customer's standing order is opened under."""
    return f"{REFERENCE_PREFIX}{customer_id}"


def _customer_of(slip_reference: str | None) -> int | None:
    """The customer a reference names, or None when it is not a slip's."""
    if not slip_reference or not slip_reference.startswith(REFERENCE_PREFIX):
        return None
    digits = slip_reference.removeprefix(REFERENCE_PREFIX)
    return int(digits) if digits.isdigit() and len(digits) <= 18 else None


def where_to_pay(slip: CashSlip) -> list[str]:
    """The store chains the slip is paid at."""
    return [name for name in slip.where_to_pay.splitlines() if name]


@dataclass(frozen=True, slots=True)
class SlipDetails:
    """What a printed slip shows: the slip, whose it is, and what they owe now (None: any
    amount — nothing is due, a payment is credit)."""

    slip: CashSlip
    customer_name: str
    currency: str
    amount_due: int | None


async def _customer(session: AsyncSession, viewer: Viewer, customer_id: int) -> Customer:
    customer = await session.scalar(
        scope_customers(select(Customer).where(Customer.id == customer_id), viewer)
    )
    if customer is None:
        raise NotFound("customer", "customerId")
    require_self_or_staff(viewer, customer)
    return customer


async def _account(session: AsyncSession, customer: Customer) -> ProcessorAccount | None:
    """The account the customer's slip is opened through; None when none is offered."""
    try:
        return await processor_accounts.route(
            session, customer, customer.currency, None, Capability.VOUCHER
        )
    except UserError:
        return None


async def offered(session: AsyncSession, viewer: Viewer, customer_id: int) -> bool:
    """Whether the customer can pay with a cash slip: not closed (its payments would be
    refused at the register), and one was made already or an account can make it."""
    customer = await _customer(session, viewer, customer_id)
    if customer.status == CustomerStatus.CLOSED:
        return False
    if await _slip_row(session, customer.id) is not None:
        return True
    return await _account(session, customer) is not None


async def _slip_row(session: AsyncSession, customer_id: int) -> CashSlip | None:
    return await session.scalar(select(CashSlip).where(CashSlip.customer_id == customer_id))


async def details(session: AsyncSession, customer: Customer, slip: CashSlip) -> SlipDetails:
    """The slip as printed: the amount due is what the open invoices still need."""
    due = sum(invoice.outstanding for invoice in await open_invoices(session, customer.id))
    return SlipDetails(slip, customer.name, customer.currency, due if due > 0 else None)


async def slip_of(session: AsyncSession, viewer: Viewer, customer_id: int) -> SlipDetails | None:
    """The customer's slip as printed, or None before one was made."""
    customer = await _customer(session, viewer, customer_id)
    slip = await _slip_row(session, customer.id)
    return None if slip is None else await details(session, customer, slip)


async def request_slip(transactions: Transactions, viewer: Viewer, customer_id: int) -> int:
    """The customer's standing slip, made on first request (see the module); its row id.

    The customer or staff; CASH_SLIPS_NOT_OFFERED when no account of the customer's owners
    takes cash slips in the customer's currency (or the customer is closed);
    PAYMENT_SYSTEM_UNAVAILABLE when the system could not be reached or refused.
    """
    async with transactions() as session:
        customer = await _customer(session, viewer, customer_id)
        require_self_or_staff(viewer, customer, write=True)
        existing = await _slip_row(session, customer.id)
        if existing is not None:
            return existing.id
        account = (
            None if customer.status == CustomerStatus.CLOSED else await _account(session, customer)
        )
        if account is None:
            raise UserError(
                "CASH_SLIPS_NOT_OFFERED",
                "cash slips are not offered to this customer",
                "customerId",
            )
        processor = processor_accounts.make_processor(
            account.processor, processor_accounts.config_of(session, account)
        )
        payer = Payer(customer.id, customer.name, customer.email)
        currency, account_id = customer.currency, account.id
    if not isinstance(processor, VoucherProcessor):
        raise UserError(
            "CASH_SLIPS_NOT_OFFERED", "this payment system makes no slips", "customerId"
        )
    try:
        made = await processor.create_slip(payer, currency, reference(customer_id))
    except ProcessorError as error:
        log.warning(
            "customer %s: no cash slip from account %s: %s", customer_id, account_id, error.code
        )
        raise UserError(
            "PAYMENT_SYSTEM_UNAVAILABLE",
            "the cash payment system could not make a slip now; try again later",
            "customerId",
        ) from None
    async with transactions() as session:
        dialect = session.bind.dialect.name  # type: ignore[union-attr]
        insert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(CashSlip)
        await session.execute(
            insert.values(
                customer_id=customer_id,
                processor_account_id=account_id,
                payment_identifier=made.payment_identifier[:100],
                external_id=made.external_id[:100],
                where_to_pay="\n".join(made.where_to_pay)[:1000],
                created_at=await clock.now(session),
            ).on_conflict_do_nothing(index_elements=["customer_id"])
        )
        row = await _slip_row(session, customer_id)
        assert row is not None
        return row.id


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a store may take the customer's cash, and the words printed at the register."""

    accepted: bool
    reason: str


async def authorize(session: AsyncSession, account_id: int, notification: Notification) -> Decision:
    """Accept a payment against a slip this account made for an open customer (module)."""
    customer_id = _customer_of(notification.idempotency_key)
    slip = None if customer_id is None else await _slip_row(session, customer_id)
    if slip is None or slip.processor_account_id != account_id:
        return Decision(False, "Unknown account: this slip is not valid.")
    customer = await session.get(Customer, slip.customer_id)
    assert customer is not None
    if customer.status == CustomerStatus.CLOSED:
        return Decision(False, "This account is closed: payment not accepted.")
    if notification.currency is not None and notification.currency.upper() != customer.currency:
        return Decision(False, f"This account is paid in {customer.currency} only.")
    return Decision(True, f"Thank you. Paid to the account of {customer.name}.")


def processor_key(account: ProcessorAccount, payment_reference: str) -> str:
    """The unique key of a store payment: one payment per system payment id."""
    return f"{account.processor}:{account.id}:{payment_reference}"


async def book(
    session: AsyncSession, account_id: int, notification: Notification, now: datetime
) -> Payment | None:
    """Credit a confirmed store payment once (module); None when the notification is about
    no slip of this account's."""
    customer_id = _customer_of(notification.idempotency_key)
    account = await session.get(ProcessorAccount, account_id)
    slip = None if customer_id is None else await _slip_row(session, customer_id)
    if (
        account is None
        or slip is None
        or slip.processor_account_id != account_id
        or not notification.processor_reference
        or notification.amount is None
        or notification.amount <= 0
    ):
        return None
    [customer] = await customers.lock_customers(session, {slip.customer_id})
    key = processor_key(account, notification.processor_reference)
    found = await session.scalar(select(Payment).where(Payment.processor_key == key))
    if found is not None:
        return found
    currency = (notification.currency or customer.currency).upper()
    payment = Payment(
        customer_id=customer.id,
        method=PaymentChannel.PAYNEARME,
        amount=notification.amount,
        currency=currency,
        refunded_amount=0,
        status=PaymentStatus.PENDING,
        reference=notification.processor_reference,
        received_at=now,
        processor=account.processor,
        processor_account_id=account.id,
        processor_key=key,
        processor_reference=notification.processor_reference,
        message=notification.message[:500] or None,
    )
    session.add(payment)
    await session.flush()
    if currency != customer.currency:
        payment.flagged_reason = f"paid in {currency}, the customer pays in {customer.currency}"
        await session.flush()
        log.warning("payment %s: a cash payment in another currency, not credited", payment.id)
        return payment
    await payments.book_received(session, customer, payment, now)
    metrics.PAYMENTS.labels(PaymentChannel.PAYNEARME, "completed").inc()
    return payment


async def printable(session: AsyncSession, customer_id: int) -> SlipDetails | None:
    """The customer's slip as printed, for a signed download link (which is the permission
    itself: no viewer is asked); None when the customer has none."""
    customer = await session.get(Customer, customer_id)
    slip = await _slip_row(session, customer_id)
    return None if customer is None or slip is None else await details(session, customer, slip)
