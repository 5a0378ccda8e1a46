"""Distributors: sales agents who sign up customers and collect cash on commission, and
owe the provider the rest.

Administrators (the provider's: every distributor; a reseller's: its own) create and edit
them — terms, commission rates, credit limit and its warning, billing period, contact and
accounting address, how statistics are mailed, and a portal login — and record the
payments a distributor makes to the provider.  The money rules themselves (the split, the
credit limit, the warning) are in :mod:`billing.commissions`; what a distributor may do to
customers is in :mod:`billing.customers`, :mod:`billing.accounts` and
:mod:`billing.payments`.  ``docs/distributors.md`` walks through the money flow.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, commissions, distributor_billing, idempotency, ledger, users, validation
from billing.access import Viewer, require_staff, scope_distributors
from billing.customers import get_customer, open_period
from billing.errors import NotFound, UserError
from billing.models import (
    Customer,
    CustomerClass,
    Distributor,
    LedgerAccount,
    LedgerAccountKind,
    LedgerEntry,
    LedgerTransaction,
    Payment,
    Reseller,
    Role,
    StatisticsEmail,
    TransactionKind,
)
from billing.money import format_amount, validate_currency
from billing.periods import BillingPeriod, local_date, local_midnight_utc, validate_time_zone

#: The share of the credit limit a distributor is warned above, unless told otherwise.
DEFAULT_WARNING_PERCENT_BPS = 9000


@dataclass
class DistributorInput:
    """What an administrator sets on a distributor; ``None`` means "leave as is" on update.

    Amounts are minor units of the distributor's currency, rates basis points.  The warning
    threshold is a share of the credit limit *or* an amount: setting one clears the other.
    """

    name: str | None = None
    currency: str | None = None
    reseller_id: int | None = None
    class_id: int | None = None
    time_zone: str | None = None
    billing_period: BillingPeriod | None = None
    credit_limit: int | None = None
    sales_commission_bps: int | None = None
    payment_commission_bps: int | None = None
    contact_name: str | None = None
    phone: str | None = None
    address: str | None = None
    accounting_email: str | None = None
    warning_percent_bps: int | None = None
    warning_amount: int | None = None
    statistics_email: StatisticsEmail | None = None


@dataclass(frozen=True)
class LoginInput:
    """The portal login made with a distributor: a DISTRIBUTOR user."""

    email: str
    password: str
    time_zone: str | None = None
    language: str | None = None


def require_staff_or_distributor(viewer: Viewer) -> None:
    """Distributors are for their administrators and themselves; anyone else is refused."""
    if viewer.role != Role.DISTRIBUTOR:
        require_staff(viewer)


async def get_distributor(
    session: AsyncSession, viewer: Viewer, distributor_id: int
) -> Distributor:
    """The distributor if the viewer may see it (its staff, or itself); otherwise NotFound."""
    require_staff_or_distributor(viewer)
    distributor = await session.scalar(
        scope_distributors(select(Distributor), viewer).where(Distributor.id == distributor_id)
    )
    if distributor is None:
        raise NotFound("distributor")
    return distributor


def distributor_query(viewer: Viewer, search: str | None = None) -> Select:  # type: ignore[type-arg]
    """The distributors the viewer's staff look after, filtered by part of the name or
    accounting address; a distributor is not shown the list (it has ``viewer``)."""
    require_staff(viewer)
    search = validation.text(search, "search", 254)
    query = scope_distributors(select(Distributor), viewer)
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(
            or_(
                func.lower(Distributor.name).like(pattern),
                func.lower(Distributor.accounting_email).like(pattern),
            )
        )
    return query


# --- creating and changing ---------------------------------------------------------------


def _validate(data: DistributorInput) -> None:
    """Lengths, shapes and ranges; the threshold is one of its two forms, never both."""
    if data.name is not None:
        data.name = validation.required_text(data.name, "name", 200)
    data.contact_name = validation.text(data.contact_name, "contactName", 200)
    data.phone = validation.phone(data.phone)
    data.address = validation.text(data.address, "address", 500)
    data.accounting_email = validation.email(data.accounting_email, "accountingEmail")
    if data.time_zone is not None:
        data.time_zone = validate_time_zone(data.time_zone)
    if data.credit_limit is not None and data.credit_limit < 0:
        raise UserError("OUT_OF_RANGE", "the credit limit cannot be negative", "creditLimit")
    if data.warning_amount is not None and data.warning_amount < 0:
        raise UserError("OUT_OF_RANGE", "the warning amount cannot be negative", "warningAmount")
    if data.warning_percent_bps is not None and data.warning_amount is not None:
        raise UserError(
            "ONE_WARNING_THRESHOLD",
            "warn at a percentage of the credit limit or at an amount, not both",
            "warningAmount",
        )


async def _check_class(
    session: AsyncSession, class_id: int | None, reseller_id: int | None
) -> None:
    if class_id is not None:
        cls = await session.get(CustomerClass, class_id)
        if cls is None or cls.reseller_id != reseller_id:
            raise NotFound("customer class", "classId")


async def create_distributor(
    session: AsyncSession, viewer: Viewer, data: DistributorInput, login: LoginInput | None = None
) -> Distributor:
    """A distributor with its own ledger book, a first billing period, and perhaps a login.

    Only administrators create distributors (never a distributor).  Without a warning
    threshold it is warned above 90 % of its credit limit.
    """
    require_staff(viewer, write=True)
    if data.currency is None:
        raise UserError("REQUIRED", "currency is required", "currency")
    currency = validate_currency(data.currency)
    name = validation.required_text(data.name, "name", 200)
    _validate(data)
    reseller_id = viewer.reseller_id if viewer.reseller_id is not None else data.reseller_id
    if data.reseller_id is not None and (
        data.reseller_id != reseller_id or await session.get(Reseller, data.reseller_id) is None
    ):
        raise NotFound("reseller", "resellerId")
    await _check_class(session, data.class_id, reseller_id)
    time_zone = data.time_zone or "UTC"
    kind = data.billing_period or BillingPeriod.MONTHLY
    now = await clock.now(session)
    anchor = local_date(now, time_zone)
    start, ends_at = open_period(kind, anchor, anchor, time_zone)
    book = await ledger.open_party_book(
        session, LedgerAccountKind.DISTRIBUTOR, f"new:{uuid4().hex}", currency
    )
    no_threshold = data.warning_percent_bps is None and data.warning_amount is None
    distributor = Distributor(
        reseller_id=reseller_id,
        class_id=data.class_id,
        name=name,
        contact_name=data.contact_name,
        phone=data.phone,
        address=data.address,
        accounting_email=data.accounting_email,
        currency=currency,
        time_zone=time_zone,
        billing_period=kind,
        billing_anchor=anchor,
        period_start=start,
        next_bill_at=ends_at,
        credit_limit=data.credit_limit or 0,
        sales_commission_bps=data.sales_commission_bps or 0,
        payment_commission_bps=data.payment_commission_bps or 0,
        warning_percent_bps=DEFAULT_WARNING_PERCENT_BPS
        if no_threshold
        else data.warning_percent_bps,
        warning_amount=data.warning_amount,
        over_warning=False,
        statistics_email=data.statistics_email or StatisticsEmail.SUMMARY,
        ledger_account_id=book.id,
        created_at=now,
        updated_at=now,
    )
    session.add(distributor)
    await session.flush()
    book.owner_key = f"distributor:{distributor.id}"
    if login is not None:
        user = await users.create_user(
            session, login.email, login.password, Role.DISTRIBUTOR, distributor_id=distributor.id
        )
        users.set_preferences(user, login.time_zone, login.language)
    await session.flush()
    await session.refresh(distributor, ["ledger_account"])
    await distributor_billing.wake_at(session, ends_at)
    return distributor


async def update_distributor(
    session: AsyncSession, viewer: Viewer, distributor_id: int, data: DistributorInput
) -> Distributor:
    """Change a distributor's terms, rates, contact details or settings (administrators only:
    a distributor changes none of them, its commission rates least of all).

    Its currency and owner are fixed.  A new billing period starts from the open period's
    first day, so no day goes uninvoiced; a new time zone moves only the instant it ends.
    """
    require_staff(viewer, write=True)
    distributor = await get_distributor(session, viewer, distributor_id)
    if data.currency is not None and validate_currency(data.currency) != distributor.currency:
        raise UserError("CURRENCY_FIXED", "a distributor's currency cannot change", "currency")
    if data.reseller_id is not None and data.reseller_id != distributor.reseller_id:
        raise UserError(
            "NOT_ALLOWED", "a distributor cannot move to another reseller", "resellerId"
        )
    _validate(data)
    await _check_class(session, data.class_id, distributor.reseller_id)
    for field in (
        "name",
        "class_id",
        "contact_name",
        "phone",
        "address",
        "accounting_email",
        "credit_limit",
        "sales_commission_bps",
        "payment_commission_bps",
        "statistics_email",
    ):
        value = getattr(data, field)
        if value is not None:
            setattr(distributor, field, value)
    if data.warning_percent_bps is not None or data.warning_amount is not None:
        distributor.warning_percent_bps = data.warning_percent_bps
        distributor.warning_amount = data.warning_amount
    if data.billing_period is not None and data.billing_period != distributor.billing_period:
        distributor.billing_period = data.billing_period
        distributor.billing_anchor = distributor.period_start
    if data.time_zone is not None:
        distributor.time_zone = data.time_zone
    distributor.period_start, distributor.next_bill_at = open_period(
        distributor.billing_period,
        distributor.billing_anchor,
        distributor.period_start,
        distributor.time_zone,
    )
    distributor.updated_at = await clock.now(session)
    await session.flush()
    await distributor_billing.wake_at(session, distributor.next_bill_at)
    return distributor


# --- money ---------------------------------------------------------------------------------


async def record_distributor_payment(
    session: AsyncSession,
    viewer: Viewer,
    distributor_id: int,
    amount: int,
    idempotency_key: str,
    reference: str | None = None,
) -> LedgerTransaction:
    """The distributor pays the provider: its book goes down, the owner's cash book up.

    Administrators record it; a replay with the same key returns the first transaction.
    Paying more than it owes leaves the distributor in credit (a negative balance).
    """
    require_staff(viewer, write=True)
    await get_distributor(session, viewer, distributor_id)
    distributor = await commissions.lock_distributor(session, distributor_id)
    arguments = {"distributor": distributor_id, "amount": amount, "reference": reference}
    previous = await idempotency.replay(
        session, viewer.idempotency_scope, idempotency_key, "distributor_payment", arguments
    )
    if previous is not None:
        found = await session.get(LedgerTransaction, previous)
        assert found is not None
        return found
    if amount <= 0:
        raise UserError("AMOUNT_NOT_POSITIVE", "amount must be greater than zero", "amount")
    reference = validation.text(reference, "reference", 200)
    now = await clock.now(session)
    cash = await ledger.system_book(
        session, LedgerAccountKind.CASH, distributor.reseller_id, distributor.currency
    )
    txn = await ledger.post(
        session,
        TransactionKind.DISTRIBUTOR_PAYMENT,
        [
            ledger.Posting(distributor.ledger_account_id, -amount, distributor.currency),
            ledger.Posting(cash, amount, distributor.currency),
        ],
        at=now,
        description=f"Payment from {distributor.name}" + (f" ({reference})" if reference else ""),
        distributor_id=distributor.id,
    )
    await commissions.balance_moved(session, distributor, txn.id, now)
    await distributor_billing.settle(session, distributor, now)
    await idempotency.remember(
        session,
        viewer.idempotency_scope,
        idempotency_key,
        "distributor_payment",
        arguments,
        txn.id,
        now,
    )
    return txn


async def commission_preview(
    session: AsyncSession, viewer: Viewer, customer_id: int, amount: int
) -> tuple[commissions.Split, Distributor]:
    """What recording ``amount`` of cash from the customer would book: the same split
    :func:`billing.payments.record_payment` books for the customer's distributor."""
    require_staff_or_distributor(viewer)
    customer = await get_customer(session, viewer, customer_id)
    if customer.distributor_id is None:
        raise UserError("NO_DISTRIBUTOR", "the customer has no distributor", "customerId")
    if amount <= 0:
        raise UserError("AMOUNT_NOT_POSITIVE", "amount must be greater than zero", "amount")
    distributor = await session.get(Distributor, customer.distributor_id)
    assert distributor is not None
    return await commissions.preview(session, distributor, customer, amount), distributor


