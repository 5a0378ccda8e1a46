"""Collection pages in a browser, with data in them (an empty table hides axe's rules about
tables): the review queue approves the ticked invoices in place under htmx (the button
pressed says what to do, so htmx must send it), a class form shows its errors, and the
customer's invoice lists its card attempts."""

from __future__ import annotations

from playwright.async_api import Page, expect

from billing.db import Database
from billing.models import CardCharging
from tests.browser.accessibility import assert_accessible
from tests.browser.support import assert_same_document, mark_document, sign_in
from tests.factories import (
    admin_with_login,
    customer_class,
    customer_with_login,
    issue_invoice,
    store_card,
)


async def test_the_review_queue_approves_in_place(page: Page, db: Database) -> None:
    class_id = await customer_class(db, "Reviewed", review=True)
    login = await customer_with_login(db, class_id=class_id)
    for amount in (1_000, 2_000):
        await issue_invoice(db, login, amount)
    await sign_in(page, await admin_with_login(db), lands_on="/admin")

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Review").click()
    await expect(page.get_by_role("heading", name="2 invoices waiting")).to_be_visible()
    await assert_accessible(page)
    await mark_document(page)
    await page.locator("#review-invoices tbody input[type=checkbox]").first.check()
    await page.get_by_role("button", name="Approve selected").click()
    await expect(page.locator("#review-done")).to_contain_text("Approved")
    await expect(page.get_by_role("heading", name="1 invoice waiting")).to_be_visible()
    await assert_same_document(page)

    await page.get_by_role("button", name="Void selected").click()  # nothing ticked, no reason
    await expect(page.get_by_role("alert")).to_be_visible()
    await assert_accessible(page)


async def test_class_pages_with_errors_are_accessible(page: Page, db: Database) -> None:
    await customer_class(
        db, "Collected", card_charging=CardCharging.ON_DUE_DATE, attempt_days_after_due=[0, 3]
    )
    await sign_in(page, await admin_with_login(db), lands_on="/admin")
    await page.goto("/admin/classes")
    await assert_accessible(page)
    await page.get_by_role("link", name="Collected").click()
    field = page.locator("fieldset", has_text="Regular invoices").get_by_label(
        "Also days after the due date"
    )
    await field.fill("0,x")
    await page.get_by_role("button", name="Save").click()
    await expect(field).to_have_attribute("aria-invalid", "true")
    await assert_accessible(page)


async def test_the_invoice_page_with_attempts_is_accessible(page: Page, db: Database) -> None:
    class_id = await customer_class(
        db, "Charged", card_charging=CardCharging.ON_DUE_DATE, attempt_days_after_due=[0, 3]
    )
    login = await customer_with_login(db, class_id=class_id, auto_payment=True)
    await store_card(db, login)
    await issue_invoice(db, login, 1_000)
    await sign_in(page, login.email)
    await page.goto("/portal/invoices")
    await page.locator("#invoice-list tbody tr a").first.click()
    await expect(page.locator("#next-attempt")).to_contain_text("Next attempt:")
    await assert_accessible(page)
