"""Customers, their classes and resellers: create, update, find, list.

Creating a customer opens its ledger book, posts any opening balance, fixes its billing
anchor and first period, and makes sure the bill run will wake up when that period ends.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import Row, Select, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import (
    billrun,
    clock,
    collection,
    commissions,
    idempotency,
    ledger,
    status_changes,
    validation,
)
from billing.access import (
    Viewer,
    may_see_customer,
    require_provider_admin,
    require_staff,
    require_write,
    scope_customers,
)
from billing.errors import Forbidden, NotFound, UserError
from billing.fixed_reads import FixedRead
from billing.models import (
    Customer,
    CustomerClass,
    CustomerStatus,
    Distributor,
    InvoiceKind,
    LedgerAccount,
    LedgerAccountKind,
    LedgerEntry,
    LedgerTransaction,
    Reseller,
    Role,
    StatusSubject,
    TransactionKind,
)
from billing.money import validate_currency
from billing.periods import (
    BillingPeriod,
    local_date,
    period_containing,
    validate_time_zone,
)


@dataclass
class CustomerInput:
    """What a caller may set on a customer; ``None`` means "leave as is" on update."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    currency: str | None = None
    time_zone: str | None = None
    billing_period: BillingPeriod | None = None
    credit_limit: int | None = None
    opening_balance: int | None = None
    status: CustomerStatus | None = None
    class_id: int | None = None
    reseller_id: int | None = None
    distributor_id: int | None = None
    auto_payment: bool | None = None


async def get_customer(session: AsyncSession, viewer: Viewer, customer_id: int) -> Customer:
    """The customer with ``customer_id`` if the viewer may see it; otherwise NotFound."""
    customer = await session.get(Customer, customer_id)
    if customer is None or not may_see_customer(viewer, customer):
        raise NotFound("customer")
    return customer


#: :func:`get_customer_with_balance`'s statement, built once (it runs on every dashboard): the
#: customer's columns, not an ORM object — a customer's page only reads it, and building the
#: ORM instance cost more than the statement.
_WITH_BALANCE = FixedRead(
    select(*Customer.__table__.c, LedgerAccount.__table__.c.balance.label("ledger_balance"))
    .join_from(
        Customer.__table__,
        LedgerAccount.__table__,
        LedgerAccount.__table__.c.id == Customer.__table__.c.ledger_account_id,
    )
    .where(Customer.__table__.c.id == bindparam("customer_id"))
)


async def get_customer_with_balance(
    session: AsyncSession, viewer: Viewer, customer_id: int
) -> tuple[Row[*tuple[Any, ...]], int]:
    """:func:`get_customer` as a row of the customer's columns, and its balance, in one
    statement.

    The balance is read as a column, never from the identity map: the ledger moves it with
    ``UPDATE … balance + delta``, which loaded objects do not see.  One statement instead of
    two is what a customer's page (the API dashboard, the portal) opens with.
    """
    found = await _WITH_BALANCE.one_or_none(session, {"customer_id": customer_id})
    if found is None or not may_see_customer(viewer, found):
        raise NotFound("customer")
    return found, int(found.ledger_balance)


async def get_customer_for_update(
    session: AsyncSession, viewer: Viewer, customer_id: int
) -> Customer:
    """Like :func:`get_customer` but the row stays locked to the end of the transaction.

    Money operations on one customer serialise here, so allocations and invoice numbers
    never race (PostgreSQL; SQLite has one writer anyway).
    """
    query = select(Customer).where(Customer.id == customer_id)
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        query = query.with_for_update(of=Customer)
    customer = await session.scalar(query.execution_options(populate_existing=True))
    if customer is None or not may_see_customer(viewer, customer):
        raise NotFound("customer")
    return customer


async def lock_customers(session: AsyncSession, customer_ids: set[int]) -> list[Customer]:
    """Many customers, locked as :func:`get_customer_for_update` locks one (in id order, so
    two batch writers never deadlock); for the system's own batch work, unscoped."""
    query = select(Customer).where(Customer.id.in_(sorted(customer_ids))).order_by(Customer.id)
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        query = query.with_for_update(of=Customer)
    return list((await session.scalars(query.execution_options(populate_existing=True))).all())


