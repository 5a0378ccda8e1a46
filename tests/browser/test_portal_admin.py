"""The administrators' portal in a browser: find a customer by typing, take a payment, post
a charge, and see both in the customer's payments and ledger, in place.

Issue 3's "done when" ends here: a customer has paid an invoice, and an administrator finds
that customer and sees the payment.
"""

from __future__ import annotations

from urllib.parse import urlencode

from playwright.async_api import Page, expect

from billing.db import Database
from tests.browser.accessibility import assert_accessible
from tests.browser.support import assert_same_document, graphql_as_visitor, mark_document, sign_in
from tests.factories import admin_with_login, customer_with_login, issue_invoice, store_card

BALANCE = (
    "query($email: String!) { customers(email: $email, first: 1) { edges { node { "
    "balance { amount currency } payments(first: 5) { method amount { amount } } } } } }"
)


async def find_customer(page: Page, typed: str, name: str) -> None:
    """Type into the live search (no Enter) and open the customer from the list."""
    await page.get_by_label("Name or e-mail address").fill(typed)
    # The address follows the search, so a reload shows the same list.
    origin = page.url.split("/admin", 1)[0]
    await expect(page).to_have_url(f"{origin}/admin?{urlencode({'q': typed, 'status': ''})}")
    rows = page.locator("#customers tbody tr")
    await expect(rows).to_have_count(1)
    await rows.get_by_role("link", name=name).click()
    await expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()


async def test_an_administrator_finds_a_customer_and_records_a_payment(
    page: Page, db: Database
) -> None:
    ada = await customer_with_login(db, "ada@example.com", name="Ada Lovelace")
    await customer_with_login(db, "grace@example.com", name="Grace Hopper")
    await issue_invoice(db, ada, 4_000, description="Fibre, March")
    email = await admin_with_login(db)
    await sign_in(page, email, lands_on="/admin")
    await expect(page.locator("#customers tbody tr")).to_have_count(2)
    await assert_accessible(page)

    await find_customer(page, "ada", "Ada Lovelace")
    await expect(page.locator("#balance")).to_have_text("40.00 USD")
    await expect(page.locator("#invoices")).to_contain_text("Unpaid")
    await assert_accessible(page)

    await mark_document(page)
    await page.get_by_label("Received as").select_option(label="Cash")
    payment = page.locator("form[action$='/payments']")
    await payment.get_by_label("Amount (USD)").fill("40.00")
    await page.get_by_label("Reference").fill("Counter receipt 42")
    await page.get_by_role("button", name="Record the payment").click()
    await expect(page.locator("#payment-recorded")).to_have_text(
        "Recorded a payment of 40.00 USD by cash, reference Counter receipt 42."
    )
    await expect(page.locator("#balance")).to_have_text("0.00 USD")
    await expect(page.locator("#payments tbody tr").first).to_contain_text("40.00 USD")
    await expect(page.locator("#payments tbody tr").first).to_contain_text("Counter receipt 42")
    newest = page.locator("#ledger tbody tr").first
    await expect(newest).to_contain_text("Payment")
    await expect(newest).to_contain_text("-40.00 USD")
    await expect(page.locator("#invoices")).to_contain_text("Paid")
    await assert_same_document(page)
    await assert_accessible(page)
    # The page shows what the API holds.
    data = await graphql_as_visitor(page, BALANCE, {"email": "ada@example.com"})
    (edge,) = data["customers"]["edges"]
    assert edge["node"]["balance"] == {"amount": "0.00", "currency": "USD"}
    assert edge["node"]["payments"] == [{"method": "CASH", "amount": {"amount": "40.00"}}]


async def test_an_administrator_sees_the_card_payment_a_customer_made(
    page: Page, db: Database
) -> None:
    """The customer pays an invoice by card in the portal; the administrator then finds
    them and sees that payment and its ledger transaction."""
    ada = await customer_with_login(db, "ada@example.com", name="Ada Lovelace")
    invoice = await issue_invoice(db, ada, 2_999, description="Mobile unlimited")
    await store_card(db, ada)
    await sign_in(page, ada.email)
    await page.goto("/portal/invoices")
    await page.get_by_role("link", name=invoice.number).click()
    await page.get_by_role("button", name="Pay now").click()
    await expect(page.get_by_text("Paid 29.99 USD. Thank you.")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()

    await sign_in(page, await admin_with_login(db), lands_on="/admin")
    await find_customer(page, "ada@example", "Ada Lovelace")
    payment = page.locator("#payments tbody tr").first
    await expect(payment).to_contain_text("Card, Visa ending 4242")
    await expect(payment).to_contain_text("29.99 USD")
    await expect(page.locator("#ledger tbody tr").first).to_contain_text("-29.99 USD")
    await expect(page.locator("#balance")).to_have_text("0.00 USD")


async def test_a_charge_with_a_bad_amount_is_corrected_in_place(page: Page, db: Database) -> None:
    ada = await customer_with_login(db, "ada@example.com", name="Ada Lovelace")
    await sign_in(page, await admin_with_login(db), lands_on="/admin")
    await find_customer(page, "Ada", "Ada Lovelace")

    await mark_document(page)
    await page.get_by_label("Kind").select_option(label="Usage")
    await page.get_by_label("Description").fill("Roaming data 1.2 GB")
    charge = page.locator("form[action$='/charges']")
    amount = charge.get_by_label("Amount (USD)")
    await amount.fill("4.505")
    await page.get_by_role("button", name="Post the charge").click()
    await expect(amount).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#f-charge-amount-error")).to_have_text(
        "USD amounts have at most 2 decimals."
    )
    await expect(page.get_by_label("Description")).to_have_value("Roaming data 1.2 GB")
    await assert_accessible(page)

    await amount.fill("4.50")
    await page.get_by_role("button", name="Post the charge").click()
    await expect(page.locator("#charge-posted")).to_have_text(
        f"Posted 4.50 USD to {ada.account.number}: Roaming data 1.2 GB."
    )
    await expect(page.locator("#balance")).to_have_text("4.50 USD")
    newest = page.locator("#ledger tbody tr").first
    await expect(newest).to_contain_text("Roaming data 1.2 GB")
    await expect(newest).to_contain_text("4.50 USD")
    await assert_same_document(page)
    await assert_accessible(page)


async def test_a_customer_is_kept_out_of_the_administrators_pages(page: Page, db: Database) -> None:
    ada = await customer_with_login(db, "ada@example.com")
    await sign_in(page, ada.email)
    await page.goto("/admin")
    await expect(page).to_have_url(f"{page.url.split('/portal', 1)[0]}/portal")
    response = await page.goto("/admin/customers/anything")
    assert response is not None and response.status == 403
    await assert_accessible(page)
