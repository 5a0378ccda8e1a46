"""The payment systems page at desktop (1280 px) and phone (360 px) width: an account added
through the form is listed, the page never scrolls sideways, and it passes the accessibility
checks; screenshots are kept in the artifacts folder for a look by eye."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, ViewportSize, expect

from billing.db import Database
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import ARTIFACTS
from tests.browser.support import sign_in
from tests.factories import admin_with_login

OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.mark.parametrize("width", [1280, 360])
async def test_the_payment_systems_page_fits_and_reads(
    page: Page, db: Database, width: int
) -> None:
    viewport: ViewportSize = {"width": width, "height": 900}
    await page.set_viewport_size(viewport)
    await sign_in(page, await admin_with_login(db), lands_on="/admin")
    await page.goto("/admin/payment-systems")
    await page.get_by_label("Name", exact=True).fill("Simulated cards")
    await page.get_by_label("Processor").select_option("simulator")
    await page.get_by_label("Currencies and minimum payments").fill("USD 1.00\nEUR 0.50")
    await page.get_by_label("Maestro (Switch)").check()
    await page.get_by_label("Add a credential named").fill("webhook_secret")
    await page.get_by_label("Its value").fill("whsec_browser")
    await page.get_by_role("button", name="Add payment system").click()
    await expect(page.locator("#payment-systems-done")).to_have_text("Saved Simulated cards.")
    await expect(page.locator("#account-1")).to_contain_text("webhook_secret: set")
    shot = Path(ARTIFACTS) / "payment-systems" / f"payment-systems-{width}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(shot), full_page=True)
    assert await page.evaluate(OVERFLOW) <= 0
    assert "whsec_browser" not in await page.content()
    await assert_accessible(page)
