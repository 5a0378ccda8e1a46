"""The PayNearMe cash slip in a real browser (issue 13): the slip page's barcode — a screenshot
of the SVG element read by zxing-cpp, as a store's scanner reads the printed slip — decodes to
exactly the payment identifier printed beside it, at a desktop's width and a phone's; the
dashboard links to it; the page passes the accessibility checks; the print stylesheet prints
the slip alone; the PDF link serves the slip."""

from __future__ import annotations

import io
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Page, expect

from billing.db import Database
from billing.processor_accounts import AccountInput, create_account
from processors.fakes.paynearme import SECRET_KEY, SITE_IDENTIFIER, FakePayNearMe
from tests.bitcoin_chain import LiveServer, serving
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import ARTIFACTS
from tests.browser.support import sign_in
from tests.factories import admin_viewer, customer_with_login, freeze_clock, issue_invoice


@pytest.fixture(scope="module")
def paynearme() -> Iterator[LiveServer]:
    with serving(FakePayNearMe().app) as live:
        yield live


async def _offer_paynearme(db: Database, url: str) -> None:
    await freeze_clock(db)
    async with db.transaction() as session:
        await create_account(
            session,
            admin_viewer(),
            AccountInput(
                name="PayNearMe",
                processor="paynearme",
                credentials={"site_identifier": SITE_IDENTIFIER, "secret_key": SECRET_KEY},
                base_url=url,
                minimums=[("USD", "0.01")],
            ),
        )


async def _decoded_barcode(page: Page) -> str:
    png = await page.locator("#slip-barcode svg").screenshot()
    codes = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(codes) == 1, f"{len(codes)} codes found in the barcode's picture"
    assert codes[0].format == zxingcpp.BarcodeFormat.Code128
    text: str = codes[0].text
    return text


@pytest.mark.parametrize("width", [1280, 360])
async def test_the_slip_barcode_decodes_to_the_identifier_beside_it(
    page: Page, db: Database, paynearme: LiveServer, width: int
) -> None:
    await _offer_paynearme(db, paynearme.url)
    login = await customer_with_login(db, name="Ada Lovelace")
    await issue_invoice(db, login, 4250)
    await page.set_viewport_size({"width": width, "height": 900})
    await sign_in(page, login.email)
    await page.locator("#pay-in-cash").get_by_role("link", name="Print your payment slip").click()
    await expect(page.get_by_role("heading", name="Pay in cash at a store")).to_be_visible()

    identifier = (await page.locator("#slip-identifier").inner_text()).strip()
    assert identifier.isdigit() and len(identifier) > 10
    assert await _decoded_barcode(page) == identifier
    await expect(page.locator("#slip-customer")).to_have_text("Ada Lovelace")
    await expect(page.locator("#slip-amount")).to_have_text("42.50 USD")
    await expect(page.locator("#slip-where")).to_contain_text("7-Eleven, ACE Cash Express")
    await expect(page.get_by_role("button", name="Print the slip")).to_be_visible()
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= width
    await assert_accessible(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / f"cash-slip-{width}.png", full_page=True)

    # Printed, the slip is all there is; it still decodes.
    await page.emulate_media(media="print")
    await expect(page.locator(".site-header")).to_be_hidden()
    await expect(page.get_by_role("button", name="Print the slip")).to_be_hidden()
    assert await _decoded_barcode(page) == identifier
    await page.emulate_media(media="screen")

    # A second visit shows the same slip: it is the customer's for good.
    await page.reload()
    await expect(page.locator("#slip-identifier")).to_have_text(identifier)
    pdf_url = await page.get_by_role("link", name="Download the slip (PDF)").get_attribute("href")
    assert pdf_url is not None
    # The link is absolute under the installation's public address; fetched here from the
    # live server, without the session's cookies (the signed link is the permission).
    here = urlsplit(page.url)
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{here.scheme}://{here.netloc}{urlsplit(pdf_url).path}")
    assert answer.status_code == 200 and answer.content.startswith(b"%PDF")
    (ARTIFACTS / "cash-slip.pdf").write_bytes(answer.content)


async def test_without_paynearme_the_dashboard_has_no_slip(page: Page, db: Database) -> None:
    login = await customer_with_login(db)
    await sign_in(page, login.email)
    await expect(page.get_by_role("heading", name="Hello, Ada Lovelace")).to_be_visible()
    await expect(page.locator("#pay-in-cash")).to_have_count(0)
    await page.goto("/portal/slip")
    await expect(page.locator("#slip-not-offered")).to_be_visible()