# --- the distributor's transactions -------------------------------------------------------


class DistributorTransactionKind(StrEnum):
    """What a movement of a distributor's book was, in the distributor's words.

    Its invoices are not among them: an invoice moves no money (every sale, collection and
    payment was booked when it happened), so as a row it would either count the same money
    twice or stand in the list with no amount, and the CSV's ``amount`` column would no
    longer add up to how far the balance moved.  They are ``Distributor.invoices``
    (:mod:`billing.distributor_billing`).
    """

    SALE = "SALE"
    COLLECTION = "COLLECTION"
    PAYMENT_TO_PROVIDER = "PAYMENT_TO_PROVIDER"
    REVERSAL = "REVERSAL"
    ADJUSTMENT = "ADJUSTMENT"


#: The ledger's kinds behind each of the distributor's.
LEDGER_KINDS: dict[DistributorTransactionKind, tuple[TransactionKind, ...]] = {
    DistributorTransactionKind.SALE: (TransactionKind.OPENING_BALANCE,),
    DistributorTransactionKind.COLLECTION: (TransactionKind.PAYMENT,),
    DistributorTransactionKind.PAYMENT_TO_PROVIDER: (TransactionKind.DISTRIBUTOR_PAYMENT,),
    DistributorTransactionKind.REVERSAL: (
        TransactionKind.VOID,
        TransactionKind.REVERSAL,
        TransactionKind.REFUND,
    ),
    DistributorTransactionKind.ADJUSTMENT: (TransactionKind.ADJUSTMENT,),
}
_KIND_OF = {ledger_kind: kind for kind, kinds in LEDGER_KINDS.items() for ledger_kind in kinds}


