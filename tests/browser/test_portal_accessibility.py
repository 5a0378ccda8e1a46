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
from tests.browser.support import sign_in
from tests.factories import (
    Login,
    admin_with_login,
    customer_with_login,
    issue_invoice,
    settle_in_cash,
    store_card,
)


async def _customer_with_history(db: Database) -> Login:
    """A customer with a card, an invoice and a cash payment: no page is empty."""
    login = await customer_with_login(db, name="Ada Lovelace", credit_limit=10_000)
    await store_card(db, login)
    await issue_invoice(db, login, 1_000, description="February")
    await settle_in_cash(db, login, 400)
    return login


async def _crawl_navigation(page: Page) -> list[str]:
    """Visit every page the main navigation links to; each must load, have a heading, be
    marked as the current page and pass axe.  Returns the paths visited."""
    links = page.get_by_role("navigation", name="Main").get_by_role("link")
    paths = [await link.get_attribute("href") for link in await links.all()]
    visited = []
    for path in paths:
        assert path is not None
        response = await page.goto(path)
        assert response is not None and response.status == 200, path
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        await expect(page.locator("[aria-current=page]")).to_have_attribute("href", path)
        await assert_accessible(page)
        visited.append(path)
    return visited


async def test_every_page_in_the_navigation_is_accessible(page: Page, db: Database) -> None:
    login = await _customer_with_history(db)
    await sign_in(page, login.email)

    checked = await _crawl_navigation(page)
    assert "/portal/invoices" in checked and "/portal/payment-methods" in checked, checked

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
    await _customer_with_history(db)
    await sign_in(page, await admin_with_login(db), lands_on="/admin")

    checked = await _crawl_navigation(page)
    assert checked and all(path.startswith("/admin") for path in checked), checked

    await page.goto("/admin")
    await page.locator("#customers tbody tr a").first.click()
    await expect(page.get_by_role("heading", name="Ledger transactions (2)")).to_be_visible()
    await assert_accessible(page)
    response = await page.goto("/admin/customers/not-an-id")
    assert response is not None and response.status == 404
    await assert_accessible(page)


async def test_forms_showing_their_errors_are_accessible(page: Page, db: Database) -> None:
    """An error must be tied to its field and announced: the page at its most complex."""
    login = await customer_with_login(db)
    await store_card(db, login)
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
    login = await customer_with_login(db)
    await sign_in(page, login.email)
    response = await page.goto("/portal/no-such-page")
    assert response is not None and response.status == 404
    await assert_accessible(page)
    response = await page.goto("/portal/invoices/not-an-id")
    assert response is not None and response.status == 404
    await assert_accessible(page)
