"""Balances stay exact: single amounts are bounded, and no movement takes a book out of range.

The attack (issue 8, item 1): amounts of up to 10¹⁷ minor units, a hundred of them, pushed a
balance past 64 bits — on SQLite the book silently became a float, ``kassa check`` crashed
and the next bill run failed for everyone.  Each test runs on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from uuid import uuid4

import pytest
from sqlalchemy import func, insert, select

from billing import ledger
from billing.db import Database
from billing.errors import UserError
from billing.models import (
    LedgerAccount,
    LedgerAccountKind,
    LedgerEntry,
    LedgerTransaction,
    TransactionKind,
)
from billing.money import MAX_AMOUNT, MAX_BALANCE, format_amount
from settings import Settings
from tests.factories import T0, balance_of, new_party, pay_cash
from tests.graphql_support import Api, row_counts
from tests.graphql_support import post_charge as post_charge_over_api
from tests.test_cli import kassa

pytest_plugins = ["tests.graphql_fixtures"]


async def _scratch_book(db: Database) -> int:
    async with db.transaction() as session:
        book = await ledger.open_party_book(
            session, LedgerAccountKind.CUSTOMER, f"scratch:{uuid4().hex}", "USD"
        )
        return book.id


async def _move(db: Database, book: int, amount: int, counterpart: int) -> None:
    """Move ``book`` by ``amount`` straight through the ledger (test set-up)."""
    async with db.transaction() as session:
        await ledger.post(
            session,
            TransactionKind.ADJUSTMENT,
            [ledger.Posting(book, amount, "USD"), ledger.Posting(counterpart, -amount, "USD")],
            at=T0,
        )


async def _graphql_party(api: Api, db: Database) -> tuple[int, int, str]:
    """A customer with an account (its database id, book id and the account's global id)."""
    party = await new_party(db)
    data = await api.run(
        "query { customers(first: 1) { edges { node { accounts { id } } } } }",
    )
    account_id = data["customers"]["edges"][0]["node"]["accounts"][0]["id"]
    return party.id, party.customer.ledger_account_id, account_id


async def test_a_single_amount_is_bounded(api: Api, db: Database) -> None:
    _, _, account = await _graphql_party(api, db)
    largest = format_amount(MAX_AMOUNT, "USD")
    assert largest == "10000000000.00"
    accepted = await post_charge_over_api(api, account, largest, "largest")
    assert accepted["errors"] == []
    before = await row_counts(db)
    for amount in ("10000000000.01", "99999999999999999", "-10000000000.01"):
        refused = await post_charge_over_api(api, account, amount, f"over-{amount}")
        assert [e["code"] for e in refused["errors"]] == ["AMOUNT_TOO_LARGE"], amount
        assert "10000000000.00 USD" in refused["errors"][0]["message"]
    assert await row_counts(db) == before


async def test_a_charge_past_the_exact_range_is_refused_and_writes_nothing(
    api: Api, db: Database
) -> None:
    customer_id, book, account = await _graphql_party(api, db)
    await _move(db, book, MAX_BALANCE - 100, await _scratch_book(db))

    landing = await post_charge_over_api(api, account, "1.00", "to-the-edge")
    assert landing["errors"] == []  # exactly MAX_BALANCE is still in range
    before = await row_counts(db)
    refused = await post_charge_over_api(api, account, "0.01", "one-cent-too-far")
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [
        ("BALANCE_OUT_OF_RANGE", "amount")
    ]
    assert await row_counts(db) == before
    async with db.session() as session:
        assert await balance_of(session, customer_id) == MAX_BALANCE


async def test_a_payment_past_the_exact_range_is_refused(db: Database) -> None:
    party = await new_party(db)
    await _move(db, party.customer.ledger_account_id, -MAX_BALANCE, await _scratch_book(db))
    with pytest.raises(UserError) as refused:
        async with db.transaction() as session:
            await pay_cash(session, party.customer, 1)
    assert refused.value.code == "BALANCE_OUT_OF_RANGE"
    async with db.session() as session:
        assert await balance_of(session, party.id) == -MAX_BALANCE


async def test_a_batch_that_would_overflow_one_book_is_refused_whole(db: Database) -> None:
    """The bill run posts set-based (``post_many``): a book out of range refuses the batch
    before anything of it is written."""
    near, other, counterpart = [await _scratch_book(db) for _ in range(3)]
    await _move(db, near, MAX_BALANCE - 5, await _scratch_book(db))
    drafts = [
        ledger.Draft([ledger.Posting(other, 7, "USD"), ledger.Posting(counterpart, -7, "USD")], ""),
        ledger.Draft([ledger.Posting(near, 3, "USD"), ledger.Posting(counterpart, -3, "USD")], ""),
        ledger.Draft([ledger.Posting(near, 3, "USD"), ledger.Posting(counterpart, -3, "USD")], ""),
    ]
    async with db.transaction() as session:
        transactions_before = await session.scalar(select(func.count(LedgerTransaction.id)))
        with pytest.raises(UserError) as refused:
            await ledger.post_many(session, TransactionKind.CHARGE, drafts, at=T0)
        assert refused.value.code == "BALANCE_OUT_OF_RANGE"
        assert await session.scalar(select(func.count(LedgerTransaction.id))) == (
            transactions_before
        )
        balances = dict(
            (await session.execute(select(LedgerAccount.id, LedgerAccount.balance))).all()
        )
    assert (balances[near], balances[other]) == (MAX_BALANCE - 5, 0)
    async with db.transaction() as session:  # without the second, the batch goes through
        await ledger.post_many(session, TransactionKind.CHARGE, drafts[:2], at=T0)


async def test_the_largest_amounts_a_hundred_times_stay_exact(db: Database) -> None:
    """The reported attack, at today's bound: a hundred maximal charges are exact integers."""
    party = await new_party(db)
    counterpart = await _scratch_book(db)
    async with db.transaction() as session:
        await ledger.post_many(
            session,
            TransactionKind.CHARGE,
            [
                ledger.Draft(
                    [
                        ledger.Posting(party.customer.ledger_account_id, MAX_AMOUNT, "USD"),
                        ledger.Posting(counterpart, -MAX_AMOUNT, "USD"),
                    ],
                    "large",
                )
            ]
            * 100,
            at=T0,
        )
    async with db.session() as session:
        balance = await balance_of(session, party.id)
    assert type(balance) is int and balance == 100 * MAX_AMOUNT


@pytest.fixture
async def overflowing_entries(db: Database) -> int:
    """A book whose entries (written behind the ledger's back, as by kassa before the bound)
    add up past 2⁶³: SQLite's ``sum()`` fails on them outright."""
    book, counterpart = await _scratch_book(db), await _scratch_book(db)
    huge = 4 * 10**18
    async with db.transaction() as session:
        for _ in range(3):
            txn = LedgerTransaction(kind=TransactionKind.ADJUSTMENT, created_at=T0)
            session.add(txn)
            await session.flush()
            await session.execute(
                insert(LedgerEntry),
                [
                    {
                        "transaction_id": txn.id,
                        "ledger_account_id": b,
                        "amount": a,
                        "currency": "USD",
                    }
                    for b, a in ((book, huge), (counterpart, -huge))
                ],
            )
    return book


@pytest.mark.tampers_ledger
def test_check_reports_entries_past_64_bits_instead_of_crashing(
    settings: Settings, overflowing_entries: int
) -> None:
    result = kassa(settings, "check")
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"book {overflowing_entries} (CUSTOMER" in result.output
    assert f"cached balance 0, entries sum to {3 * 4 * 10**18}" in result.output


async def test_check_is_clean_after_refusals(db: Database) -> None:
    """Refused movements leave nothing behind that ``kassa check`` would flag (the ``db``
    fixture runs the same check after every test)."""
    near, counterpart = await _scratch_book(db), await _scratch_book(db)
    await _move(db, near, MAX_BALANCE, counterpart)
    with pytest.raises(UserError, match="beyond what kassa keeps exact"):
        await _move(db, near, 1, counterpart)
    async with db.session() as session:
        assert await ledger.verify_balances(session) == []
