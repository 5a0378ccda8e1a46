"""The customer pages show what the GraphQL API says, and only the customer's own things."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from billing.db import Database
from schema.relay import encode_id
from tests.factories import APPROVE, Party, customer_with_login, issue_invoice, pay_cash, store_card
from tests.graphql_support import Api
from tests.portal_support import HTMX, Browser, csrf_token, customer_api, text_of

pytest_plugins = ["tests.portal_fixtures"]

OPEN = {"UNPAID", "PARTIALLY_PAID", "OVERDUE"}


async def _customer_data(api: Api, selection: str) -> dict[str, Any]:
    viewer = (await api.run("query { viewer { customerId } }"))["viewer"]
    query = f"query($id: ID!) {{ customer(id: $id) {{ {selection} }} }}"
    customer: dict[str, Any] = (await api.run(query, {"id": viewer["customerId"]}))["customer"]
    return customer


def _money(value: dict[str, str]) -> str:
    return f"{value['amount']} {value['currency']}"


async def _three_invoices(db: Database, customer: Party) -> None:
    """One paid, one partly paid, one unpaid (payments settle the oldest first)."""
    await issue_invoice(db, customer, 1000)
    await issue_invoice(db, customer, 1230, 270)
    await issue_invoice(db, customer, 4999)
    async with db.transaction() as session:
        await pay_cash(session, customer.customer, 1000 + 700)


async def test_the_dashboard_shows_the_api_figures(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    await _three_invoices(db, customer)
    await store_card(db, customer, APPROVE)
    data = await _customer_data(
        await customer_api(signed_in),
        """
        balance { amount currency } availableFunds { amount currency } status autoPayment
        nextBillAt timeZone invoices(first: 10) { number status outstanding { amount currency } }
    """,
    )
    page = (await signed_in.open("/portal")).text
    assert text_of(page, "balance") == _money(data["balance"]) == "57.99 USD"
    assert text_of(page, "available-funds") == _money(data["availableFunds"])
    assert text_of(page, "status") == data["status"].capitalize()
    next_bill = datetime.fromisoformat(data["nextBillAt"]).astimezone(ZoneInfo(data["timeZone"]))
    assert text_of(page, "next-invoice") == next_bill.strftime("%-d %b %Y")
    assert text_of(page, "auto-payment-state").startswith("Auto-payment is off")
    table = text_of(page, "open-invoices")
    for invoice in data["invoices"]:
        shown = invoice["number"] in table
        assert shown == (invoice["status"] in OPEN), invoice
        if shown:
            assert _money(invoice["outstanding"]) in table


async def test_the_invoice_list_is_filtered_by_status(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    await _three_invoices(db, customer)
    api = await customer_api(signed_in)
    everything = await _customer_data(api, "invoices(first: 10) { number status }")
    by_status = {invoice["status"]: invoice["number"] for invoice in everything["invoices"]}
    assert set(by_status) == {"PAID", "PARTIALLY_PAID", "UNPAID"}

    page = await signed_in.open("/portal/invoices")
    assert text_of(page.text, "invoice-list-title") == "3 invoices"
    for status, number in by_status.items():
        page = await signed_in.open(f"/portal/invoices?status={status}")
        listed = text_of(page.text, "invoice-list")
        assert number in listed
        assert [other for other in by_status.values() if other in listed] == [number]
        assert "selected>" in page.text.split(f'value="{status}"')[1][:20]
        # htmx asks for the list alone when the filter changes.
        fragment = await signed_in.http.get(f"/portal/invoices?status={status}", headers=HTMX)
        assert text_of(fragment.text, "invoice-list") == listed


async def test_an_invoice_page_shows_its_lines_payments_and_status(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    await _three_invoices(db, customer)
    api = await customer_api(signed_in)
    (invoice_id,) = [
        invoice["id"]
        for invoice in (await _customer_data(api, "invoices(first: 10) { id status }"))["invoices"]
        if invoice["status"] == "PARTIALLY_PAID"
    ]
    invoice = (
        await api.run(
            """query($id: ID!) { invoice(id: $id) {
        number total { amount currency } amountPaid { amount currency }
        outstanding { amount currency } lines { description amount { amount currency } }
        payments { amount { amount currency } payment { method } } } }""",
            {"id": invoice_id},
        )
    )["invoice"]
    page = (await signed_in.open(f"/portal/invoices/{invoice_id}")).text
    assert f"Invoice {invoice['number']}" in page
    assert text_of(page, "invoice-status") == "Partially paid"
    assert text_of(page, "invoice-total") == _money(invoice["total"]) == "15.00 USD"
    assert text_of(page, "invoice-paid") == _money(invoice["amountPaid"]) == "7.00 USD"
    assert text_of(page, "invoice-outstanding") == _money(invoice["outstanding"])
    for line in invoice["lines"]:
        assert _money(line["amount"]) in page
    (part,) = invoice["payments"]
    assert _money(part["amount"]) in text_of(page, "invoice-payments")
    assert "Cash" in text_of(page, "invoice-payments")


async def test_someone_elses_invoice_is_a_404_page(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    other = await customer_with_login(db, email="bob@example.com", name="Bob")
    theirs = encode_id("Invoice", (await issue_invoice(db, other, 700)).id)
    await store_card(db, customer, APPROVE)
    for path in (f"/portal/invoices/{theirs}", "/portal/invoices/garbage"):
        response = await signed_in.open(path)
        assert response.status_code == 404
        assert "Page not found" in response.text and "Bob" not in response.text
    token = csrf_token((await signed_in.open("/portal")).text)
    response = await signed_in.http.post(
        f"/portal/invoices/{theirs}/pay",
        data={"key": "k1"},
        headers={**HTMX, "X-CSRF-Token": token},
    )
    assert response.status_code == 404
    other_api = await customer_api(signed_in, "bob@example.com")
    assert (await _customer_data(other_api, "payments { id }"))["payments"] == []


async def test_the_payment_history_matches_the_api(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    await issue_invoice(db, customer, 2500)
    async with db.transaction() as session:
        await pay_cash(session, customer.customer, 1000)
        await pay_cash(session, customer.customer, 250)
    data = await _customer_data(
        await customer_api(signed_in), "payments(first: 10) { amount { amount currency } method }"
    )
    page = await signed_in.open("/portal/payments")
    listed = text_of(page.text, "payment-list")
    assert listed.startswith("2 payments")
    assert [payment["method"] for payment in data["payments"]] == ["CASH", "CASH"]
    for payment in data["payments"]:
        assert _money(payment["amount"]) in listed


async def test_the_accounts_page_lists_the_services(signed_in: Browser, customer: Party) -> None:
    page = await signed_in.open("/portal/accounts")
    assert customer.account.number in page.text
    assert "Mobile" in page.text and "Active" in page.text


async def test_the_profile_saves_contact_details(signed_in: Browser, customer: Party) -> None:
    page = await signed_in.open("/portal/profile")
    assert 'value="ada@example.com"' in page.text and 'value="UTC"' in page.text
    response = await signed_in.submit(
        "/portal/profile",
        {"phone": "+44 20 7946 0001", "timeZone": "Europe/London", "email": "ada@work.example"},
    )
    assert response.status_code == 200
    assert "Your details have been saved" in response.text
    data = await _customer_data(await customer_api(signed_in), "email phone timeZone")
    assert data == {
        "email": "ada@work.example",
        "phone": "+44 20 7946 0001",
        "timeZone": "Europe/London",
    }


async def test_profile_errors_are_shown_beside_their_fields(
    signed_in: Browser, customer: Party
) -> None:
    await signed_in.open("/portal/profile")
    response = await signed_in.submit("/portal/profile", {"email": "not an address"})
    assert response.status_code == 422
    assert text_of(response.text, "f-email-error") == "'not an address' is not an e-mail address."
    assert 'aria-describedby="f-email-hint f-email-error"' in response.text
    assert 'value="not an address"' in response.text  # what was typed stays to be fixed

    await signed_in.open("/portal/profile")
    response = await signed_in.submit(
        "/portal/profile", {"timeZone": "Mars/Olympus_Mons"}, htmx=True
    )
    assert response.status_code == 422
    assert response.text.lstrip().startswith('<section id="profile"')
    assert "is not an IANA time zone" in text_of(response.text, "f-timeZone-error")
    data = await _customer_data(await customer_api(signed_in), "email timeZone")
    assert data == {"email": "ada@example.com", "timeZone": "UTC"}


async def test_auto_payment_is_turned_on_and_off(signed_in: Browser, customer: Party) -> None:
    api = await customer_api(signed_in)
    for expected in (True, False):
        await signed_in.open("/portal")
        response = await signed_in.submit("/portal/auto-payment", htmx=True)
        assert response.status_code == 200
        assert response.text.lstrip().startswith('<div id="dashboard"')
        assert (await _customer_data(api, "autoPayment"))["autoPayment"] is expected
