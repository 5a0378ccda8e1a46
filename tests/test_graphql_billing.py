"""Every domain's mutations and lists, through the API (one path each; the services'
own tests cover the rules in depth)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from billing import clock
from billing.db import Database
from tests.graphql_support import (
    Api,
    add_card,
    create_account,
    create_customer,
    post_charge,
    row_counts,
)

pytest_plugins = ["tests.graphql_fixtures"]

START = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
CARD_SELECTION = "id last4 isDefault removedAt"
CARD_FIELDS = f"paymentMethod {{ {CARD_SELECTION} }}"


async def _freeze(db: Database) -> None:
    async with db.transaction() as session:
        await clock.freeze(session, START)


async def test_customer_classes_and_resellers(api: Api) -> None:
    created = await api.mutate(
        "createCustomerClass",
        {"name": "Business", "paymentTermsDays": 30},
        "customerClass { id name paymentTermsDays gracePeriodDays }",
    )
    cls = created["customerClass"]
    assert (cls["name"], cls["paymentTermsDays"], cls["gracePeriodDays"]) == ("Business", 30, 7)
    updated = await api.mutate(
        "updateCustomerClass",
        {"id": cls["id"], "gracePeriodDays": 3},
        "customerClass { gracePeriodDays }",
    )
    assert updated == {"customerClass": {"gracePeriodDays": 3}, "errors": []}
    listed = await api.run("query { customerClasses { totalCount edges { node { name } } } }")
    assert listed["customerClasses"]["totalCount"] == 1

    customer = await create_customer(api, classId=cls["id"])
    shown = await api.run(
        "query($id: ID!) { customer(id: $id) { customerClass { name } } }", {"id": customer["id"]}
    )
    assert shown == {"customer": {"customerClass": {"name": "Business"}}}

    reseller = await api.mutate("createReseller", {"name": "Acme Telecom"}, "reseller { id name }")
    assert reseller["errors"] == [] and reseller["reseller"]["name"] == "Acme Telecom"
    refused = await api.mutate(
        "createCustomerClass", {"name": "Bad", "paymentTermsDays": -1}, "customerClass { id }"
    )
    assert [e["code"] for e in refused["errors"]] == ["OUT_OF_RANGE"]


async def test_update_customer_and_account(api: Api) -> None:
    customer = await create_customer(api)
    updated = await api.mutate(
        "updateCustomer",
        {
            "id": customer["id"],
            "creditLimit": "100.50",
            "timeZone": "America/New_York",
            "status": "SUSPENDED",
        },
        "customer { creditLimit { amount } availableFunds { amount } timeZone status }",
    )
    assert updated["customer"] == {
        "creditLimit": {"amount": "100.50"},
        "availableFunds": {"amount": "100.50"},
        "timeZone": "America/New_York",
        "status": "SUSPENDED",
    }
    account = await create_account(api, customer["id"], "A-1")
    changed = await api.mutate(
        "updateAccount",
        {"id": account["id"], "status": "SUSPENDED", "number": "A-2"},
        "account { number status customer { id } }",
    )
    assert changed["account"] == {
        "number": "A-2",
        "status": "SUSPENDED",
        "customer": {"id": customer["id"]},
    }


async def test_opening_balances(api: Api) -> None:
    customer = await create_customer(api, openingBalance="-12.50", idempotencyKey="open-c")
    assert customer["balance"] == {"amount": "-12.50", "currency": "USD"}
    account_input = {
        "customerId": customer["id"],
        "number": "A-1",
        "product": "ISP",
        "openingBalance": "2.50",
        "idempotencyKey": "open-a",
    }
    account = await api.mutate("createAccount", account_input, "account { id }")
    assert account["errors"] == []
    replayed = await api.mutate("createAccount", account_input, "account { id }")
    assert replayed == account
    again = await create_customer(api, openingBalance="-12.50", idempotencyKey="open-c")
    assert again["id"] == customer["id"]
    shown = await api.run(
        "query($id: ID!) { customer(id: $id) { balance { amount } } }", {"id": customer["id"]}
    )
    assert shown["customer"]["balance"] == {"amount": "-10.00"}


async def test_an_opening_balance_needs_an_idempotency_key(api: Api, db: Database) -> None:
    before = await row_counts(db)
    refused = await api.mutate(
        "createCustomer",
        {"name": "Ada", "currency": "USD", "openingBalance": "5.00"},
        "customer { id }",
    )
    assert [e["code"] for e in refused["errors"]] == ["IDEMPOTENCY_KEY_REQUIRED"]
    assert refused["customer"] is None
    assert await row_counts(db) == before


async def test_charges_on_customers_and_accounts(api: Api, db: Database) -> None:
    await _freeze(db)
    customer = await create_customer(api)
    mobile = await create_account(api, customer["id"], "A-1")
    landline = await create_account(api, customer["id"], "A-2")
    await post_charge(
        api, mobile["id"], "1.00", "k1", kind="USAGE", serviceAt="2027-03-09T10:00:00+00:00"
    )
    await post_charge(api, landline["id"], "2.00", "k2")
    query = """query($id: ID!) { customer(id: $id) {
        charges(first: 1) { totalCount pageInfo { hasNextPage }
                            edges { node { amount { amount } account { number } } } }
        accounts { number charges { totalCount edges { node { kind serviceAt invoiced } } } }
    } }"""
    shown = (await api.run(query, {"id": customer["id"]}))["customer"]
    assert shown["charges"]["totalCount"] == 2 and shown["charges"]["pageInfo"]["hasNextPage"]
    assert shown["charges"]["edges"][0]["node"] == {
        "amount": {"amount": "2.00"},
        "account": {"number": "A-2"},
    }
    first = shown["accounts"][0]
    assert first["number"] == "A-1" and first["charges"]["edges"][0]["node"] == {
        "kind": "USAGE",
        "serviceAt": "2027-03-09T10:00:00+00:00",
        "invoiced": False,
    }


async def _invoiced_customer(api: Api, db: Database) -> tuple[dict[str, Any], dict[str, Any]]:
    await _freeze(db)
    customer = await create_customer(api)
    account = await create_account(api, customer["id"], "A-1")
    await post_charge(api, account["id"], "40.00", "k1")
    closed = await api.mutate(
        "closePeriodOutOfTurn",
        {"customerId": customer["id"]},
        "invoice { id number status total { amount } }",
    )
    return customer, closed["invoice"]


async def test_invoices_list_and_void(api: Api, db: Database) -> None:
    customer, invoice = await _invoiced_customer(api, db)
    query = """query($customerId: ID, $status: InvoiceStatus, $from: Date, $to: Date) {
        invoices(customerId: $customerId, status: $status, issuedFrom: $from, issuedTo: $to) {
            totalCount edges { node { number customer { id } } } } }"""

    async def count(**filters: str) -> int:
        return int((await api.run(query, filters))["invoices"]["totalCount"])

    assert await count(customerId=customer["id"]) == 1
    assert await count(status="UNPAID") == 1 and await count(status="PAID") == 0
    assert await count(**{"from": "2027-03-10", "to": "2027-03-10"}) == 1
    assert await count(**{"from": "2027-03-11"}) == 0

    voided = await api.mutate(
        "voidInvoice",
        {"id": invoice["id"], "reason": "Billed twice"},
        "invoice { status voidedAt outstanding { amount } customer { balance { amount } } }",
    )
    assert voided["invoice"]["status"] == "VOID" and voided["invoice"]["voidedAt"]
    assert voided["invoice"]["outstanding"] == {"amount": "0.00"}
    assert voided["invoice"]["customer"]["balance"] == {"amount": "0.00"}
    again = await api.mutate(
        "voidInvoice", {"id": invoice["id"], "reason": "Again"}, "invoice { id }"
    )
    assert [e["code"] for e in again["errors"]] == ["ALREADY_VOID"]
    nothing = await api.mutate(
        "closePeriodOutOfTurn", {"customerId": customer["id"]}, "invoice { id }"
    )
    assert [e["code"] for e in nothing["errors"]] == ["NOTHING_TO_INVOICE"]


async def test_record_refund_and_void_payments(api: Api, db: Database) -> None:
    customer, invoice = await _invoiced_customer(api, db)
    fields = (
        "payment { id status method amount { amount } refundedAmount { amount } "
        "reference receivedAt customer { balance { amount } } }"
    )
    cash = await api.mutate(
        "recordPayment",
        {
            "customerId": customer["id"],
            "amount": "40.00",
            "currency": "USD",
            "method": "CASH",
            "reference": "Till 3",
            "idempotencyKey": "cash-1",
        },
        fields,
    )
    payment = cash["payment"]
    assert (payment["status"], payment["reference"]) == ("COMPLETED", "Till 3")
    assert payment["customer"]["balance"] == {"amount": "0.00"}
    paid = await api.run(
        "query($id: ID!) { invoice(id: $id) { status "
        "payments { amount { amount } payment { id } } } }",
        {"id": invoice["id"]},
    )
    assert paid["invoice"] == {
        "status": "PAID",
        "payments": [{"amount": {"amount": "40.00"}, "payment": {"id": payment["id"]}}],
    }

    refund = await api.mutate(
        "refundPayment",
        {
            "paymentId": payment["id"],
            "amount": "15.00",
            "reason": "Goodwill",
            "idempotencyKey": "refund-1",
        },
        fields,
    )
    assert refund["payment"]["status"] == "PARTIALLY_REFUNDED"
    assert refund["payment"]["refundedAmount"] == {"amount": "15.00"}
    assert refund["payment"]["customer"]["balance"] == {"amount": "15.00"}
    refused = await api.mutate(
        "voidPayment", {"paymentId": payment["id"], "reason": "Oops"}, "payment { id }"
    )
    assert [e["code"] for e in refused["errors"]] == ["NOT_VOIDABLE"]

    cheque = await api.mutate(
        "recordPayment",
        {
            "customerId": customer["id"],
            "amount": "5.00",
            "currency": "USD",
            "method": "CHEQUE",
            "idempotencyKey": "cheque-1",
        },
        "payment { id }",
    )
    voided = await api.mutate(
        "voidPayment",
        {"paymentId": cheque["payment"]["id"], "reason": "Bounced"},
        "payment { status customer { balance { amount } } }",
    )
    assert voided["payment"] == {"status": "VOIDED", "customer": {"balance": {"amount": "15.00"}}}

    query = """query($customerId: ID, $method: PaymentChannel) {
        payments(customerId: $customerId, method: $method) { totalCount } }"""
    assert (await api.run(query, {"method": "CHEQUE"}))["payments"]["totalCount"] == 1
    assert (await api.run(query, {"customerId": customer["id"]}))["payments"]["totalCount"] == 2


async def test_cards_default_remove_and_top_up(api: Api, db: Database) -> None:
    customer = await create_customer(api)

    first = await add_card(api, customer["id"], "4242424242424242", selection=CARD_SELECTION)
    second = await add_card(api, customer["id"], "5555555555554444", selection=CARD_SELECTION)
    assert first["isDefault"] and not second["isDefault"]
    made = await api.mutate("setDefaultPaymentMethod", {"id": second["id"]}, CARD_FIELDS)
    assert made["paymentMethod"]["isDefault"] is True
    removed = await api.mutate("removePaymentMethod", {"id": second["id"]}, CARD_FIELDS)
    assert removed["paymentMethod"]["removedAt"] is not None
    cards = await api.run(
        "query($id: ID!) { customer(id: $id) { paymentMethods { last4 isDefault } } }",
        {"id": customer["id"]},
    )
    assert cards["customer"]["paymentMethods"] == [{"last4": "4242", "isDefault": True}]

    topped = await api.mutate(
        "topUp",
        {"customerId": customer["id"], "amount": "20.00", "idempotencyKey": "top-1"},
        "payment { status amount { amount } customer { balance { amount } } }",
    )
    assert topped["payment"] == {
        "status": "COMPLETED",
        "amount": {"amount": "20.00"},
        "customer": {"balance": {"amount": "-20.00"}},
    }
