"""Bad input: each gives a payload UserError with a code and a field, and writes nothing."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from billing.db import Database
from tests.graphql_support import Api, create_account, create_customer, post_charge, row_counts

pytest_plugins = ["tests.graphql_fixtures"]


def _global_id(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def _refused(
    api: Api,
    db: Database,
    name: str,
    input: dict[str, Any],
    selection: str,
    code: str,
    field: str | None,
) -> None:
    before = await row_counts(db)
    payload = await api.mutate(name, input, selection)
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)], payload
    assert payload["errors"][0]["message"]
    assert all(value is None for key, value in payload.items() if key != "errors")
    assert await row_counts(db) == before


@pytest.mark.parametrize(
    ("customer_id", "why"),
    [
        ("garbage!", "not base64"),
        (_global_id("Customer:999999"), "no such customer"),
        (_global_id("Invoice:1"), "an id of another type"),
        (_global_id("Customer:1x"), "not a number"),
        (_global_id("Customer:"), "empty"),
    ],
)
async def test_unknown_ids_are_not_found(
    api: Api, db: Database, customer_id: str, why: str
) -> None:
    await create_customer(api)  # so that Customer:1 exists and the wrong type is what fails
    await _refused(
        api,
        db,
        "createAccount",
        {"customerId": customer_id, "number": "A-1", "product": "Mobile"},
        "account { id }",
        "NOT_FOUND",
        "customerId",
    )


async def test_someone_elses_customer_is_not_found(api: Api, db: Database) -> None:
    """A reseller's key sees only its own customers; the provider's are "not found"."""
    from billing.models import ApiKeyScope
    from tests.factories import make_reseller
    from tests.graphql_support import api_key

    customer = await create_customer(api)
    async with db.transaction() as session:
        reseller = await make_reseller(session)
    reseller_api = api.as_(await api_key(db, ApiKeyScope.READ_WRITE, reseller.id))
    await _refused(
        reseller_api,
        db,
        "createAccount",
        {"customerId": customer["id"], "number": "A-1", "product": "Mobile"},
        "account { id }",
        "NOT_FOUND",
        "customerId",
    )
    found = await reseller_api.run(
        "query($id: ID!) { customer(id: $id) { id } }", {"id": customer["id"]}
    )
    assert found == {"customer": None}


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        ("0", "USD", "AMOUNT_NOT_POSITIVE"),
        ("-5.00", "USD", "AMOUNT_NOT_POSITIVE"),
        ("1.005", "USD", "TOO_MANY_DECIMALS"),
        ("12,50", "USD", "INVALID_AMOUNT"),
        ("1e3", "USD", "INVALID_AMOUNT"),
        ("10.00", "EUR", "CURRENCY_MISMATCH"),
        ("10.00", "XXX", "INVALID_CURRENCY"),
    ],
)
async def test_bad_charge_amounts(
    api: Api, db: Database, amount: str, currency: str, code: str
) -> None:
    customer = await create_customer(api)
    account = await create_account(api, customer["id"], "A-1")
    field = "currency" if code in ("CURRENCY_MISMATCH", "INVALID_CURRENCY") else "amount"
    await _refused(
        api,
        db,
        "postCharge",
        {
            "accountId": account["id"],
            "description": "Calls",
            "amount": amount,
            "currency": currency,
            "idempotencyKey": "k-1",
        },
        "charge { id }",
        code,
        field,
    )


async def test_too_many_decimals_for_the_currency(api: Api, db: Database) -> None:
    """Yen have no minor unit: "100.5" JPY is refused, not rounded."""
    await _refused(
        api,
        db,
        "createCustomer",
        {"name": "Kenji", "currency": "JPY", "creditLimit": "100.5"},
        "customer { id }",
        "TOO_MANY_DECIMALS",
        "creditLimit",
    )


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"timeZone": "Mars/Olympus_Mons"}, "INVALID_TIME_ZONE", "timeZone"),
        ({"timeZone": "../../etc/passwd"}, "INVALID_TIME_ZONE", "timeZone"),
        ({"email": "not-an-address"}, "INVALID_EMAIL", "email"),
        ({"name": "x" * 201}, "TOO_LONG", "name"),
        ({"name": "   "}, "REQUIRED", "name"),
        ({"currency": "DOLLARS"}, "INVALID_CURRENCY", "currency"),
        ({"creditLimit": "-1.00"}, "OUT_OF_RANGE", "creditLimit"),
    ],
)
async def test_bad_customer_fields(
    api: Api, db: Database, fields: dict[str, Any], code: str, field: str
) -> None:
    await _refused(
        api,
        db,
        "createCustomer",
        {"name": "Ada", "currency": "USD", **fields},
        "customer { id }",
        code,
        field,
    )


async def test_duplicate_account_number(api: Api, db: Database) -> None:
    customer = await create_customer(api)
    await create_account(api, customer["id"], "+1 555 0100")
    await _refused(
        api,
        db,
        "createAccount",
        {"customerId": customer["id"], "number": "+1 555 0100", "product": "Mobile"},
        "account { id }",
        "DUPLICATE_ACCOUNT",
        "number",
    )


async def test_text_too_long_on_update(api: Api, db: Database) -> None:
    customer = await create_customer(api)
    await _refused(
        api,
        db,
        "updateCustomer",
        {"id": customer["id"], "address": "x" * 501},
        "customer { id }",
        "TOO_LONG",
        "address",
    )


async def test_idempotency_key_reused_with_other_arguments(api: Api, db: Database) -> None:
    customer = await create_customer(api)
    account = await create_account(api, customer["id"], "A-1")
    first = await post_charge(api, account["id"], "10.00", "same-key")
    assert first["errors"] == []
    replay = await post_charge(api, account["id"], "10.00", "same-key")
    assert replay == first  # the same charge, not a second one
    await _refused(
        api,
        db,
        "postCharge",
        {
            "accountId": account["id"],
            "description": "Calls",
            "amount": "11.00",
            "currency": "USD",
            "idempotencyKey": "same-key",
        },
        "charge { id }",
        "IDEMPOTENCY_KEY_REUSED",
        "idempotencyKey",
    )


async def test_payment_errors(api: Api, db: Database) -> None:
    customer = await create_customer(api)
    await _refused(
        api,
        db,
        "recordPayment",
        {
            "customerId": customer["id"],
            "amount": "10.001",
            "currency": "USD",
            "method": "CASH",
            "idempotencyKey": "p-1",
        },
        "payment { id }",
        "TOO_MANY_DECIMALS",
        "amount",
    )
    await _refused(
        api,
        db,
        "topUp",
        {"customerId": customer["id"], "amount": "10.00", "idempotencyKey": "t-1"},
        "payment { id }",
        "NO_PAYMENT_METHOD",
        "paymentMethodId",
    )
    await _refused(
        api,
        db,
        "payInvoice",
        {"invoiceId": _global_id("Invoice:42"), "idempotencyKey": "t-2"},
        "payment { id }",
        "NOT_FOUND",
        "invoiceId",
    )


async def test_card_errors_never_echo_the_card(api: Api, db: Database) -> None:
    customer = await create_customer(api)
    for number, code in (("4242424242424241", "INVALID_CARD_NUMBER"),):
        before = await row_counts(db)
        response = await api.post(
            """mutation($input: AddPaymentMethodInput!) { addPaymentMethod(input: $input) {
                paymentMethod { id } errors { field code message } } }""",
            {
                "input": {
                    "customerId": customer["id"],
                    "cardNumber": number,
                    "expMonth": 12,
                    "expYear": 2030,
                    "cvc": "123",
                }
            },
        )
        assert number not in response.text and "424242" not in response.text
        assert response.json()["data"]["addPaymentMethod"]["errors"][0]["code"] == code
        assert await row_counts(db) == before


async def test_declined_card_keeps_the_failed_payment_and_says_why(api: Api, db: Database) -> None:
    """Not "writes nothing": the FAILED payment is the record of the attempt."""
    customer = await create_customer(api)
    added = await api.mutate(
        "addPaymentMethod",
        {
            "customerId": customer["id"],
            "cardNumber": "4000000000000002",
            "expMonth": 12,
            "expYear": 2030,
            "cvc": "123",
        },
        "paymentMethod { id }",
    )
    assert added["errors"] == []
    payload = await api.mutate(
        "topUp",
        {"customerId": customer["id"], "amount": "10.00", "idempotencyKey": "t-1"},
        "payment { status declineCode }",
    )
    assert payload["payment"] == {"status": "FAILED", "declineCode": "card_declined"}
    assert [e["code"] for e in payload["errors"]] == ["CARD_DECLINED"]
