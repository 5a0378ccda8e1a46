"""The README's walk-through, over HTTP: sign in, bill a customer, close periods, pay by card."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from billing import clock
from billing.db import Database
from tests.factories import PASSWORD, admin_with_login
from tests.graphql_support import Api, create_account, create_customer, post_charge

pytest_plugins = ["tests.graphql_fixtures"]

#: A Wednesday in March, London on GMT; the period closes at local midnight on 1 April (BST).
START = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
CARD = "4242424242424242"

INVOICE_FIELDS = """
    id number kind status issueDate dueDate periodStart periodEnd
    total { amount currency } amountPaid { amount } outstanding { amount }
    lines { accountNumber description amount { amount } }
    payments { amount { amount } payment { id status } }
"""


async def _sign_in(http: httpx.AsyncClient, db: Database) -> Api:
    payload = await Api(http).mutate(
        "signIn",
        {"email": await admin_with_login(db), "password": PASSWORD},
        "token viewer { role authenticated }",
    )
    assert payload["errors"] == [] and payload["viewer"] == {"role": "ADMIN", "authenticated": True}
    return Api(http, payload["token"])


async def _customer(api: Api, customer_id: str) -> dict[str, Any]:
    query = f"""query($id: ID!) {{ customer(id: $id) {{
        balance {{ amount }} availableFunds {{ amount }}
        invoices(first: 5) {{ {INVOICE_FIELDS} }}
        payments {{ id status method amount {{ amount }} }}
        paymentMethods {{ id brand last4 isDefault }}
    }} }}"""
    customer: dict[str, Any] = (await api.run(query, {"id": customer_id}))["customer"]
    return customer


async def test_bill_a_customer_and_collect_by_card(http: httpx.AsyncClient, db: Database) -> None:
    async with db.transaction() as session:
        await clock.freeze(session, START)
    api = await _sign_in(http, db)

    customer = await create_customer(api, creditLimit="50.00", email="ADA@example.com")
    assert customer["email"] == "ada@example.com"
    assert customer["creditLimit"] == {"amount": "50.00", "currency": "USD"}
    account = await create_account(api, customer["id"], "+44 20 7946 0000")
    for amount, key in (("19.99", "c-1"), ("5.01", "c-2")):
        assert (await post_charge(api, account["id"], amount, key))["errors"] == []
    state = await _customer(api, customer["id"])
    assert state["balance"] == {"amount": "25.00"}
    assert state["availableFunds"] == {"amount": "25.00"}

    # Close the open period early: an OUT_OF_TURN invoice with both charges.
    closed = await api.mutate(
        "closePeriodOutOfTurn", {"customerId": customer["id"]}, f"invoice {{ {INVOICE_FIELDS} }}"
    )
    assert closed["errors"] == []
    early = closed["invoice"]
    assert (early["kind"], early["status"], early["total"]) == (
        "OUT_OF_TURN",
        "UNPAID",
        {"amount": "25.00", "currency": "USD"},
    )
    assert early["issueDate"] == "2027-03-10"
    assert [line["amount"]["amount"] for line in early["lines"]] == ["19.99", "5.01"]

    # A later charge waits for the regular invoice, made by the bill run when the test
    # clock passes the end of March in London.
    assert (await post_charge(api, account["id"], "10.00", "c-3"))["errors"] == []
    moved = await api.mutate(
        "advanceTestClock", {"to": "2027-04-01T06:00:00+00:00"}, "testClock { now frozen } jobsRun"
    )
    assert moved["errors"] == [] and moved["jobsRun"] >= 1
    assert moved["testClock"] == {"now": "2027-04-01T06:00:00+00:00", "frozen": True}
    state = await _customer(api, customer["id"])
    regular, first = state["invoices"]
    assert first["id"] == early["id"]
    assert (regular["kind"], regular["status"], regular["total"]["amount"]) == (
        "REGULAR",
        "UNPAID",
        "10.00",
    )
    assert (regular["periodStart"], regular["periodEnd"]) == ("2027-03-01", "2027-04-01")
    assert state["balance"] == {"amount": "35.00"}

    # Store the simulator's approving card; it is never echoed back.
    added = await api.post(
        """mutation($input: AddPaymentMethodInput!) { addPaymentMethod(input: $input) {
            paymentMethod { id brand last4 expMonth expYear isDefault }
            errors { code } } }""",
        {
            "input": {
                "customerId": customer["id"],
                "cardNumber": CARD,
                "expMonth": 12,
                "expYear": 2030,
                "cvc": "123",
            }
        },
    )
    assert CARD not in added.text
    card = added.json()["data"]["addPaymentMethod"]["paymentMethod"]
    assert (card["brand"], card["last4"], card["isDefault"]) == ("visa", "4242", True)

    paid = await api.mutate(
        "payInvoice",
        {"invoiceId": early["id"], "idempotencyKey": "pay-early"},
        "payment { id status method amount { amount } invoice { id status } "
        "paymentMethod { last4 } }",
    )
    assert paid["errors"] == []
    payment = paid["payment"]
    assert (payment["status"], payment["method"], payment["amount"]) == (
        "COMPLETED",
        "CARD",
        {"amount": "25.00"},
    )
    assert payment["invoice"] == {"id": early["id"], "status": "PAID"}
    assert payment["paymentMethod"] == {"last4": "4242"}

    state = await _customer(api, customer["id"])
    assert state["balance"] == {"amount": "10.00"}
    assert state["availableFunds"] == {"amount": "40.00"}
    regular, first = state["invoices"]
    assert (first["status"], first["amountPaid"], first["outstanding"]) == (
        "PAID",
        {"amount": "25.00"},
        {"amount": "0.00"},
    )
    assert first["payments"] == [
        {"amount": {"amount": "25.00"}, "payment": {"id": payment["id"], "status": "COMPLETED"}}
    ]
    assert regular["status"] == "UNPAID"
    assert [p["id"] for p in state["payments"]] == [payment["id"]]

    # Replaying the payment with its key returns the same payment, and charges nothing.
    replay = await api.mutate(
        "payInvoice",
        {"invoiceId": early["id"], "idempotencyKey": "pay-early"},
        "payment { id }",
    )
    assert replay == {"payment": {"id": payment["id"]}, "errors": []}
    assert (await _customer(api, customer["id"]))["balance"] == {"amount": "10.00"}
