"""A PayPal round trip in a real browser (issue 13 §1): the customer opens an invoice, picks
"Pay another way" and PayPal, is sent to the fake's approval page (served on its own port; the
processor account's API address points there), approves, comes back to kassa's return page and
sees the payment received and the invoice paid.  The pay-another-way page is screenshotted at
a desktop's width and a phone's (test-artifacts/) and must fit the screen."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from billing.db import Database
from processors.fakes import paypal as paypal_fake
from schema.relay import encode_id
from tests.bitcoin_chain import LiveServer as FakeServer
from tests.bitcoin_chain import serving
from tests.browser.conftest import LiveServer
from tests.browser.support import back_to_kassa, sign_in
from tests.factories import customer_with_login, issue_invoice
from tests.redirect_fixtures import make_redirect_account

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def paypal_server() -> Iterator[FakeServer]:
    with serving(paypal_fake.FakePayPal().app) as live:
        yield live


async def test_paypal_round_trip_pays_the_invoice(
    page: Page, db: Database, server: LiveServer, paypal_server: FakeServer
) -> None:
    credentials = {
        "client_id": paypal_fake.CLIENT_ID,
        "client_secret": paypal_fake.CLIENT_SECRET,
        "webhook_id": paypal_fake.WEBHOOK_ID,
    }
    await make_redirect_account(db, "paypal", paypal_server.url, credentials, [("USD", "1.00")])
    login = await customer_with_login(db)
    invoice = await issue_invoice(db, login, 4000)
    await back_to_kassa(page, server)
    await sign_in(page, login.email)
    await page.goto(f"/portal/invoices/{encode_id('Invoice', invoice.id)}")
    await page.get_by_role("link", name="Pay another way").click()
    await expect(page.get_by_role("heading", name="Pay another way")).to_be_visible()
    await expect(page.get_by_label("Amount (USD)")).to_have_value("40.00")
    await page.get_by_label("Paypal").check()
    await page.get_by_role("button", name="Pay", exact=True).click()

    await expect(page).to_have_url(re.compile(re.escape(paypal_server.url) + "/"), timeout=10_000)
    await page.get_by_role("button", name="Pay", exact=True).click()  # PayPal's approval

    await expect(page.locator("#outcome-paid")).to_contain_text("received", timeout=10_000)
    await expect(page.locator("#outcome-paid")).to_contain_text(f"invoice {invoice.number}")
    await page.reload()  # safe to reload
    await expect(page.locator("#outcome-paid")).to_be_visible()
    await page.get_by_role("link", name=f"See invoice {invoice.number}").click()
    await expect(page.get_by_text("Nothing left to pay on this invoice.")).to_be_visible()


@pytest.mark.parametrize("width", [1280, 360])
async def test_the_pay_another_way_page_fits_the_screen(
    page: Page, db: Database, server: LiveServer, paypal_server: FakeServer, width: int
) -> None:
    credentials = {"client_id": "c", "client_secret": "s", "webhook_id": "w"}
    await make_redirect_account(db, "paypal", paypal_server.url, credentials, [("USD", "1.00")])
    login = await customer_with_login(db)
    await page.set_viewport_size({"width": width, "height": 900})
    await sign_in(page, login.email)
    await page.get_by_role("link", name="Pay another way").click()
    await expect(page.get_by_role("radio", name="Paypal")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / f"redirect-pay-{width}.png", full_page=True)
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= width