#: The longest customer search or e-mail filter: an e-mail address's 254 characters.
MAX_SEARCH_LENGTH = 254


def customer_query(
    viewer: Viewer,
    *,
    status: CustomerStatus | None = None,
    search: str | None = None,
    email: str | None = None,
) -> Select:  # type: ignore[type-arg]
    """Customers the viewer may see, filtered by status, name/e-mail search or exact e-mail.

    A search longer than :data:`MAX_SEARCH_LENGTH` is refused (``TOO_LONG``): it could match
    nothing, and would only have the database scan every name with a huge pattern.
    """
    search = validation.text(search, "search", MAX_SEARCH_LENGTH)
    email = validation.text(email, "email", MAX_SEARCH_LENGTH)
    query = scope_customers(select(Customer), viewer)
    if status is not None:
        query = query.where(Customer.status == status)
    if email:
        query = query.where(func.lower(Customer.email) == email.lower())
    if search:
        # Typed text, not a pattern: "%" and "_" match themselves (escaped with "\\").
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(
                func.lower(Customer.name).like(pattern, escape="\\"),
                func.lower(Customer.email).like(pattern, escape="\\"),
            )
        )
    return query


async def _check_refs(
    session: AsyncSession, viewer: Viewer, data: CustomerInput, currency: str
) -> None:
    """Class, reseller and distributor must exist and belong to the viewer's reseller, and
    the distributor must work in the customer's ``currency`` or have a rate from it."""
    reseller_id = viewer.reseller_id if viewer.reseller_id is not None else data.reseller_id
    if data.reseller_id is not None:
        if viewer.reseller_id is not None and data.reseller_id != viewer.reseller_id:
            raise NotFound("reseller", "resellerId")
        if await session.get(Reseller, data.reseller_id) is None:
            raise NotFound("reseller", "resellerId")
    if data.class_id is not None:
        cls = await session.get(CustomerClass, data.class_id)
        if cls is None or cls.reseller_id != reseller_id:
            raise NotFound("customer class", "classId")
    if data.distributor_id is not None:
        distributor = await session.get(Distributor, data.distributor_id)
        if distributor is None or distributor.reseller_id != reseller_id:
            raise NotFound("distributor", "distributorId")
        await commissions.conversion_rate(session, distributor, currency, "distributorId")


def _validate_common(data: CustomerInput) -> None:
    if data.name is not None:
        data.name = validation.required_text(data.name, "name", 200)
    data.email = validation.email(data.email)
    data.phone = validation.phone(data.phone)
    data.address = validation.text(data.address, "address", 500)
    if data.time_zone is not None:
        data.time_zone = validate_time_zone(data.time_zone)
    if data.credit_limit is not None and data.credit_limit < 0:
        raise UserError("OUT_OF_RANGE", "the credit limit cannot be negative", "creditLimit")


def open_period(
    kind: BillingPeriod, anchor: date, day: date, time_zone: str
) -> tuple[date, datetime]:
    """The first local day of the period containing ``day`` and the UTC instant it ends."""
    period = period_containing(kind, day, anchor)
    return period.start, period.end_utc(time_zone)


#: What a distributor may not set on the customers it signs up: they are its own, under its
#: owner, active, and in whatever class the owner's staff put them.
DISTRIBUTOR_REFUSED_FIELDS = {
    "class_id": "classId",
    "reseller_id": "resellerId",
    "status": "status",
}


async def _as_distributor(session: AsyncSession, viewer: Viewer, data: CustomerInput) -> None:
    """A distributor signs up customers of its own: the customer is given the distributor
    and its owner; asking for another distributor, a class, reseller or status is refused."""
    require_write(viewer)
    asked = [api for name, api in DISTRIBUTOR_REFUSED_FIELDS.items() if getattr(data, name)]
    if data.distributor_id not in (None, viewer.distributor_id):
        asked.append("distributorId")
    if asked:
        raise Forbidden(f"a distributor may not choose a customer's {', '.join(asked)}")
    assert viewer.distributor_id is not None
    distributor = await session.get(Distributor, viewer.distributor_id)
    assert distributor is not None
    data.distributor_id = distributor.id
    data.reseller_id = distributor.reseller_id


