"""The administrators' Bitcoin page: settings through setBitcoinWallet, refusals beside the
field (a secret never written back), the zero-confirmation warning and the gap figure."""

from __future__ import annotations

from billing.bitcoin_addresses import request_address
from billing.db import Database
from tests.bitcoin_keys import BIP49_TPRV, TESTNET_VPUB
from tests.factories import admin_viewer, make_customer
from tests.portal_support import Browser, text_of

pytest_plugins = ["tests.portal_fixtures"]

PATH = "/admin/bitcoin"
SETTINGS = {
    "addressType": "",
    "minimumPayment": "0.0001",
    "minimumPaymentCurrency": "BTC",
    "confirmationsRequired": "1",
    "rateSource": "FIXED",
    "fixedRates": "USD 65000.00\nEUR 60000.00",
    "priceEndpoints": "",
}


async def test_an_administrator_sets_the_wallet_and_sees_the_gap_figure(
    admin: Browser, db: Database
) -> None:
    page = await admin.open(PATH)
    assert page.status_code == 200
    assert "not set up" in text_of(page.text, "bitcoin-unset")
    saved = await admin.submit(PATH, {**SETTINGS, "accountKey": TESTNET_VPUB}, htmx=True)
    assert saved.status_code == 200, saved.text
    assert text_of(saved.text, "bitcoin-done") == "Saved."
    assert text_of(saved.text, "unfunded") == "0"
    async with db.transaction() as session:
        customer = await make_customer(session)
        await request_address(session, admin_viewer(), customer.id)
    page = await admin.open(PATH)
    assert text_of(page.text, "unfunded") == "1"
    assert "gap limit above 1" in page.text
    assert "USD 65000.00" in page.text and TESTNET_VPUB in page.text


async def test_a_private_key_is_refused_and_not_shown_again(admin: Browser) -> None:
    await admin.open(PATH)
    refused = await admin.submit(PATH, {**SETTINGS, "accountKey": BIP49_TPRV}, htmx=True)
    assert refused.status_code == 422
    assert "private key" in refused.text
    assert BIP49_TPRV not in refused.text


async def test_zero_confirmations_carry_a_warning(admin: Browser) -> None:
    await admin.open(PATH)
    fields = {**SETTINGS, "accountKey": TESTNET_VPUB, "confirmationsRequired": "0"}
    saved = await admin.submit(PATH, fields, htmx=True)
    assert "before any confirmation" in text_of(saved.text, "bitcoin-warning")


async def test_a_malformed_rate_line_is_shown_beside_its_field(admin: Browser) -> None:
    await admin.open(PATH)
    fields = {**SETTINGS, "accountKey": TESTNET_VPUB, "fixedRates": "USD"}
    refused = await admin.submit(PATH, fields, htmx=True)
    assert refused.status_code == 422
    assert "One currency and price per line" in text_of(refused.text, "f-fixedRates-error")


async def test_a_customer_is_not_shown_the_page(signed_in: Browser) -> None:
    page = await signed_in.open(PATH)
    assert page.url.path != PATH or page.status_code in (403, 404)