def kind_of(ledger_kind: TransactionKind) -> DistributorTransactionKind:
    return _KIND_OF[ledger_kind]


def transaction_query(
    distributor: Distributor,
    kinds: list[DistributorTransactionKind] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select:  # type: ignore[type-arg]
    """The distributor's transactions, one row each: ``id``, ``kind``, ``description``,
    ``created_at``, ``customer_id``, ``customer_name``, ``amount`` (what it did to the
    distributor's balance), ``commission`` (what the distributor kept; negative when a
    void took it back), and ``payment_id`` (the collection, or the collection voided).  ``until`` is exclusive, so periods abut; unordered (page by id)."""

    def legs(*where: Any) -> Any:
        return (
            select(func.coalesce(func.sum(LedgerEntry.amount), 0))
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.ledger_account_id)
            .where(LedgerEntry.transaction_id == LedgerTransaction.id, *where)
            .scalar_subquery()
        )

    payment = (
        select(Payment.id)
        .where(
            Payment.transaction_id
            == func.coalesce(LedgerTransaction.reverses_id, LedgerTransaction.id)
        )
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(
            LedgerTransaction.id,
            LedgerTransaction.kind,
            LedgerTransaction.description,
            LedgerTransaction.created_at,
            LedgerTransaction.customer_id,
            Customer.name.label("customer_name"),
            legs(LedgerEntry.ledger_account_id == distributor.ledger_account_id).label("amount"),
            legs(LedgerAccount.kind == LedgerAccountKind.COMMISSION).label("commission"),
            payment.label("payment_id"),
        )
        .outerjoin(Customer, Customer.id == LedgerTransaction.customer_id)
        .where(LedgerTransaction.distributor_id == distributor.id)
    )
    if kinds:
        query = query.where(
            LedgerTransaction.kind.in_([k for kind in kinds for k in LEDGER_KINDS[kind]])
        )
    if since is not None:
        query = query.where(LedgerTransaction.created_at >= since)
    if until is not None:
        query = query.where(LedgerTransaction.created_at < until)
    return query


