"""The double-entry ledger: immutable transactions whose entries sum to zero per currency.

Cached balances (``ledger_accounts.balance``) move in the same database transaction as their
entries, with an atomic ``balance = balance + :delta`` so concurrent writers never lose an
update.  A movement that would take a book past :data:`~billing.money.MAX_BALANCE` either way
is refused with a :class:`~billing.errors.UserError` before any balance moves (the caller's
transaction then rolls back whatever else it wrote), so balances stay exact 64-bit integers
on every database.  :func:`verify_balances` is what
``kassa check`` runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing.errors import UserError
from billing.models import (
    LedgerAccount,
    LedgerAccountKind,
    LedgerEntry,
    LedgerTransaction,
    TransactionKind,
)
from billing.money import MAX_BALANCE, format_amount


class UnbalancedTransaction(ValueError):
    """Raised for a transaction whose entries do not sum to zero: always a bug."""


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of a transaction: ``amount`` minor units onto ledger account ``book``."""

    book: int
    amount: int
    currency: str
    account_id: int | None = None


def check_balanced(postings: list[Posting]) -> None:
    """Every currency's legs must sum to zero, and no leg may be zero."""
    if len(postings) < 2:
        raise UnbalancedTransaction("a transaction needs at least two entries")
    sums: dict[str, int] = defaultdict(int)
    for posting in postings:
        if posting.amount == 0:
            raise UnbalancedTransaction("zero entry")
        sums[posting.currency] += posting.amount
    unbalanced = {c: s for c, s in sums.items() if s != 0}
    if unbalanced:
        raise UnbalancedTransaction(f"entries do not sum to zero: {unbalanced}")


def _book_deltas(postings: list[Posting]) -> dict[int, int]:
    """How far each book moves, for the books that move at all."""
    deltas: dict[int, int] = defaultdict(int)
    for p in postings:
        deltas[p.book] += p.amount
    return {book: delta for book, delta in deltas.items() if delta}