def require_distributor_sells_credit(viewer: Viewer, opening_balance: int | None) -> None:
    """A distributor's opening balance is credit it sold (negative), never a debt: it cannot
    make a customer owe money it never lent."""
    if viewer.role == Role.DISTRIBUTOR and opening_balance and opening_balance > 0:
        raise UserError(
            "NOT_ALLOWED",
            "a distributor's opening balance is prepaid credit: send it negative",
            "openingBalance",
        )


async def create_customer(
    session: AsyncSession, viewer: Viewer, data: CustomerInput, idempotency_key: str | None = None
) -> Customer:
    """Open a customer; with ``idempotency_key`` (required with an opening balance) a replay
    returns the customer the first call made.

    Staff open any customer of their owner; a distributor opens its own (postpaid, or
    prepaid with opening credit it sold, which books its sales commission).
    """
    if viewer.role == Role.DISTRIBUTOR:
        await _as_distributor(session, viewer, data)
    else:
        require_staff(viewer, write=True)
    idempotency.require_for_money(idempotency_key, data.opening_balance, "openingBalance")
    if data.currency is None:
        raise UserError("REQUIRED", "currency is required", "currency")
    data.currency = validate_currency(data.currency)  # before the key's arguments
    arguments = asdict(data)
    if idempotency_key:
        previous = await idempotency.replay(
            session, viewer.idempotency_scope, idempotency_key, "create_customer", arguments
        )
        if previous is not None:
            return await get_customer(session, viewer, previous)
    data.name = validation.required_text(data.name, "name", 200)
    data.time_zone = validate_time_zone(data.time_zone or "UTC")
    _validate_common(data)
    require_distributor_sells_credit(viewer, data.opening_balance)
    await _check_refs(session, viewer, data, data.currency)
    reseller_id = viewer.reseller_id if viewer.reseller_id is not None else data.reseller_id
    now = await clock.now(session)
    kind = data.billing_period or BillingPeriod.MONTHLY
    anchor = local_date(now, data.time_zone)
    start, ends_at = open_period(kind, anchor, anchor, data.time_zone)
    book = await ledger.open_party_book(
        session,
        LedgerAccountKind.CUSTOMER,
        f"new:{uuid4().hex}",
        data.currency,
    )
    customer = Customer(
        reseller_id=reseller_id,
        distributor_id=data.distributor_id,
        class_id=data.class_id,
        name=data.name,
        email=data.email,
        phone=data.phone,
        address=data.address,
        currency=data.currency,
        time_zone=data.time_zone,
        billing_period=kind,
        billing_anchor=anchor,
        period_start=start,
        next_bill_at=ends_at,
        credit_limit=data.credit_limit or 0,
        status=data.status or CustomerStatus.ACTIVE,
        auto_payment=bool(data.auto_payment),
        ledger_account_id=book.id,
        created_at=now,
        updated_at=now,
    )
    session.add(customer)
    await session.flush()
    book.owner_key = f"customer:{customer.id}"
    if data.opening_balance:
        await post_opening_balance(session, customer, data.opening_balance, now)
    await billrun.wake_at(session, ends_at)
    if idempotency_key:
        await idempotency.remember(
            session,
            viewer.idempotency_scope,
            idempotency_key,
            "create_customer",
            arguments,
            customer.id,
            now,
        )
    await session.refresh(customer, ["ledger_account"])
    return customer


async def post_opening_balance(
    session: AsyncSession,
    customer: Customer,
    amount: int,
    at: datetime,
    account_id: int | None = None,
) -> None:
    """Bring over what the customer owed (positive) or had in credit (negative) elsewhere.

    Credit given to a distributor's customer is credit the distributor sold: booked as its
    sale (:func:`billing.commissions.sell`), with the customer's book as the source.
    """
    if customer.distributor_id is not None and amount < 0:
        await commissions.sell(
            session, customer, customer.ledger_account_id, -amount, at, account_id
        )
        return
    equity = await _opening_balance_book(session, customer)
    await ledger.post(
        session,
        TransactionKind.OPENING_BALANCE,
        [
            ledger.Posting(customer.ledger_account_id, amount, customer.currency, account_id),
            ledger.Posting(equity, -amount, customer.currency, account_id),
        ],
        at=at,
        description="Opening balance",
        customer_id=customer.id,
    )


