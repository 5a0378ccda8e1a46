"""The customer's dashboard shows the API's figures, exactly as the API gives them."""

from __future__ import annotations

from playwright.async_api import Page, expect

from billing.db import Database
from tests.browser.accessibility import assert_accessible
from tests.browser.support import graphql_as_visitor, sign_in
from tests.factories import T0, customer_with_login, issue_invoice, settle_in_cash

FIGURES = """
query($id: ID!) {
  customer(id: $id) {
    balance { amount currency } availableFunds { amount currency }
    creditLimit { amount currency } status
    invoices(first: 100) { number status outstanding { amount currency } total { amount } }
  }
}
"""


def money(value: dict[str, str]) -> str:
    return f"{value['amount']} {value['currency']}"


async def test_dashboard_figures_match_the_api(page: Page, db: Database) -> None:
    login = await customer_with_login(db, name="Ada Lovelace", credit_limit=50_000)
    await issue_invoice(db, login, 1_000, description="February")  # paid in full below
    await settle_in_cash(db, login, 1_000)
    await issue_invoice(db, login, 2_550, description="March")  # partly paid below
    await settle_in_cash(db, login, 550)
    await issue_invoice(db, login, 1_200, description="Roaming", service_at=T0)  # unpaid

    await sign_in(page, login.email)
    viewer = await graphql_as_visitor(page, "{ viewer { customerId } }")
    api = (await graphql_as_visitor(page, FIGURES, {"id": viewer["viewer"]["customerId"]}))[
        "customer"
    ]

    # What the customer owes: 10.00 + 25.50 + 12.00 billed, 10.00 + 5.50 paid.
    assert money(api["balance"]) == "32.00 USD"
    await expect(page.locator("#balance")).to_have_text(money(api["balance"]))
    await expect(page.locator("#available-funds")).to_have_text(money(api["availableFunds"]))
    assert money(api["availableFunds"]) == "468.00 USD"
    await expect(page.get_by_text(f"credit limit {money(api['creditLimit'])}")).to_be_visible()
    await expect(page.locator("#status")).to_have_text(api["status"].capitalize())

    # Open invoices: every one the API calls unpaid or partly paid, with what is left to pay.
    open_invoices = {
        invoice["number"]: invoice
        for invoice in api["invoices"]
        if invoice["status"] in ("UNPAID", "PARTIALLY_PAID", "OVERDUE")
    }
    assert len(open_invoices) == 2
    rows = page.locator("#open-invoices tbody tr")
    await expect(rows).to_have_count(len(open_invoices))
    for index in range(await rows.count()):
        cells = rows.nth(index).locator("th, td")
        number = (await cells.nth(0).inner_text()).strip()
        invoice = open_invoices.pop(number)
        await expect(cells.nth(1)).to_have_text(invoice["status"].replace("_", " ").capitalize())
        await expect(cells.nth(4)).to_have_text(money(invoice["outstanding"]))
    assert not open_invoices, f"not on the dashboard: {sorted(open_invoices)}"

    await assert_accessible(page)


async def test_a_new_customer_sees_nothing_owed_and_how_to_add_a_card(
    page: Page, db: Database
) -> None:
    login = await customer_with_login(db)
    await sign_in(page, login.email)
    await expect(page.locator("#balance")).to_have_text("0.00 USD")
    await expect(page.get_by_text("Nothing to pay: every invoice is settled.")).to_be_visible()
    await expect(page.get_by_role("link", name="add a card")).to_have_attribute(
        "href", "/portal/payment-methods"
    )
    await assert_accessible(page)