async def commission_this_period(session: AsyncSession, distributor: Distributor) -> int:
    """What the distributor kept since its open billing period began (local midnight)."""
    since = local_midnight_utc(distributor.period_start, distributor.time_zone)
    rows = transaction_query(distributor, since=since).subquery()
    return int(await session.scalar(select(func.coalesce(func.sum(rows.c.commission), 0))) or 0)


#: The most rows one CSV export holds: narrow the dates for more.
MAX_CSV_ROWS = 10_000

CSV_HEADER = (
    "date",
    "kind",
    "customer",
    "description",
    "gross",
    "commission",
    "amount",
    "currency",
)


async def transactions_csv(
    session: AsyncSession,
    distributor: Distributor,
    kinds: list[DistributorTransactionKind] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> str:
    """The transactions as CSV, oldest first: times in the distributor's own time zone,
    amounts as decimals; ``gross`` = amount + commission (what changed hands with the end
    user, or the payment to the provider)."""
    query = transaction_query(distributor, kinds, since, until)
    count = await session.scalar(select(func.count()).select_from(query.subquery()))
    if (count or 0) > MAX_CSV_ROWS:
        raise UserError(
            "TOO_MANY_ROWS", f"at most {MAX_CSV_ROWS} rows per export: narrow the dates", "from"
        )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in (await session.execute(query.order_by(LedgerTransaction.id))).all():
        amount, commission = int(row.amount), int(row.commission)
        writer.writerow(
            (
                _local_iso(row.created_at, distributor.time_zone),
                kind_of(row.kind).value,
                row.customer_name or "",
                row.description,
                format_amount(amount + commission, distributor.currency),
                format_amount(commission, distributor.currency),
                format_amount(amount, distributor.currency),
                distributor.currency,
            )
        )
    return out.getvalue()


def _local_iso(instant: datetime, time_zone: str) -> str:
    return instant.astimezone(ZoneInfo(time_zone)).isoformat(timespec="seconds")
