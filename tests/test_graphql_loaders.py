"""DataLoaders: a page of customers costs the same number of SQL statements for 5 as for 50."""

from __future__ import annotations

from datetime import date, timedelta

from billing.db import Database
from tests.factories import insert_invoice, make_account, make_customer
from tests.graphql_support import Api
from tests.statements import statements

pytest_plugins = ["tests.graphql_fixtures"]

PAGE = """query($first: Int!) { customers(first: $first) { totalCount edges { node {
    id name balance { amount } availableFunds { amount } customerClass { name }
    accounts { number product }
    invoices(first: 5) { number total { amount } status lines { description } }
    payments(first: 3) { id }
} } } }"""


async def _customers(db: Database, count: int) -> None:
    """``count`` customers, each with two accounts and seven invoices (five are shown)."""
    async with db.transaction() as session:
        for n in range(count):
            customer = await make_customer(session, name=f"Customer {n}")
            for _ in range(2):
                await make_account(session, customer)
            for month in range(7):
                await insert_invoice(
                    session, customer, 1000 + month, date(2026, 1, 1) + timedelta(days=30 * month)
                )


async def _page_statements(api: Api, db: Database, count: int) -> int:
    with statements(db) as seen:
        data = await api.run(PAGE, {"first": count})
    nodes = [edge["node"] for edge in data["customers"]["edges"]]
    assert len(nodes) == count
    assert all(len(node["accounts"]) == 2 and len(node["invoices"]) == 5 for node in nodes)
    # Newest first: the five latest of the seven.
    assert [i["total"]["amount"] for i in nodes[0]["invoices"]] == [
        "10.06",
        "10.05",
        "10.04",
        "10.03",
        "10.02",
    ]
    return len(seen)


async def test_statement_count_does_not_grow_with_the_page(api: Api, db: Database) -> None:
    await _customers(db, 5)
    five = await _page_statements(api, db, 5)
    await _customers(db, 45)
    fifty = await _page_statements(api, db, 50)
    assert fifty == five
    # key lookup, customers, count, balances, accounts, invoices, lines, payments (+ BEGIN etc.)
    assert five <= 12, five
