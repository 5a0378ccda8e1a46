"""Flagged bitcoin payments on /admin/bitcoin: below-minimum and reorganised payments are
listed with their customer, amount and state; a below-minimum one is credited by hand with
the form (CSRF-checked, once for a double click); another owner's are not listed."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from billing import clock
from billing.bitcoin_addresses import request_address
from billing.bitcoin_payments import flagged_payments, scan
from billing.bitcoin_wallets import WalletInput, set_wallet
from billing.db import Database
from billing.errors import NotFound
from billing.models import BitcoinPaymentState, Reseller
from tests.bitcoin_keys import TESTNET_TPUB, TESTNET_VPUB
from tests.factories import admin_viewer, make_customer, make_reseller
from tests.portal_support import Browser, csrf_token, form_fields, text_of
from wallets.esplora import EsploraWatcher
from wallets.fake_chain import FakeChain, esplora_app

pytest_plugins = ["tests.portal_fixtures"]

PATH = "/admin/bitcoin"
CREDIT = "/admin/bitcoin/credit"


async def _flagged_world(db: Database) -> tuple[FakeChain, int, str]:
    """The provider's customer Ada paid below the minimum and had a credit reorganised
    away; a reseller's customer paid below its owner's minimum too."""
    fake = FakeChain()
    async with db.transaction() as session:
        await set_wallet(
            session,
            admin_viewer(),
            WalletInput(TESTNET_VPUB, confirmations=1, fixed_rates=[("USD", "65000.00")]),
        )
        reseller = await make_reseller(session)
        reseller_admin = admin_viewer(reseller.id)
        await set_wallet(
            session,
            reseller_admin,
            WalletInput(TESTNET_TPUB, confirmations=1, fixed_rates=[("USD", "65000.00")]),
        )
        ada = await make_customer(session, name="Ada Flagged")
        other = await make_customer(session, reseller_admin, name="Reseller Customer")
        ada_address = (await request_address(session, admin_viewer(), ada.id)).address
        other_address = (await request_address(session, reseller_admin, other.id)).address
        ada_id = ada.id
    fake.pay(ada_address, 9_000)  # below the default 10,000 sat
    reorganised = fake.pay(ada_address, 100_000)
    fake.pay(other_address, 5_000)
    fake.mine()
    watcher = EsploraWatcher("http://fake", transport=httpx.ASGITransport(app=esplora_app(fake)))
    async with db.session() as session:
        now = await clock.now(session)
    await scan(db, now, watcher)
    fake.reorganise(reorganised)
    await scan(db, now, watcher)
    return fake, ada_id, other_address


async def test_flagged_payments_are_scoped_to_the_owner(db: Database) -> None:
    await _flagged_world(db)
    async with db.session() as session:
        provider = await flagged_payments(session, admin_viewer(), None)
        assert sorted(row.payment.state for row in provider) == [
            BitcoinPaymentState.BELOW_MINIMUM,
            BitcoinPaymentState.REVERSED,
        ]
        assert {row.customer.name for row in provider} == {"Ada Flagged"}


async def test_a_resellers_admin_sees_only_its_own(db: Database) -> None:
    await _flagged_world(db)
    async with db.session() as session:
        reseller = (await session.scalars(select(Reseller))).one()
        own = await flagged_payments(session, admin_viewer(reseller.id), None)
        assert [row.customer.name for row in own] == ["Reseller Customer"]
        # The provider reaches the reseller's list; the reseller not the provider's.
        theirs = await flagged_payments(session, admin_viewer(), reseller.id)
        assert [row.customer.name for row in theirs] == ["Reseller Customer"]
        with pytest.raises(NotFound):
            await flagged_payments(session, admin_viewer(reseller.id), reseller.id + 1)


async def test_the_page_lists_them_and_credits_one_by_hand(admin: Browser, db: Database) -> None:
    await _flagged_world(db)
    page = await admin.open(PATH)
    assert page.status_code == 200
    table = text_of(page.text, "flagged-payments")
    assert "Ada Flagged" in table and "Reseller Customer" not in table
    assert "0.00009000 BTC" in table and "0.00100000 BTC" in table
    assert "Below the minimum" in table and "Reversed (chain reorganisation)" in table
    assert page.text.count('name="bitcoinPaymentId"') == 1  # the reversed one has no button

    fields = form_fields(page.text, CREDIT)
    # Without the CSRF token the post is refused and nothing is credited.
    forged = await admin.http.post(
        CREDIT, data={k: v for k, v in fields.items() if k != "csrf_token"}
    )
    assert forged.status_code == 403
    credited = await admin.submit(CREDIT, htmx=True)
    assert credited.status_code == 200, credited.text
    assert text_of(credited.text, "credited") == "Credited by hand."
    assert 'name="bitcoinPaymentId"' not in credited.text
    # A double click sends the same key: the API replays, nothing is credited twice.
    again = await admin.http.post(
        CREDIT,
        data=fields,
        headers={"X-CSRF-Token": csrf_token(page.text), "HX-Request": "true"},
    )
    assert again.status_code == 200, again.text
    assert "Credited by hand." in again.text
