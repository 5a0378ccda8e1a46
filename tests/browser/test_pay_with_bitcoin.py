"""Pay with Bitcoin in a real browser (issue 11): the QR code on the dashboard decodes —
read from a screenshot of the SVG element by zxing-cpp, as a phone's camera would read the
screen — to exactly the BIP21 link shown beside it, at a desktop's width and a phone's."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Page, expect

from billing.bitcoin_wallets import WalletInput, set_wallet
from billing.db import Database
from schema.relay import encode_id
from tests.bitcoin_keys import TESTNET_VPUB
from tests.browser.support import sign_in
from tests.factories import admin_viewer, customer_with_login, freeze_clock, issue_invoice


async def _wallet(db: Database) -> None:
    await freeze_clock(db)
    async with db.transaction() as session:
        await set_wallet(
            session, admin_viewer(), WalletInput(TESTNET_VPUB, fixed_rates=[("USD", "65000.00")])
        )


async def _decoded_qr(page: Page) -> str:
    png = await page.locator("#bitcoin-qr svg").screenshot()
    codes = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(codes) == 1, f"{len(codes)} codes found in the QR code's picture"
    assert codes[0].format == zxingcpp.BarcodeFormat.QRCode
    text: str = codes[0].text
    return text


@pytest.mark.parametrize("width", [1280, 360])
async def test_the_qr_code_decodes_to_the_link_beside_it(
    page: Page, db: Database, width: int
) -> None:
    await _wallet(db)
    login = await customer_with_login(db, name="Ada Lovelace")
    await page.set_viewport_size({"width": width, "height": 900})
    await sign_in(page, login.email)
    section = page.locator("#pay-with-bitcoin")
    await expect(section.get_by_role("heading", name="Pay with Bitcoin")).to_be_visible()
    await section.get_by_role("button", name="Get a bitcoin address").click()
    await expect(page.locator("#bitcoin-qr svg")).to_be_visible()

    uri = await page.get_by_role("textbox", name="Payment link").input_value()
    address = await page.get_by_role("textbox", name="Address", exact=True).input_value()
    assert uri.startswith(f"bitcoin:{address.upper()}?")
    assert await _decoded_qr(page) == uri
    # The copy button is there (the script runs under the page's CSP) and says what it did.
    await section.get_by_role("button", name="Copy").first.click()
    await expect(section.locator(".copy-status")).to_have_text("Payment link copied.")
    # The section fits the screen: nothing wider than the viewport.
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= width


async def test_an_open_invoice_s_qr_code_asks_for_its_amount(page: Page, db: Database) -> None:
    await _wallet(db)
    login = await customer_with_login(db)
    invoice = await issue_invoice(db, login, 13_000)  # 130.00 USD at 65,000.00 = 0.002 BTC
    await sign_in(page, login.email)
    await page.goto(f"/portal/invoices/{encode_id('Invoice', invoice.id)}")
    await page.get_by_role("button", name="Get a bitcoin address").click()
    await expect(page.locator("#bitcoin-amount")).to_have_text("0.00200000 BTC")
    uri = await page.get_by_role("textbox", name="Payment link").input_value()
    assert "amount=0.002" in uri
    assert await _decoded_qr(page) == uri
