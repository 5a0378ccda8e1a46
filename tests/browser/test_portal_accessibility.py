"""Every customer-portal page passes axe-core with no serious or critical violation.

The pages are found by following the portal's own navigation, so a page added to it is
checked without anyone remembering to list it here; the pages outside the navigation (one
invoice, the sign-in and password pages, the error pages, a form showing its errors) are
visited by name.  Each page is checked with data in it: an empty table hides the rules
about tables.
"""

from __future__ import annotations

from playwright.async_api import Page, expect

from billing.db import Database
from tests.browser.accessibility import assert_accessible
from tests.browser.support import (
    admin_login,
    customer_login,
    issue_invoice,
    settle_in_cash,
    sign_in,
    store_card,
)


async def test_every_page_in_the_navigation_is_accessible(page: Page, db: Database) -> None:
    login = await customer_login(db, name="Ada Lovelace", credit_limit=10_000)
    await store_card(db, login.party)
    await issue_invoice(db, login.party, 1_000, "February")
    await settle_in_cash(db, login.party, 400)
    await sign_in(page, login.email)

    links = page.get_by_role("navigation", name="Main").get_by_role("link")
    paths = [await link.get_attribute("href") for link in await links.all()]
    assert "/portal/invoices" in paths and "/portal/payment-methods" in paths, paths
    checked = []
    for path in paths:
        assert path is not None
        response = await page.goto(path)
        assert response is not None and response.status == 200, path
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        await expect(page.locator("[aria-current=page]")).to_have_attribute("href", path)
        await assert_accessible(page)
        checked.append(path)

    await page.goto("/portal/invoices")
    await page.locator("#invoice-list tbody tr a").first.click()
    await expect(page.get_by_role("heading", name="Charges")).to_be_visible()
    await assert_accessible(page)
    assert len(checked) >= 6, checked


async def test_every_page_in_the_administrators_navigation_is_accessible(
    page: Page, db: Database
) -> None:
    """The same crawl for an administrator, then the pages reached from the customer list
    (a customer with invoices, payments and ledger transactions) and the admin 404 page."""
    login = await customer_login(db, name="Ada Lovelace", credit_limit=10_000)
    await store_card(db, login.party)
    await issue_invoice(db, login.party, 1_000, "February")
    await settle_in_cash(db, login.party, 400)
    await sign_in(page, await admin_login(db), lands_on="/admin")

    links = page.get_by_role("navigation", name="Main").get_by_role("link")
    paths = [await link.get_attribute("href") for link in await links.all()]
    assert paths and all(path is not None and path.startswith("/admin") for path in paths), paths
    for path in paths:
        assert path is not None
        response = await page.goto(path)
        assert response is not None and response.status == 200, path
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        await expect(page.locator("[aria-current=page]")).to_have_attribute("href", path)
        await assert_accessible(page)

    await page.goto("/admin")
    await page.locator("#customers tbody tr a").first.click()
    await expect(page.get_by_role("heading", name="Ledger transactions (2)")).to_be_visible()
    await assert_accessible(page)
    response = await page.goto("/admin/customers/not-an-id")
    assert response is not None and response.status == 404
    await assert_accessible(page)


async def test_forms_showing_their_errors_are_accessible(page: Page, db: Database) -> None:
    """An error must be tied to its field and announced: the page at its most complex."""
    login = await customer_login(db)
    await store_card(db, login.party)
    await sign_in(page, login.email)

    await page.goto("/portal/profile")
    await page.get_by_label("E-mail address").fill("not an address")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("[aria-invalid=true]").first).to_be_visible()
    await assert_accessible(page)

    await page.goto("/portal")
    await page.get_by_label("Amount (USD)").fill("1.234")
    await page.get_by_role("button", name="Add credit").click()
    await expect(page.get_by_label("Amount (USD)")).to_have_attribute("aria-invalid", "true")
    await assert_accessible(page)


async def test_pages_for_visitors_not_signed_in_are_accessible(page: Page, db: Database) -> None:
    for path in [
        "/portal/sign-in",
        "/portal/sign-in?notice=signed-out",
        "/portal/password-reset",
        "/portal/password-reset/not-a-real-token",
    ]:
        response = await page.goto(path)
        assert response is not None and response.status == 200, path
        await assert_accessible(page)
    await page.goto("/portal/password-reset")
    await page.get_by_label("E-mail address").fill("nobody@example.com")
    await page.get_by_role("button", name="Send the link").click()
    await expect(page.get_by_role("status").or_(page.get_by_role("alert")).first).to_be_visible()
    await assert_accessible(page)


async def test_error_pages_are_accessible(page: Page, db: Database) -> None:
    login = await customer_login(db)
    await sign_in(page, login.email)
    response = await page.goto("/portal/no-such-page")
    assert response is not None and response.status == 404
    await assert_accessible(page)
    response = await page.goto("/portal/invoices/not-an-id")
    assert response is not None and response.status == 404
    await assert_accessible(page)
