"""Distributors: administrators create and edit them and record their payments; a
distributor sees itself, previews commissions and reads its transactions."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import commissions, customers, distributors
from billing.errors import UserError
from billing.models import Distributor, LedgerTransaction
from billing.money import parse_amount, parse_percent, parse_positive_amount
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
    """What selling ``amount`` of opening credit would book (nothing is read or written)."""
    return commissions.sale_split(row, row.currency, parse_positive_amount(amount, row.currency))


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
