"""Invoices in the customer portal: the filtered list, one invoice, paying it in place, and
someone else's invoice staying out of reach."""

from __future__ import annotations

from playwright.async_api import Page, expect

from billing.db import Database
from tests.browser.accessibility import assert_accessible
from tests.browser.support import (
    assert_same_document,
    graphql_as_visitor,
    mark_document,
    partner_graphql,
    sign_in,
)
from tests.factories import (
    T0,
    Login,
    customer_with_login,
    issue_invoice,
    settle_in_cash,
    store_card,
)

INVOICE_IDS = """
query($customer: ID) {
  invoices(customerId: $customer, first: 20) { edges { node { id number status } } }
}
"""


async def three_invoices(db: Database, login: Login) -> None:
    """A paid, a partly paid and an unpaid invoice, made and paid through the services."""
    await issue_invoice(db, login, 1_000, description="February")
    await settle_in_cash(db, login, 1_000)
    await issue_invoice(db, login, 2_550, description="March")
    await settle_in_cash(db, login, 550)
    await issue_invoice(db, login, 1_200, description="Roaming", service_at=T0)


async def test_filtering_invoices_by_status_swaps_the_list_in_place(
    page: Page, db: Database
) -> None:
    login = await customer_with_login(db)
    await three_invoices(db, login)
    await sign_in(page, login.email)
    await page.get_by_role("link", name="Invoices").first.click()
    await expect(page.get_by_role("heading", name="3 invoices")).to_be_visible()
    await assert_accessible(page)
    rows = page.locator("#invoice-list tbody tr")
    await expect(rows).to_have_count(3)

    await mark_document(page)
    show = page.get_by_label("Show")
    for choice, status, heading in [
        ("Paid", "PAID", "1 invoice, paid"),
        ("Partially paid", "PARTIALLY_PAID", "1 invoice, partially paid"),
        ("Unpaid", "UNPAID", "1 invoice, unpaid"),
        ("Overdue", "OVERDUE", "0 invoices, overdue"),
    ]:
        await show.select_option(label=choice)
        await expect(page.get_by_role("heading", level=2, name=heading)).to_be_visible()
        await expect(page).to_have_url(f"{page.url.split('?')[0]}?status={status}")
        for row in await rows.all():
            await expect(row).to_have_attribute("data-status", status)
    await expect(page.get_by_text("No invoices with this status.")).to_be_visible()
    await assert_same_document(page)
    await assert_accessible(page)

    # The filtered address is a page of its own: reloading it keeps the filter.
    await page.goto("/portal/invoices?status=PAID")
    await expect(show).to_have_value("PAID")
    await expect(rows).to_have_count(1)
    await show.select_option(label="All invoices")
    await expect(rows).to_have_count(3)


async def test_paying_an_invoice_changes_its_status_in_place(page: Page, db: Database) -> None:
    login = await customer_with_login(db)
    await store_card(db, login)
    invoice = await issue_invoice(db, login, 1_250, description="Mobile plan, March")
    await sign_in(page, login.email)
    await page.get_by_role("link", name=invoice.number).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {invoice.number}")
    await expect(page.locator("#invoice-status")).to_have_text("Unpaid")
    await expect(page.get_by_label("Amount (USD)")).to_have_value("12.50")
    await assert_accessible(page)

    await mark_document(page)
    await page.get_by_role("button", name="Pay now").click()
    await expect(page.get_by_text("Paid 12.50 USD. Thank you.")).to_be_visible()
    await expect(page.locator("#invoice-status")).to_have_text("Paid")
    await expect(page.locator("#invoice-outstanding")).to_have_text("0.00 USD")
    await expect(page.get_by_text("Nothing left to pay on this invoice.")).to_be_visible()
    await expect(page.locator("#invoice-payments tbody tr")).to_have_count(1)
    await assert_same_document(page)
    await assert_accessible(page)

    viewer = await graphql_as_visitor(page, "{ viewer { customerId } }")
    mine = await graphql_as_visitor(page, INVOICE_IDS, {"customer": viewer["viewer"]["customerId"]})
    assert [edge["node"]["status"] for edge in mine["invoices"]["edges"]] == ["PAID"]


async def test_a_customer_cannot_open_another_customers_invoice(page: Page, db: Database) -> None:
    ada = await customer_with_login(db, name="Ada Lovelace")
    grace = await customer_with_login(db, "grace@example.com", name="Grace Hopper")
    own = await issue_invoice(db, ada, 1_000, description="Ada's plan")
    other = await issue_invoice(db, grace, 9_900, description="Grace's plan")
    ids = {
        edge["node"]["number"]: edge["node"]["id"]
        for edge in (await partner_graphql(page, db, INVOICE_IDS))["invoices"]["edges"]
    }

    await sign_in(page, ada.email)
    response = await page.goto(f"/portal/invoices/{ids[own.number]}")
    assert response is not None and response.status == 200
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {own.number}")

    response = await page.goto(f"/portal/invoices/{ids[other.number]}")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    await expect(
        page.get_by_text("There is nothing here, or it is not yours to see.")
    ).to_be_visible()
    assert other.number not in await page.content()
    assert "99.00" not in await page.content()
    await assert_accessible(page)

    # Nor is it in her list, nor can she pay it.
    await page.goto("/portal/invoices")
    await expect(page.locator("#invoice-list tbody tr")).to_have_count(1)
    await expect(page.get_by_text(other.number)).to_have_count(0)
    token = await page.locator("body").get_attribute("hx-headers")
    assert token is not None
    refused = await page.request.post(
        f"/portal/invoices/{ids[other.number]}/pay",
        headers={"X-CSRF-Token": token.split('"')[3], "HX-Request": "true"},
        form={"amount": "99.00", "key": "an-attempt"},
    )
    assert refused.status == 404
    grace_invoices = await partner_graphql(page, db, INVOICE_IDS, {"customer": None})
    statuses = {
        edge["node"]["number"]: edge["node"]["status"]
        for edge in grace_invoices["invoices"]["edges"]
    }
    assert statuses[other.number] == "UNPAID"
