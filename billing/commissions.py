"""Distributor commissions: the split, the one balanced transaction that books a sale or a
collection, the credit limit it must stay under, and the credit-limit warning.

A distributor takes money from end users — credit sold with a new customer or account (a
*sale*, at the sales commission) or cash an end user pays (a *collection*, at the payment
commission) — and keeps its commission; the rest it owes the provider.  Both are booked
the same way, as one transaction summing to zero (``docs/distributors.md``)::

    source book        − gross    (the customer's credit or payment; or, for credit given
                                   before the distributor was assigned, the opening-balance
                                   book that gave it)
    distributor book   + net      (what it now owes the provider)
    COMMISSION book    + commission  (the owner's expense: what the distributor keeps)

``net + commission == gross`` exactly (:func:`commission_split`), and a zero leg is left
out.  :func:`preview` and :func:`collect` use the same split, so what a distributor is
shown before saving is what is booked.

A customer may pay in another currency than its distributor's when a rate from the
customer's currency to the distributor's is set (:mod:`billing.exchange_rates`); otherwise
it is ``CURRENCY_MISMATCH``.  Then each side moves in its own currency and balances through
the owner's ``CONVERSION`` books, and the transaction records the rate::

    source book            − paid       (customer's currency)
    CONVERSION (customer's) + paid
    CONVERSION (distributor's) − gross  (paid converted at the rate, rounded half-up once)
    distributor book       + net        (distributor's currency, as is the rest)
    COMMISSION book        + commission
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import exchange_rates, ledger, notifications
from billing.errors import NotFound, UserError
from billing.models import (
    Customer,
    Distributor,
    LedgerAccountKind,
    LedgerTransaction,
    TransactionKind,
)
from billing.money import Money, apply_rate, basis_points_split, convert, format_rate


@dataclass(frozen=True, slots=True)
class Conversion:
    """The customer's side of a split across currencies: what it paid in its own currency,
    and the rate (its currency → the distributor's) the gross was converted at."""

    paid: int
    currency: str
    rate: Decimal


@dataclass(frozen=True, slots=True)
class Split:
    """What changed hands (``gross``), what the distributor keeps, and what it owes, in the
    distributor's ``currency``; ``conversion`` when the customer paid in another."""

    gross: int
    commission: int
    net: int
    currency: str
    conversion: Conversion | None = None


def commission_split(gross: int, basis_points: int, currency: str) -> Split:
    """The commission is ``gross × rate`` rounded half-up once; the net is what is left."""
    net, commission = basis_points_split(gross, basis_points)
    return Split(gross, commission, net, currency)


async def conversion_rate(
    session: AsyncSession, distributor: Distributor, customer_currency: str, field: str
) -> Decimal | None:
    """The rate a customer paying in ``customer_currency`` converts at to the distributor's
    currency: ``None`` for its own currency; with no rate set, ``CURRENCY_MISMATCH``."""
    if customer_currency == distributor.currency:
        return None
    rate = await exchange_rates.rate_for(session, customer_currency, distributor.currency)
    if rate is None:
        raise UserError(
            "CURRENCY_MISMATCH",
            f"the distributor works in {distributor.currency}, the customer in "
            f"{customer_currency}, and no exchange rate from {customer_currency} to "
            f"{distributor.currency} is set",
            field,
        )
    return rate


async def split_for(
    session: AsyncSession,
    distributor: Distributor,
    customer_currency: str,
    paid: int,
    basis_points: int,
    field: str,
) -> Split:
    """``paid`` (in the customer's currency) split at ``basis_points``: in the distributor's
    currency, converted first when the customer's is another (see the module docstring)."""
    rate = await conversion_rate(session, distributor, customer_currency, field)
    if rate is None:
        return commission_split(paid, basis_points, customer_currency)
    gross = convert(paid, rate, customer_currency, distributor.currency)
    split = commission_split(gross, basis_points, distributor.currency)
    return replace(split, conversion=Conversion(paid, customer_currency, rate))


async def lock_distributor(session: AsyncSession, distributor_id: int) -> Distributor:
    """The distributor with its row locked to the end of the transaction (PostgreSQL; SQLite
    has one writer), read fresh: credit-limit checks and the warning flag never race."""
    query = select(Distributor).where(Distributor.id == distributor_id)
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        query = query.with_for_update(of=Distributor)
    distributor = await session.scalar(query.execution_options(populate_existing=True))
    if distributor is None:
        raise NotFound("distributor", "distributorId")
    return distributor


def exceeds_credit(distributor: Distributor, net: int) -> bool:
    """Whether owing ``net`` more would take the distributor past its credit limit."""
    return net > 0 and distributor.balance + net > distributor.credit_limit


def require_credit(distributor: Distributor, net: int) -> None:
    """Owing ``net`` more must not take the distributor past its credit limit."""
    if exceeds_credit(distributor, net):
        available = distributor.credit_limit - distributor.balance
        raise UserError(
            "CREDIT_LIMIT_EXCEEDED",
            f"this would take the distributor past its credit limit: "
            f"{Money(max(available, 0), distributor.currency)} of credit is left",
            "amount",
        )


async def preview(
    session: AsyncSession, distributor: Distributor, customer: Customer, paid: int
) -> Split:
    """What recording ``paid`` collected from ``customer`` would book (nothing is written)."""
    return await split_for(
        session,
        distributor,
        customer.currency,
        paid,
        distributor.payment_commission_bps,
        "customerId",
    )


async def collect(
    session: AsyncSession,
    kind: TransactionKind,
    distributor: Distributor,
    source_book: int,
    split: Split,
    *,
    at: datetime,
    description: str,
    customer_id: int,
    account_id: int | None = None,
) -> LedgerTransaction:
    """Book a sale or collection (see the module docstring) as one transaction.

    ``distributor`` must be locked (:func:`lock_distributor`).  Past the credit limit the
    movement is refused (``CREDIT_LIMIT_EXCEEDED``) before anything is written.
    """
    require_credit(distributor, split.net)
    owner, currency = distributor.reseller_id, split.currency
    conversion = split.conversion
    if conversion is None:
        legs = [(source_book, -split.gross, currency)]
    else:
        legs = [
            (source_book, -conversion.paid, conversion.currency),
            (
                await ledger.system_book(
                    session, LedgerAccountKind.CONVERSION, owner, conversion.currency
                ),
                conversion.paid,
                conversion.currency,
            ),
            (
                await ledger.system_book(session, LedgerAccountKind.CONVERSION, owner, currency),
                -split.gross,
                currency,
            ),
        ]
    legs.append((distributor.ledger_account_id, split.net, currency))
    if split.commission:
        commission_book = await ledger.system_book(
            session, LedgerAccountKind.COMMISSION, owner, currency
        )
        legs.append((commission_book, split.commission, currency))
    postings = [
        ledger.Posting(book, amount, leg_currency, account_id)
        for book, amount, leg_currency in legs
        if amount  # a zero leg is left out
    ]
    txn = await ledger.post(
        session,
        kind,
        postings,
        at=at,
        description=description,
        customer_id=customer_id,
        distributor_id=distributor.id,
    )
    if conversion is not None:
        txn.exchange_rate = format_rate(conversion.rate)
    await balance_moved(session, distributor, txn.id, at)
    return txn


async def sell(
    session: AsyncSession,
    customer: Customer,
    source_book: int,
    gross: int,
    at: datetime,
    account_id: int | None = None,
) -> LedgerTransaction:
    """Credit of ``gross`` sold to ``customer`` by its distributor, at the sales commission."""
    assert customer.distributor_id is not None
    distributor = await lock_distributor(session, customer.distributor_id)
    split = await split_for(
        session,
        distributor,
        customer.currency,
        gross,
        distributor.sales_commission_bps,
        "currency",
    )
    return await collect(
        session,
        TransactionKind.OPENING_BALANCE,
        distributor,
        source_book,
        split,
        at=at,
        description=f"Opening credit sold by {distributor.name}",
        customer_id=customer.id,
        account_id=account_id,
    )


# --- the credit-limit warning ------------------------------------------------------------------


def warning_threshold(distributor: Distributor) -> int:
    """The balance above which the accounting address is warned: an amount, or a share of
    the credit limit rounded half-up."""
    if distributor.warning_amount is not None:
        return distributor.warning_amount
    assert distributor.warning_percent_bps is not None
    return apply_rate(distributor.credit_limit, f"{distributor.warning_percent_bps}E-4")


async def balance_moved(
    session: AsyncSession, distributor: Distributor, txn_id: int, at: datetime
) -> None:
    """After any movement of the distributor's book: warn once per crossing of the threshold.

    ``over_warning`` is set when the balance rises above the threshold (and one e-mail goes
    to the accounting address through the outbox), and cleared only when it is back at or
    below it, so the next rise warns again.
    """
    await session.refresh(distributor.ledger_account, ["balance"])
    above = distributor.balance > warning_threshold(distributor)
    if above == distributor.over_warning:
        return
    distributor.over_warning = above
    if above and distributor.accounting_email:
        balance = Money(distributor.balance, distributor.currency)
        limit = Money(distributor.credit_limit, distributor.currency)
        threshold = Money(warning_threshold(distributor), distributor.currency)
        await notifications.write_outbox(
            session,
            [
                notifications.Draft(
                    dedupe_key=f"distributor-credit-warning:{distributor.id}:{txn_id}",
                    customer_id=None,
                    to=distributor.accounting_email,
                    subject=f"{distributor.name}: balance {balance} is above {threshold}",
                    body=(
                        f"Dear {distributor.name},\n\n"
                        f"what you owe us, {balance}, has passed the warning threshold of "
                        f"{threshold}. Your credit limit is {limit}: sales and collections "
                        "that would take you past it will be refused. Please make a payment.\n"
                    ),
                )
            ],
            at,
        )
        await notifications.schedule_sending(session, at)
    await session.flush()
