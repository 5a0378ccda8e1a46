"""Pay with Bitcoin in the customer portal (issue 11, item 3): the address, its BIP21 link and
QR code from the API, the terms, a fresh address on request, the recent bitcoin payments
with their state — and a plain sentence when the customer's owner takes no bitcoin."""

from __future__ import annotations

import httpx

from billing import clock
from billing.bitcoin_payments import scan
from billing.bitcoin_wallets import WalletInput, set_wallet
from billing.db import Database
from schema.relay import encode_id
from tests.bitcoin_keys import TESTNET_VPUB
from tests.factories import Login, admin_viewer, freeze_clock, issue_invoice
from tests.portal_support import Browser, parse, text_of
from wallets.esplora import EsploraWatcher
from wallets.fake_chain import FakeChain, esplora_app

pytest_plugins = ["tests.portal_fixtures"]


async def _wallet(db: Database, confirmations: int = 1) -> None:
    await freeze_clock(db)
    async with db.transaction() as session:
        await set_wallet(
            session,
            admin_viewer(),
            WalletInput(
                TESTNET_VPUB, confirmations=confirmations, fixed_rates=[("USD", "65000.00")]
            ),
        )


def _field_value(html: str, element_id: str) -> str:
    marker = f'id="{element_id}" type="text" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


async def test_a_customer_gets_an_address_and_sees_it_with_its_qr_code(
    signed_in: Browser, db: Database
) -> None:
    await _wallet(db, confirmations=2)
    page = await signed_in.open("/portal")
    assert "Get a bitcoin address" in text_of(page.text, "pay-with-bitcoin")
    shown = await signed_in.submit("/portal/bitcoin-address", htmx=True)
    assert shown.status_code == 200, shown.text
    uri = _field_value(shown.text, "bitcoin-uri")
    address = _field_value(shown.text, "bitcoin-address")
    assert address.startswith("tb1q")
    assert uri.startswith(f"bitcoin:{address.upper()}?") and "label=" in uri
    assert "<svg" in shown.text.split('id="bitcoin-qr"', 1)[1][:200]
    assert text_of(shown.text, "bitcoin-rate").startswith("1 BTC = 65,000.00 USD, as of ")
    assert text_of(shown.text, "bitcoin-minimum").startswith("0.0001")
    assert text_of(shown.text, "bitcoin-confirmations") == "Credited after 2 confirmations"
    assert text_of(shown.text, "bitcoin-amount") == "Any amount: it is added to your credit"
    # A new address, for privacy: another one is shown.
    await signed_in.open("/portal")
    again = await signed_in.submit("/portal/bitcoin-address")
    assert _field_value(again.text, "bitcoin-address") != address


async def test_an_open_invoice_asks_for_what_is_still_to_pay(
    signed_in: Browser, customer: Login, db: Database
) -> None:
    await _wallet(db)
    invoice = await issue_invoice(db, customer, 6500)  # 65.00 USD = 0.001 BTC
    path = f"/portal/invoices/{encode_id('Invoice', invoice.id)}"
    await signed_in.open(path)
    shown = await signed_in.submit(f"{path}/bitcoin-address")
    assert shown.status_code == 200, shown.text
    assert text_of(shown.text, "bitcoin-amount") == "0.00100000 BTC"
    uri = _field_value(shown.text, "bitcoin-uri")
    assert "amount=0.001" in uri and "Invoice" in uri


async def test_recent_payments_show_their_state(
    signed_in: Browser, customer: Login, db: Database
) -> None:
    await _wallet(db)
    await signed_in.open("/portal")
    address = _field_value(
        (await signed_in.submit("/portal/bitcoin-address")).text, "bitcoin-address"
    )
    chain = FakeChain()
    watcher = EsploraWatcher("http://fake", transport=httpx.ASGITransport(app=esplora_app(chain)))
    chain.pay(address, 100_000)
    async with db.session() as session:
        now = await clock.now(session)
    await scan(db, now, watcher)
    page = await signed_in.open("/portal")
    rows = text_of(page.text, "bitcoin-payments")
    assert "0.00100000 BTC" in rows and "65.00 USD" in rows and "Pending" in rows
    chain.mine()
    await scan(db, now, watcher)
    page = await signed_in.open("/portal")
    assert "Credited" in text_of(page.text, "bitcoin-payments")
    assert text_of(page.text, "balance") == "-65.00 USD"


async def test_without_a_wallet_bitcoin_is_not_offered(signed_in: Browser) -> None:
    await signed_in.open("/portal")
    refused = await signed_in.submit("/portal/bitcoin-address", htmx=True)
    assert text_of(refused.text, "bitcoin-not-offered") == (
        "Bitcoin payments are not offered on this account."
    )
    assert parse(refused.text).texts.get("bitcoin-qr") is None
