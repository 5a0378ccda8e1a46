"""The administrators' invoice page in a browser: from the review queue to the invoice, then
approve it; from the customer's page to another invoice, then void it with a reason."""

from __future__ import annotations

from playwright.async_api import Page, expect

from billing.db import Database
from tests.browser.accessibility import assert_accessible
from tests.browser.support import sign_in
from tests.factories import admin_with_login, customer_class, issue_invoice, new_party


async def test_an_administrator_approves_and_voids_from_the_invoice_page(
    page: Page, db: Database
) -> None:
    class_id = await customer_class(db, "Reviewed", review=True)
    party = await new_party(db, name="Ada Lovelace", class_id=class_id)
    held = await issue_invoice(db, party, 4_000, description="Fibre, March")
    await sign_in(page, await admin_with_login(db), lands_on="/admin")

    await page.goto("/admin/review")
    await page.get_by_role("link", name=held.number).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {held.number}")
    await expect(page.locator("#invoice-status")).to_have_text("Waiting for review")
    await expect(page.locator("#invoice-lines")).to_contain_text("Fibre, March")
    await expect(page.locator("#invoice-history")).to_contain_text("Issued")
    await assert_accessible(page)

    await page.get_by_role("button", name="Approve").click()
    await expect(page.locator("#invoice-done")).to_have_text(f"Approved {held.number}.")
    await expect(page.locator("#invoice-status")).to_have_text("Unpaid")
    await expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    await assert_accessible(page)

    # Void it: without a reason the form says so beside the field; with one, it is void.
    await page.get_by_role("button", name="Void the invoice").click()
    await expect(page.locator("#f-reason-error")).to_be_visible()
    await expect(page.locator("#invoice-status")).to_have_text("Unpaid")
    await page.get_by_label("Reason for voiding").fill("Billed twice")
    await page.get_by_role("button", name="Void the invoice").click()
    await expect(page.locator("#invoice-done")).to_have_text(f"Voided {held.number}.")
    await expect(page.locator("#invoice-status")).to_have_text("Void")
    await expect(page.locator("#void-reason")).to_have_text("Billed twice")
    await expect(page.locator("#invoice-history")).to_contain_text("Voided")
    await assert_accessible(page)

    # Back on the customer's page the number links to the same invoice.
    await page.get_by_role("link", name="← Ada Lovelace").click()
    await page.locator("#invoices").get_by_role("link", name=held.number).click()
    await expect(page.locator("#invoice-status")).to_have_text("Void")