async def _opening_balance_book(session: AsyncSession, customer: Customer) -> int:
    return await ledger.system_book(
        session, LedgerAccountKind.OPENING_BALANCE, customer.reseller_id, customer.currency
    )


async def sell_opening_credit(session: AsyncSession, customer: Customer, at: datetime) -> None:
    """A distributor assigned to a customer sells the customer's opening credit, once.

    The credit was booked against the opening-balance book when no distributor had it; the
    sale moves it from that book onto the distributor (net) and the commission book, the
    customer's own balance untouched.  Credit sold once — by this or an earlier
    distributor — is never sold again.
    """
    opening = (
        select(LedgerTransaction.id)
        .where(
            LedgerTransaction.customer_id == customer.id,
            LedgerTransaction.kind == TransactionKind.OPENING_BALANCE,
        )
        .subquery()
    )
    sold = await session.scalar(
        select(func.count())
        .select_from(LedgerTransaction)
        .where(
            LedgerTransaction.id.in_(select(opening.c.id)),
            LedgerTransaction.distributor_id.is_not(None),
        )
    )
    if sold:
        return
    credit = -int(
        await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                LedgerEntry.transaction_id.in_(select(opening.c.id)),
                LedgerEntry.ledger_account_id == customer.ledger_account_id,
            )
        )
        or 0
    )
    if credit > 0:
        await commissions.sell(
            session, customer, await _opening_balance_book(session, customer), credit, at
        )


#: What only staff change on a customer, with the API's names for the refusal.
STAFF_ONLY_FIELDS = {
    "credit_limit": "creditLimit",
    "status": "status",
    "class_id": "classId",
    "distributor_id": "distributorId",
}


def _refuse_staff_fields(data: CustomerInput) -> None:
    """A customer edits its own contact details, time zone and automatic payment, nothing
    else.  Asking for more is refused, not quietly dropped: a client that believes it raised
    its own credit limit must hear that it did not."""
    asked = [api for name, api in STAFF_ONLY_FIELDS.items() if getattr(data, name) is not None]
    if asked:
        raise Forbidden(f"only staff may change a customer's {', '.join(asked)}")


async def update_customer(
    session: AsyncSession, viewer: Viewer, customer_id: int, data: CustomerInput
) -> Customer:
    """Change contact details, terms or status.  Currency is fixed once money has moved."""
    customer = await get_customer(session, viewer, customer_id)
    if viewer.customer_id == customer.id:
        _refuse_staff_fields(data)
    else:
        require_staff(viewer, write=True)
    if data.currency is not None and validate_currency(data.currency) != customer.currency:
        raise UserError("CURRENCY_FIXED", "a customer's currency cannot change", "currency")
    if data.opening_balance is not None:
        raise UserError("NOT_ALLOWED", "the opening balance is set when creating", "openingBalance")
    if data.reseller_id is not None and data.reseller_id != customer.reseller_id:
        raise UserError("NOT_ALLOWED", "a customer cannot move to another reseller", "resellerId")
    _validate_common(data)
    data.reseller_id = customer.reseller_id
    await _check_refs(session, viewer, data, customer.currency)
    assigned = data.distributor_id is not None and customer.distributor_id is None
    if data.status is not None and data.status != customer.status:
        await status_changes.record(
            session,
            status_changes.Change(
                StatusSubject.CUSTOMER,
                customer.id,
                customer.id,
                customer.status.value,
                data.status.value,
                status_changes.Cause.STAFF,
                viewer.idempotency_scope,
            ),
            await clock.now(session),
        )
    for field in (
        "name",
        "email",
        "phone",
        "address",
        "class_id",
        "distributor_id",
        "credit_limit",
        "status",
        "auto_payment",
    ):
        value = getattr(data, field)
        if value is not None:
            setattr(customer, field, value)
    if data.time_zone is not None and data.time_zone != customer.time_zone:
        # The open period keeps its local dates; only the instant it ends moves.
        customer.time_zone = data.time_zone
        _, customer.next_bill_at = open_period(
            customer.billing_period,
            customer.billing_anchor,
            customer.period_start,
            customer.time_zone,
        )
        await billrun.wake_at(session, customer.next_bill_at)
    customer.updated_at = await clock.now(session)
    await session.flush()
    if assigned:
        await sell_opening_credit(session, customer, customer.updated_at)
    return customer


