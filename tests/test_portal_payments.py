"""Cards and card payments in the customer portal: adding (tokenized, never stored or logged),
choosing the default, removing, paying an invoice, topping up, declines in plain words, and
a double-submitted form paying once."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from billing.db import Database
from processors.simulator import SimulatorProcessor
from schema.relay import encode_id
from tests.factories import (
    APPROVE,
    DECLINE,
    INSUFFICIENT,
    Party,
    customer_with_login,
    issue_invoice,
    store_card,
)
from tests.graphql_support import Api, table_contents
from tests.portal_support import HTMX, Browser, csrf_token, customer_api, form_fields, text_of

pytest_plugins = ["tests.portal_fixtures"]

CARD_FORM = {"expMonth": "12", "expYear": "2030", "cvc": "123", "holder": "Ada Lovelace"}


async def _cards(api: Api) -> list[dict[str, Any]]:
    viewer = (await api.run("query { viewer { customerId } }"))["viewer"]
    data = await api.run(
        "query($id: ID!) { customer(id: $id) { paymentMethods { id last4 isDefault } } }",
        {"id": viewer["customerId"]},
    )
    cards: list[dict[str, Any]] = data["customer"]["paymentMethods"]
    return cards


async def _payments(api: Api) -> list[dict[str, Any]]:
    viewer = (await api.run("query { viewer { customerId } }"))["viewer"]
    data = await api.run(
        """query($id: ID!) { customer(id: $id) {
        balance { amount } payments(first: 20) { status amount { amount } } } }""",
        {"id": viewer["customerId"]},
    )
    payments: list[dict[str, Any]] = data["customer"]["payments"]
    return payments


async def _add_card(browser: Browser, number: str, **fields: str) -> Any:
    await browser.open("/portal/payment-methods")
    return await browser.submit(
        "/portal/payment-methods", {**CARD_FORM, "cardNumber": number, **fields}
    )


# --- adding, choosing and removing cards -------------------------------------------------------


async def test_a_card_is_added_and_listed(signed_in: Browser, customer: Party) -> None:
    response = await _add_card(signed_in, "4242 4242 4242 4242")
    assert response.status_code == 200
    assert "Visa ending 4242 was added." in response.text
    assert "Visa ending 4242" in text_of(response.text, "cards")
    assert [
        (card["last4"], card["isDefault"]) for card in await _cards(await customer_api(signed_in))
    ] == [("4242", True)]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"cardNumber": "4242424242424241"}, "cardNumber", "The card number is not valid."),
        ({"expYear": "2020"}, "expMonth", "The card has expired."),
        ({"cvc": "12"}, "cvc", "The security code must be 3 digits."),
        ({"expMonth": "twelve"}, "expMonth", "Enter digits only."),
    ],
)
async def test_a_refused_card_says_why_beside_the_field(
    signed_in: Browser, customer: Party, fields: dict[str, str], field: str, message: str
) -> None:
    response = await _add_card(signed_in, APPROVE, **fields)
    assert response.status_code == 422
    assert text_of(response.text, f"f-{field}-error") == message
    assert APPROVE not in response.text and "4242424242424241" not in response.text
    assert await _cards(await customer_api(signed_in)) == []


async def test_the_card_number_reaches_neither_the_database_nor_the_logs(
    signed_in: Browser, customer: Party, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    approved, refused = "4000056655665556", "4000056655665557"
    await _add_card(signed_in, approved, cvc="987")
    await _add_card(signed_in, refused, cvc="987")
    await _add_card(signed_in, approved, expYear="not a year")
    stored = repr(await table_contents(db))
    assert "5556" in stored  # the last four digits are kept, as they should be
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    for secret in (approved, refused, "4000 0566 5566 5556"):
        assert secret not in stored
        assert secret not in logged
    # Three digits also occur by chance inside ids, hex and timestamps: look for the CVC as a
    # value of its own.
    cvc = re.compile(r"(?<![\w.:])987(?![\w.])")
    assert not cvc.search(stored)
    assert not cvc.search(logged)


async def test_the_default_card_is_chosen_and_cards_removed(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    await store_card(db, customer, APPROVE)
    second = encode_id("PaymentMethod", (await store_card(db, customer, DECLINE)).id)
    api = await customer_api(signed_in)
    await signed_in.open("/portal/payment-methods")
    response = await signed_in.submit(f"/portal/payment-methods/{second}/default", htmx=True)
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="payment-methods"')
    assert "Visa ending 0002 is now the card charged by default." in response.text
    assert [(card["last4"], card["isDefault"]) for card in await _cards(api)] == [
        ("0002", True),
        ("4242", False),
    ]

    await signed_in.open("/portal/payment-methods")
    response = await signed_in.submit(f"/portal/payment-methods/{second}/remove")
    assert "Visa ending 0002 was removed." in response.text
    assert [(card["last4"], card["isDefault"]) for card in await _cards(api)] == [("4242", True)]


async def test_someone_elses_card_is_a_404(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    other = await customer_with_login(db, email="bob@example.com", name="Bob")
    theirs = encode_id("PaymentMethod", (await store_card(db, other, APPROVE)).id)
    token = csrf_token((await signed_in.open("/portal/payment-methods")).text)
    for action in ("default", "remove"):
        response = await signed_in.http.post(
            f"/portal/payment-methods/{theirs}/{action}", data={"csrf_token": token}
        )
        assert response.status_code == 404
    bob = await customer_api(signed_in, "bob@example.com")
    assert [card["isDefault"] for card in await _cards(bob)] == [True]


# --- paying -------------------------------------------------------------------------------


async def _invoice_page(browser: Browser, customer: Party, db: Database, *amounts: int) -> str:
    invoice_id = encode_id("Invoice", (await issue_invoice(db, customer, *amounts)).id)
    await browser.open(f"/portal/invoices/{invoice_id}")
    return f"/portal/invoices/{invoice_id}/pay"


async def test_paying_an_invoice_changes_its_status_in_place(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    await store_card(db, customer, APPROVE)
    action = await _invoice_page(signed_in, customer, db, 1230)
    response = await signed_in.submit(action, htmx=True)
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="invoice"')  # no full reload
    assert "Paid 12.30 USD" in response.text
    assert text_of(response.text, "invoice-status") == "Paid"
    assert text_of(response.text, "invoice-outstanding") == "0.00 USD"
    assert [
        (payment["status"], payment["amount"]["amount"])
        for payment in await _payments(await customer_api(signed_in))
    ] == [("COMPLETED", "12.30")]


@pytest.mark.parametrize(
    ("card", "words"),
    [
        (DECLINE, "The card was declined. Try another card or ask your bank why."),
        (INSUFFICIENT, "The card has insufficient funds. Try another card or a smaller amount."),
    ],
)
async def test_a_declined_card_says_why_in_plain_words(
    signed_in: Browser, customer: Party, db: Database, card: str, words: str
) -> None:
    await store_card(db, customer, card)
    action = await _invoice_page(signed_in, customer, db, 1230)
    before = form_fields(signed_in.page.text, action)  # type: ignore[union-attr]
    response = await signed_in.submit(action, htmx=True)
    assert response.status_code == 422
    assert words in text_of(response.text, "invoice")
    assert 'role="alert"' in response.text
    assert text_of(response.text, "invoice-status") == "Unpaid"
    # A retry is a new attempt: the form comes back with a new key.
    assert form_fields(response.text, action)["key"] != before["key"]
    assert [payment["status"] for payment in await _payments(await customer_api(signed_in))] == [
        "FAILED"
    ]


async def _pay_form(
    browser: Browser, customer: Party, db: Database
) -> tuple[str, dict[str, str], dict[str, str]]:
    """The pay form of a new 12.30 invoice: its action, its fields and htmx's headers."""
    await store_card(db, customer, APPROVE)
    action = await _invoice_page(browser, customer, db, 1230)
    fields = form_fields(browser.page.text, action)  # type: ignore[union-attr]
    return action, fields, {**HTMX, "X-CSRF-Token": fields["csrf_token"]}