async def _lock_books_within_range(session: AsyncSession, deltas: dict[int, int]) -> None:
    """Lock the moving books (in id order) and refuse the movement if one would leave the
    exact range (``±MAX_BALANCE``).

    The check reads the balances it guards under the lock (``FOR UPDATE`` on PostgreSQL; on
    SQLite a writer holds the database's write lock from its first statement), so no
    concurrent movement can slip between the check and the update.
    """
    if not deltas:
        return
    query = (
        select(LedgerAccount.id, LedgerAccount.currency, LedgerAccount.balance)
        .where(LedgerAccount.id.in_(deltas))
        .order_by(LedgerAccount.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    for book, currency, balance in (await session.execute(query)).all():
        if not -MAX_BALANCE <= balance + deltas[book] <= MAX_BALANCE:
            raise _out_of_range(currency)


def _out_of_range(currency: str) -> UserError:
    limit = format_amount(MAX_BALANCE, currency)
    return UserError(
        "BALANCE_OUT_OF_RANGE",
        f"this would take a balance past ±{limit} {currency}, beyond what kassa keeps exact",
        "amount",
    )


def system_owner_key(reseller_id: int | None) -> str:
    return f"reseller:{reseller_id}" if reseller_id else "provider"


async def system_book(
    session: AsyncSession, kind: LedgerAccountKind, reseller_id: int | None, currency: str
) -> int:
    """The id of a system book (revenue, cash, …) for an owner and currency, made on first use."""
    owner_key = system_owner_key(reseller_id)
    query = select(LedgerAccount.id).where(
        LedgerAccount.kind == kind,
        LedgerAccount.owner_key == owner_key,
        LedgerAccount.currency == currency,
    )
    book_id = await session.scalar(query)
    if book_id is not None:
        return book_id
    try:
        async with session.begin_nested():
            book = LedgerAccount(kind=kind, owner_key=owner_key, currency=currency, balance=0)
            session.add(book)
            await session.flush()
        return book.id
    except IntegrityError:
        # A concurrent transaction made the same book first; use that one.
        found = await session.scalar(query)
        assert found is not None
        return found


async def open_party_book(
    session: AsyncSession, kind: LedgerAccountKind, owner_key: str, currency: str
) -> LedgerAccount:
    """A new book for a customer or distributor."""
    book = LedgerAccount(kind=kind, owner_key=owner_key, currency=currency, balance=0)
    session.add(book)
    await session.flush()
    return book


@asynccontextmanager
async def posting(
    session: AsyncSession,
    kind: TransactionKind,
    postings: list[Posting],
    *,
    at: datetime,
    description: str = "",
    customer_id: int | None = None,
    reverses_id: int | None = None,
    distributor_id: int | None = None,
) -> AsyncIterator[LedgerTransaction]:
    """Record one balanced transaction, let the block write what points at it (a charge, an
    idempotency record), then move the cached balances.

    The balances move last because moving one locks its book's row to the commit, and a
    system book (revenue, cash) is shared by every customer of its owner: locked first, it
    would make every other customer's posting wait through all of this one's statements.
    Each book moves with one ``UPDATE … balance + delta`` (in id order, so concurrent
    postings never deadlock) that takes the row lock and refuses to leave the exact range
    (``±MAX_BALANCE``) in the same statement.  A refusal raises ``BALANCE_OUT_OF_RANGE``
    after the transaction's rows were written: the caller's transaction (or savepoint)
    rolls back on it, as on any UserError.  When the block raises, no balance moves.
    ``distributor_id`` names the distributor whose book it moves, so its transactions are
    one indexed lookup (:mod:`billing.distributors`).
    """
    check_balanced(postings)
    txn = LedgerTransaction(
        kind=kind,
        customer_id=customer_id,
        description=description[:500],
        created_at=at,
        reverses_id=reverses_id,
        distributor_id=distributor_id,
    )
    session.add(txn)
    await session.flush()
    await session.execute(
        insert(LedgerEntry),
        [
            {
                "transaction_id": txn.id,
                "ledger_account_id": p.book,
                "account_id": p.account_id,
                "amount": p.amount,
                "currency": p.currency,
            }
            for p in postings
        ],
    )
    yield txn
    currencies = {p.book: p.currency for p in postings}
    for book, delta in sorted(_book_deltas(postings).items()):
        if abs(delta) > 2 * MAX_BALANCE:  # out of range from any balance; and SQL would overflow
            raise _out_of_range(currencies[book])
        moved = await session.execute(
            update(LedgerAccount)
            .where(
                LedgerAccount.id == book,
                (LedgerAccount.balance + delta).between(-MAX_BALANCE, MAX_BALANCE),
            )
            .values(balance=LedgerAccount.balance + delta)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise _out_of_range(currencies[book])


async def post(
    session: AsyncSession,
    kind: TransactionKind,
    postings: list[Posting],
    *,
    at: datetime,
    description: str = "",
    customer_id: int | None = None,
    reverses_id: int | None = None,
    distributor_id: int | None = None,
) -> LedgerTransaction:
    """Record one balanced transaction and move the cached balances with it (:func:`posting`
    with nothing in between)."""
    async with posting(
        session,
        kind,
        postings,
        at=at,
        description=description,
        customer_id=customer_id,
        reverses_id=reverses_id,
        distributor_id=distributor_id,
    ) as txn:
        pass
    return txn


@dataclass(frozen=True, slots=True)
class Draft:
    """One transaction of a :func:`post_many` batch."""

    postings: list[Posting]
    description: str
    customer_id: int | None = None


async def post_many(
    session: AsyncSession, kind: TransactionKind, drafts: list[Draft], *, at: datetime
) -> list[int]:
    """Record many balanced transactions at once (set-based :func:`post`); returns their ids.

    One INSERT of the transactions, one of their entries, and one executemany moving each
    book's cached balance by the batch's total for it, in book order.  Should the batch take
    a book out of range, the whole batch is refused (``BALANCE_OUT_OF_RANGE``) before
    anything is written.
    """
    if not drafts:
        return []
    for draft in drafts:
        check_balanced(draft.postings)
    deltas = _book_deltas([p for draft in drafts for p in draft.postings])
    await _lock_books_within_range(session, deltas)
    result = await session.execute(
        insert(LedgerTransaction).returning(LedgerTransaction.id, sort_by_parameter_order=True),
        [
            {
                "kind": kind,
                "customer_id": d.customer_id,
                "description": d.description[:500],
                "created_at": at,
                "reverses_id": None,
            }
            for d in drafts
        ],
    )
    ids = [int(i) for i in result.scalars().all()]
    await session.execute(
        insert(LedgerEntry),
        [
            {
                "transaction_id": txn_id,
                "ledger_account_id": p.book,
                "account_id": p.account_id,
                "amount": p.amount,
                "currency": p.currency,
            }
            for txn_id, draft in zip(ids, drafts, strict=True)
            for p in draft.postings
        ],
    )
    books = LedgerAccount.metadata.tables[LedgerAccount.__tablename__]
    moves = [{"b_book": book, "b_delta": delta} for book, delta in sorted(deltas.items())]
    if moves:
        await session.execute(
            update(books)
            .where(books.c.id == bindparam("b_book"))
            .values(balance=books.c.balance + bindparam("b_delta")),
            moves,
        )
    return ids


async def reverse(
    session: AsyncSession,
    original_id: int,
    kind: TransactionKind,
    *,
    at: datetime,
    description: str,
) -> LedgerTransaction:
    """A new transaction with every entry of ``original_id`` negated (never an edit)."""
    entries = (
        await session.scalars(select(LedgerEntry).where(LedgerEntry.transaction_id == original_id))
    ).all()
    original = await session.get(LedgerTransaction, original_id)
    assert original is not None
    postings = [
        Posting(entry.ledger_account_id, -entry.amount, entry.currency, entry.account_id)
        for entry in entries
    ]
    reversal = await post(
        session,
        kind,
        postings,
        at=at,
        description=description,
        customer_id=original.customer_id,
        reverses_id=original_id,
        distributor_id=original.distributor_id,
    )
    reversal.exchange_rate = original.exchange_rate  # the same conversion, taken back
    return reversal


@dataclass(frozen=True, slots=True)
class BalanceMismatch:
    ledger_account_id: int
    kind: str
    owner_key: str
    #: A float only where SQLite once overflowed the book: it is no longer exact.
    cached: int | float
    entries: int


#: ``kassa check`` sums entries in two parts, ``amount / 10⁹`` and ``amount % 10⁹`` (both
#: truncating on both databases, so ``amount == high × 10⁹ + low``), and adds them up in
#: Python.  Neither part's sum can overflow 64 bits short of billions of entries, whereas
#: SQLite's ``sum()`` of the amounts themselves fails outright once a total passes 2⁶³.
_SPLIT = 10**9


def _split_sums() -> tuple[ColumnElement[int], ColumnElement[int]]:
    return (
        func.sum(LedgerEntry.amount.op("/")(_SPLIT)).label("high"),
        func.sum(LedgerEntry.amount.op("%")(_SPLIT)).label("low"),
    )


def _joined(high: int | Decimal | None, low: int | Decimal | None) -> int:
    """The exact sum from its two parts (PostgreSQL sums bigints as numeric: Decimal)."""
    return int(high or 0) * _SPLIT + int(low or 0)


async def verify_balances(session: AsyncSession) -> list[BalanceMismatch]:
    """Books whose cached balance differs from the sum of their entries (empty = healthy)."""
    high, low = _split_sums()
    sums = select(LedgerEntry.ledger_account_id, high, low).group_by(LedgerEntry.ledger_account_id)
    sub = sums.subquery()
    rows = await session.execute(
        select(
            LedgerAccount.id,
            LedgerAccount.kind,
            LedgerAccount.owner_key,
            LedgerAccount.balance,
            sub.c.high,
            sub.c.low,
        ).outerjoin(sub, sub.c.ledger_account_id == LedgerAccount.id)
    )
    mismatches = []
    for book, kind, owner_key, cached, book_high, book_low in rows.all():
        total = _joined(book_high, book_low)
        if cached != total:
            mismatches.append(BalanceMismatch(book, kind.value, owner_key, cached, total))
    return mismatches


async def unbalanced_transactions(session: AsyncSession) -> list[tuple[int, str, int]]:
    """Transactions whose entries do not sum to zero in some currency (empty = healthy)."""
    high, low = _split_sums()
    rows = await session.execute(
        select(LedgerEntry.transaction_id, LedgerEntry.currency, high, low)
        .group_by(LedgerEntry.transaction_id, LedgerEntry.currency)
        .having((high != 0) | (low != 0))  # a superset: the exact sum is taken below
    )
    totals = [(int(txn), currency, _joined(h, lo)) for txn, currency, h, lo in rows.all()]
    return [row for row in totals if row[2] != 0]
