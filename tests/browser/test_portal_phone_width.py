"""At phone width (360 px) every table fits: the invoice list stacks its rows as cards, the
page never scrolls sideways, and the row's first cell reads like the others."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, ViewportSize, expect

from billing.db import Database
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import ARTIFACTS
from tests.browser.support import sign_in
from tests.factories import customer_with_login, issue_invoice, settle_in_cash

PHONE: ViewportSize = {"width": 360, "height": 740}
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


async def test_the_invoice_list_fits_a_phone(page: Page, db: Database) -> None:
    ada = await customer_with_login(db, name="Ada Lovelace")
    for amount in (3_046_890, 1_500, 700):
        await issue_invoice(db, ada, amount, description="Fibre")
    await settle_in_cash(db, ada, 1_500)
    await page.set_viewport_size(PHONE)
    await sign_in(page, ada.email)

    await page.goto("/portal/invoices")
    await expect(page.locator("#invoices tbody tr")).to_have_count(3)
    shot = Path(ARTIFACTS) / "phone-width" / "invoices-360.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(shot), full_page=True)

    assert await page.evaluate(OVERFLOW) <= 0
    # Every figure of a row is on screen: nothing is cut off to the right.
    for cell in await page.locator("#invoices tbody td").all():
        box = await cell.bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"]
    await expect(page.locator("#invoices")).to_contain_text("30,468.90 USD")
    # The first cell is set as the others are: same size, same weight, same colour.
    styles = await page.evaluate(
        """() => [...document.querySelectorAll('#invoices tbody tr:first-child > *')].map(
            cell => { const s = getComputedStyle(cell);
                      return [s.fontSize, s.fontWeight, s.color].join(' '); })"""
    )
    assert len(set(styles)) == 1, styles
    await assert_accessible(page)


async def test_no_customer_page_scrolls_sideways_on_a_phone(page: Page, db: Database) -> None:
    ada = await customer_with_login(db, name="Ada Lovelace", phone="+442079460001")
    invoice = await issue_invoice(db, ada, 1_500)
    await page.set_viewport_size(PHONE)
    await sign_in(page, ada.email)
    for path in (
        "/portal",
        "/portal/payments",
        "/portal/accounts",
        "/portal/profile",
        "/portal/direct-debit",
    ):
        await page.goto(path)
        assert await page.evaluate(OVERFLOW) <= 0, path
    await page.goto("/portal/invoices")
    await page.get_by_role("link", name=invoice.number).click()
    await expect(page.locator("#invoice-outstanding")).to_have_text("15.00 USD")
    assert await page.evaluate(OVERFLOW) <= 0