async def _paid_once(browser: Browser) -> None:
    assert [payment["status"] for payment in await _payments(await customer_api(browser))] == [
        "COMPLETED"
    ]
    assert len(SimulatorProcessor().charges()) == 1  # the card was charged once, too


async def test_a_form_sent_twice_pays_once(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    action, fields, headers = await _pay_form(signed_in, customer, db)
    for _ in range(2):  # a reload of the result page sends the same form again
        response = await signed_in.http.post(action, data=fields, headers=headers)
        assert response.status_code == 200 and "Paid 12.30 USD" in response.text
    await _paid_once(signed_in)


async def test_a_double_click_pays_once(signed_in: Browser, customer: Party, db: Database) -> None:
    action, fields, headers = await _pay_form(signed_in, customer, db)
    clicks = await asyncio.gather(
        *(signed_in.http.post(action, data=fields, headers=headers) for _ in range(2))
    )
    for response in clicks:
        assert response.status_code == 200 and "Paid 12.30 USD" in response.text
    await _paid_once(signed_in)


async def test_topping_up_moves_the_balance(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    await store_card(db, customer, APPROVE)
    await signed_in.open("/portal")
    response = await signed_in.submit("/portal/top-up", {"amount": "25.00"}, htmx=True)
    assert response.status_code == 200
    assert "Paid 25.00 USD" in response.text
    assert text_of(response.text, "balance") == "-25.00 USD"
    api = await customer_api(signed_in)
    assert [payment["amount"]["amount"] for payment in await _payments(api)] == ["25.00"]

    await signed_in.open("/portal")
    response = await signed_in.submit("/portal/top-up", {"amount": "1.001"})
    assert response.status_code == 422
    assert "decimals" in text_of(response.text, "f-amount-error")
    assert len(await _payments(api)) == 1
