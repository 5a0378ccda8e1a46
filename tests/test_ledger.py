"""Ledger rules: balanced transactions only, cached balances equal the sum of entries."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from billing import ledger
from billing.db import Database
from billing.models import LedgerAccount, LedgerAccountKind, TransactionKind

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_unbalanced_postings_are_refused() -> None:
    with pytest.raises(ledger.UnbalancedTransaction):
        ledger.check_balanced([ledger.Posting(1, 100, "USD"), ledger.Posting(2, -99, "USD")])


def test_each_currency_must_balance_on_its_own() -> None:
    with pytest.raises(ledger.UnbalancedTransaction):
        ledger.check_balanced([ledger.Posting(1, 100, "USD"), ledger.Posting(2, -100, "EUR")])


def test_a_transaction_needs_two_nonzero_legs() -> None:
    with pytest.raises(ledger.UnbalancedTransaction):
        ledger.check_balanced([ledger.Posting(1, 0, "USD"), ledger.Posting(2, 0, "USD")])
    with pytest.raises(ledger.UnbalancedTransaction):
        ledger.check_balanced([ledger.Posting(1, 5, "USD")])


async def _books(session, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    return [
        (
            await ledger.open_party_book(
                session, LedgerAccountKind.CUSTOMER, f"test:{uuid4().hex}", "USD"
            )
        ).id
        for _ in range(n)
    ]


async def test_posting_moves_cached_balances(db: Database) -> None:
    async with db.transaction() as session:
        a, b = await _books(session, 2)
        await ledger.post(
            session,
            TransactionKind.CHARGE,
            [ledger.Posting(a, 250, "USD"), ledger.Posting(b, -250, "USD")],
            at=AT,
        )
    async with db.session() as session:
        assert (await session.get(LedgerAccount, a)).balance == 250  # type: ignore[union-attr]
        assert (await session.get(LedgerAccount, b)).balance == -250  # type: ignore[union-attr]
        assert await ledger.verify_balances(session) == []


async def test_reverse_undoes_a_transaction_with_a_new_one(db: Database) -> None:
    async with db.transaction() as session:
        a, b = await _books(session, 2)
        txn = await ledger.post(
            session,
            TransactionKind.CHARGE,
            [ledger.Posting(a, 70, "USD"), ledger.Posting(b, -70, "USD")],
            at=AT,
        )
        reversal = await ledger.reverse(
            session, txn.id, TransactionKind.VOID, at=AT, description="void"
        )
    assert reversal.reverses_id == txn.id
    async with db.session() as session:
        assert (await session.get(LedgerAccount, a)).balance == 0  # type: ignore[union-attr]
        assert await ledger.unbalanced_transactions(session) == []


@pytest.mark.tampers_ledger
async def test_check_finds_a_tampered_balance(db: Database) -> None:
    async with db.transaction() as session:
        a, b = await _books(session, 2)
        await ledger.post(
            session,
            TransactionKind.CHARGE,
            [ledger.Posting(a, 10, "USD"), ledger.Posting(b, -10, "USD")],
            at=AT,
        )
        await session.execute(update(LedgerAccount).where(LedgerAccount.id == a).values(balance=11))
    async with db.session() as session:
        mismatches = await ledger.verify_balances(session)
    assert [(m.ledger_account_id, m.cached, m.entries) for m in mismatches] == [(a, 11, 10)]


legs = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 10**9)),
    min_size=1,
    max_size=15,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(moves=legs)
async def test_any_sequence_of_balanced_moves_keeps_books_equal_to_entries(
    db: Database, moves: list[tuple[int, int, int]]
) -> None:
    async with db.transaction() as session:
        books = await _books(session, 4)
        expected = dict.fromkeys(books, 0)
        for debit, credit, amount in moves:
            if debit == credit:
                continue
            await ledger.post(
                session,
                TransactionKind.ADJUSTMENT,
                [
                    ledger.Posting(books[debit], amount, "USD"),
                    ledger.Posting(books[credit], -amount, "USD"),
                ],
                at=AT,
            )
            expected[books[debit]] += amount
            expected[books[credit]] -= amount
    async with db.session() as session:
        for book, balance in expected.items():
            assert (await session.get(LedgerAccount, book)).balance == balance  # type: ignore[union-attr]
        assert await ledger.verify_balances(session) == []
        assert sum(expected.values()) == 0
