"""Distributors: administrators create and edit them and record their payments; a
distributor sees itself, previews commissions and reads its transactions."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Row, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import commissions, customers, distributors
from billing.access import scope_customers
from billing.errors import UserError
from billing.models import Customer, Distributor, LedgerTransaction
from billing.money import parse_amount, parse_percent, parse_positive_amount
from billing.periods import Period, local_date, period_containing, validate_time_zone
from resolvers.context import Context
from schema.relay import decode_id, decode_optional_id

if TYPE_CHECKING:
    from schema.distributors import (
        CreateDistributorInput,
        RecordDistributorPaymentInput,
        UpdateDistributorInput,
    )


def _amount(text: str | None, currency: str, field: str) -> int | None:
    return None if text is None else parse_amount(text, currency, field)


def _percent(text: str | None, field: str) -> int | None:
    return None if text is None else parse_percent(text, field)


#: Fields the domain's errors name differently from the input: the login's (the user
#: functions know no ``login``) and the warning amount.
_INPUT_FIELDS = {
    "email": "login.email",
    "password": "login.password",
    "language": "login.language",
    "warningAmount": "warningThresholdAmount",
}


@contextmanager
def _input_fields() -> Iterator[None]:
    """A user error raised inside names the input field a client sent, so a form shows it
    beside that field (``login.email``, not an ``email`` the distributor does not have)."""
    try:
        yield
    except UserError as error:
        error.field = _INPUT_FIELDS.get(error.field or "", error.field)
        raise


def _as_field(check: Callable[[], object], field: str) -> None:
    """Run ``check``; a user error it raises is about ``field``."""
    try:
        check()
    except UserError as error:
        error.field = field
        raise


def _terms(
    input: CreateDistributorInput | UpdateDistributorInput, currency: str
) -> distributors.DistributorInput:
    """The input's terms in the domain's units: minor units of ``currency``, basis points."""
    return distributors.DistributorInput(
        name=input.name,
        class_id=decode_optional_id(input.class_id, "CustomerClass", "classId"),
        time_zone=input.time_zone,
        billing_period=input.billing_period,
        credit_limit=_amount(input.credit_limit, currency, "creditLimit"),
        sales_commission_bps=_percent(input.sales_commission, "salesCommission"),
        payment_commission_bps=_percent(input.payment_commission, "paymentCommission"),
        contact_name=input.contact_name,
        phone=input.phone,
        address=input.address,
        accounting_email=input.accounting_email,
        warning_percent_bps=_percent(input.warning_threshold_percent, "warningThresholdPercent"),
        warning_amount=_amount(input.warning_threshold_amount, currency, "warningThresholdAmount"),
        statistics_email=input.statistics_email,
    )


async def distributor(ctx: Context, id: str) -> Distributor | None:
    return await ctx.find(
        lambda session: distributors.get_distributor(
            session, ctx.viewer, decode_id(id, "Distributor")
        )
    )


async def own_distributor(ctx: Context) -> Distributor | None:
    """The signed-in distributor (``viewer.distributor``); None for anyone else."""
    if ctx.viewer.distributor_id is None:
        return None
    return await distributor_by_pk(ctx, ctx.viewer.distributor_id)


async def distributor_by_pk(ctx: Context, pk: int) -> Distributor | None:
    return await ctx.find(lambda session: distributors.get_distributor(session, ctx.viewer, pk))


def distributor_list(ctx: Context, search: str | None) -> Select[Any]:
    return distributors.distributor_query(ctx.viewer, search)


async def create_distributor(
    ctx: Context, input: CreateDistributorInput
) -> Distributor | UserError:
    async def work(session: AsyncSession) -> Distributor:
        data = _terms(input, input.currency)
        data.currency = input.currency
        data.reseller_id = decode_optional_id(input.reseller_id, "Reseller", "resellerId")
        login = None
        if input.login is not None:
            login = distributors.LoginInput(
                input.login.email, input.login.password, input.login.time_zone, input.login.language
            )
            if login.time_zone is not None:  # checked here: its error names the login's field
                _as_field(lambda: validate_time_zone(login.time_zone or ""), "login.timeZone")
        with _input_fields():
            return await distributors.create_distributor(session, ctx.viewer, data, login)

    return await ctx.attempt(work)


async def update_distributor(
    ctx: Context, input: UpdateDistributorInput
) -> Distributor | UserError:
    async def work(session: AsyncSession) -> Distributor:
        pk = decode_id(input.id, "Distributor")
        # Amounts are in the distributor's own currency, so read that first.
        current = await distributors.get_distributor(session, ctx.viewer, pk)
        data = _terms(input, current.currency)
        with _input_fields():
            return await distributors.update_distributor(session, ctx.viewer, pk, data)

    return await ctx.attempt(work)


async def record_distributor_payment(
    ctx: Context, input: RecordDistributorPaymentInput
) -> tuple[Distributor, Row[Any]] | UserError:
    """The distributor and the payment as a row of its transactions."""

    async def work(session: AsyncSession) -> tuple[Distributor, Row[Any]]:
        pk = decode_id(input.distributor_id, "Distributor", "distributorId")
        current = await distributors.get_distributor(session, ctx.viewer, pk)
        txn = await distributors.record_distributor_payment(
            session,
            ctx.viewer,
            pk,
            parse_amount(input.amount, current.currency),
            input.idempotency_key,
            input.reference,
        )
        await session.refresh(current, ["ledger_account"])
        row = await session.execute(
            distributors.transaction_query(current).where(LedgerTransaction.id == txn.id)
        )
        return current, row.one()

    return await ctx.attempt(work, id_field="distributorId")


async def commission_preview(
    ctx: Context, customer_id: str, amount: str
) -> tuple[commissions.Split, Distributor]:
    async def work(session: AsyncSession) -> tuple[commissions.Split, Distributor]:
        pk = decode_id(customer_id, "Customer", "customerId")
        customer = await customers.get_customer(session, ctx.viewer, pk)
        return await distributors.commission_preview(
            session, ctx.viewer, pk, parse_positive_amount(amount, customer.currency)
        )

    return await ctx.read(work)


def sale_preview(row: Distributor, amount: str) -> commissions.Split:
    """What selling ``amount`` of opening credit, in the distributor's own currency, would
    book (nothing is read or written)."""
    gross = parse_positive_amount(amount, row.currency)
    return commissions.commission_split(gross, row.sales_commission_bps, row.currency)


def transaction_list(
    ctx: Context,
    row: Distributor,
    kinds: list[distributors.DistributorTransactionKind] | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[Any]:
    return distributors.transaction_query(row, kinds, since, until)


async def commission_this_period(ctx: Context, row: Distributor) -> int:
    return await ctx.read(lambda session: distributors.commission_this_period(session, row))


def recent_periods(row: Distributor, count: int) -> list[Period]:
    """The distributor's open billing period and up to ``count - 1`` before it, newest
    first, cut as its billing period is set now; none that ended before it was made."""
    made = local_date(row.created_at, row.time_zone)
    period = period_containing(row.billing_period, row.period_start, row.billing_anchor)
    periods: list[Period] = []
    while len(periods) < count and (not periods or period.end > made):
        periods.append(period)
        before = period.start - timedelta(days=1)
        period = period_containing(row.billing_period, before, row.billing_anchor)
    return periods


async def commission_by_period(
    ctx: Context, row: Distributor, count: int
) -> list[tuple[Period, int]]:
    """What the distributor kept in each of :func:`recent_periods`, in one query.  The open
    period counts everything since it began, as ``commissionThisPeriod`` does."""
    periods = recent_periods(row, count)
    if not periods:
        return []
    tz = row.time_zone
    rows = distributors.transaction_query(row, since=periods[-1].start_utc(tz)).subquery()

    def within(n: int, period: Period) -> ColumnElement[bool]:
        started = rows.c.created_at >= period.start_utc(tz)
        return started if n == 0 else started & (rows.c.created_at < period.end_utc(tz))

    sums = [
        func.coalesce(func.sum(case((within(n, period), rows.c.commission), else_=0)), 0)
        for n, period in enumerate(periods)
    ]

    async def work(session: AsyncSession) -> Sequence[Any]:
        return (await session.execute(select(*sums))).one()

    totals = await ctx.read(work)
    return list(zip(periods, (int(total) for total in totals), strict=True))


def distributor_customers(ctx: Context, row: Distributor) -> Select[Any]:
    """The customers the distributor serves, as far as the caller may see them."""
    return scope_customers(select(Customer), ctx.viewer).where(Customer.distributor_id == row.id)


async def transactions_csv(
    ctx: Context,
    row: Distributor,
    kinds: list[distributors.DistributorTransactionKind] | None,
    since: datetime | None,
    until: datetime | None,
) -> str:
    return await ctx.read(
        lambda session: distributors.transactions_csv(session, row, kinds, since, until)
    )