# --- customer classes and resellers ---------------------------------------------------------


CollectionSettingsByKind = dict[InvoiceKind, "collection.SettingsInput"]


async def _save_collection_settings(
    session: AsyncSession, cls: CustomerClass, settings: CollectionSettingsByKind | None
) -> None:
    """Per-kind terms and collection rules (:mod:`billing.collection`)."""
    for kind, data in (settings or {}).items():
        await collection.save_settings(session, cls.id, kind, data)


async def create_customer_class(
    session: AsyncSession,
    viewer: Viewer,
    name: str,
    payment_terms_days: int,
    grace_period_days: int,
    settings: CollectionSettingsByKind | None = None,
    issue_empty_invoices: bool = False,
) -> CustomerClass:
    """A class; ``settings`` set how its REGULAR and OUT_OF_TURN invoices are collected, and
    ``issue_empty_invoices`` whether a period with nothing on it is invoiced all the same."""
    require_staff(viewer, write=True)
    cls = CustomerClass(
        reseller_id=viewer.reseller_id,
        name=validation.required_text(name, "name", 100),
        payment_terms_days=validation.non_negative_int(payment_terms_days, "paymentTermsDays"),
        grace_period_days=validation.non_negative_int(grace_period_days, "gracePeriodDays"),
        issue_empty_invoices=issue_empty_invoices,
    )
    session.add(cls)
    await session.flush()
    await _save_collection_settings(session, cls, settings)
    return cls


async def get_customer_class(session: AsyncSession, viewer: Viewer, class_id: int) -> CustomerClass:
    cls = await session.get(CustomerClass, class_id)
    if cls is None or not viewer.is_staff or cls.reseller_id != viewer.reseller_id:
        raise NotFound("customer class")
    return cls


async def update_customer_class(
    session: AsyncSession,
    viewer: Viewer,
    class_id: int,
    name: str | None,
    payment_terms_days: int | None,
    grace_period_days: int | None,
    settings: CollectionSettingsByKind | None = None,
    issue_empty_invoices: bool | None = None,
) -> CustomerClass:
    """Change a class; terms and rules apply to invoices issued from now on."""
    require_staff(viewer, write=True)
    cls = await get_customer_class(session, viewer, class_id)
    if name is not None:
        cls.name = validation.required_text(name, "name", 100)
    if payment_terms_days is not None:
        cls.payment_terms_days = validation.non_negative_int(payment_terms_days, "paymentTermsDays")
    if grace_period_days is not None:
        cls.grace_period_days = validation.non_negative_int(grace_period_days, "gracePeriodDays")
    if issue_empty_invoices is not None:
        cls.issue_empty_invoices = issue_empty_invoices
    await session.flush()
    await _save_collection_settings(session, cls, settings)
    return cls


def customer_class_query(viewer: Viewer) -> Select:  # type: ignore[type-arg]
    require_staff(viewer)
    return select(CustomerClass).where(
        CustomerClass.reseller_id.is_(None)
        if viewer.reseller_id is None
        else CustomerClass.reseller_id == viewer.reseller_id
    )


async def create_reseller(
    session: AsyncSession, viewer: Viewer, name: str, email: str | None
) -> Reseller:
    """Only the provider's own administrators create resellers."""
    require_provider_admin(viewer)
    reseller = Reseller(
        name=validation.required_text(name, "name", 200), email=validation.email(email)
    )
    session.add(reseller)
    await session.flush()
    return reseller
