"""Issue 13's "done when", over the demo ``make run`` loads: every way to pay without a stored
card works there, through the payment systems' fakes, as a customer would use it.

Loading the demo takes about a minute, so one test loads it once and walks every channel in
turn: an invoice paid through PayPal then Skrill (a part each), another through Payarena then
Remita; a PayNearMe slip printed and paid at the fake's store; a payment at a cash terminal by
the command docs/terminals.md documents, signed with the demo network's secret.  After each,
the customer's balance and payments page and the administrator's page of the customer show
it.  The portal is driven over HTTP (the browser round trip is tests/browser's); the fakes
call kassa back over real HTTP.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app import create_app
from billing import ledger
from billing.db import Database
from billing.demo import ADMIN_LOGIN, CUSTOMER_PASSWORD, DEMO_TERMINAL_SECRET, load_demo
from billing.models import Account, Customer, Invoice, InvoiceStatus, Payment, ProcessorAccount
from schema.relay import encode_id
from tests.bitcoin_chain import serving
from tests.graphql_support import BASE_URL
from tests.portal_support import Browser, text_of
from tests.redirect_browser import round_trip
from tests.terminal_docs import documented_pay


@dataclass
class Demo:
    """The loaded demo: its database, kassa served over real HTTP (where the fakes call
    back), and signed-in browsers on the app."""

    db: Database
    kassa_url: str

    async def browser(self, email: str, password: str = CUSTOMER_PASSWORD) -> Browser:
        app = create_app(self.db.settings, database=self.db)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
        browser = Browser(client)
        signed_in = await browser.sign_in(email, password)
        assert signed_in.status_code == 200 and "sign-in" not in signed_in.url.path
        return browser


@pytest.fixture
async def demo(demo_db: Database) -> AsyncIterator[Demo]:
    """The demo, loaded once (a minute or so), with kassa on a loopback port: a database of
    its own opened by its lifespan, as ``kassa serve`` does."""
    await load_demo(demo_db)
    with serving(create_app(demo_db.settings)) as kassa:
        yield Demo(demo_db, kassa.url)


async def _customer(db: Database, email: str) -> Customer:
    async with db.session() as session:
        found = await session.scalar(select(Customer).where(Customer.email == email))
    assert found is not None
    return found


async def _open_invoice(db: Database, customer: Customer) -> Invoice:
    async with db.session() as session:
        found = await session.scalar(
            select(Invoice)
            .where(
                Invoice.customer_id == customer.id,
                Invoice.status.in_([InvoiceStatus.UNPAID, InvoiceStatus.PARTIALLY_PAID]),
            )
            .order_by(Invoice.id)
        )
    assert found is not None, f"{customer.name} has no open invoice in the demo"
    return found


async def _one(db: Database, statement: Any) -> Any:
    async with db.session() as session:
        found = await session.scalar(statement)
    assert found is not None
    return found


def _money(text: str) -> Decimal:
    """A page's amount as a decimal (``-$1,234.50`` → -1234.50)."""
    found = re.search(r"[\d,]+\.\d\d", text)
    assert found is not None, text
    value = Decimal(found.group(0).replace(",", ""))
    return -value if "-" in text or "\u2212" in text else value


async def _balance(browser: Browser) -> Decimal:
    return _money(text_of((await browser.open("/portal")).text, "balance"))


async def _shown(demo: Demo, customer: Customer, browser: Browser, words: str) -> None:
    """The customer's payments page and the administrator's page of the customer list the
    payment (by ``words``), and the administrator sees the customer's balance."""
    balance = await _balance(browser)
    mine = text_of((await browser.open("/portal/payments")).text, "payment-list")
    assert words in mine, mine
    admin = await demo.browser(*ADMIN_LOGIN)
    page = await admin.open(f"/admin/customers/{encode_id('Customer', customer.id)}")
    assert words in text_of(page.text, "payments-list")
    assert _money(text_of(page.text, "balance")) == balance


async def _pay_by_redirect(
    demo: Demo, browser: Browser, customer: Customer, system: str, invoice: Invoice, amount: str
) -> None:
    """Pay ``amount`` of ``invoice`` through ``system`` from the invoice's *Pay another way*:
    to the fake's page, approve, back to the outcome page."""
    page = await browser.open(f"/portal/pay?invoice={encode_id('Invoice', invoice.id)}")
    options = dict(re.findall(r'value="([^"]+)"[^>]*>\s*([^<(]+?)\s*[<(]', page.text))
    account = next(key for key, name in options.items() if name == system)
    sent = await browser.submit(
        "/portal/pay", {"processorAccountId": account, "amount": amount}, follow=False
    )
    assert sent.status_code == 200, sent.text
    payment = await _one(
        demo.db,
        select(Payment.id).where(Payment.customer_id == customer.id).order_by(Payment.id.desc()),
    )
    back = await round_trip(browser, sent, payment, "approve")
    assert "received" in text_of(back.text, "outcome-paid"), back.text


async def test_every_channel_without_a_stored_card_pays_in_the_demo(demo: Demo) -> None:
    # PayPal and Skrill (USD): Annie Easley's invoice, a part each.
    annie = await _customer(demo.db, "annie@example.com")
    browser = await demo.browser("annie@example.com")
    invoice = await _open_invoice(demo.db, annie)
    before = await _balance(browser)
    rest = f"{Decimal(invoice.total - 1000) / 100:.2f}"
    await _pay_by_redirect(demo, browser, annie, "PayPal", invoice, "10.00")
    await _pay_by_redirect(demo, browser, annie, "Skrill", invoice, rest)
    assert await _balance(browser) == before - Decimal(invoice.total) / 100
    assert await _one(demo.db, select(Invoice.status).where(Invoice.id == invoice.id)) == (
        InvoiceStatus.PAID
    )
    await _shown(demo, annie, browser, "PayPal")
    await _shown(demo, annie, browser, "Skrill")

    # Payarena and Remita (NGN): Ngozi Okonjo's invoice, a part each.
    ngozi = await _customer(demo.db, "ngozi@example.com")
    browser = await demo.browser("ngozi@example.com")
    invoice = await _open_invoice(demo.db, ngozi)
    before = await _balance(browser)
    await _pay_by_redirect(demo, browser, ngozi, "Payarena", invoice, "500.00")
    await _pay_by_redirect(demo, browser, ngozi, "Remita", invoice, "250.00")
    assert await _balance(browser) == before - Decimal("750.00")
    await _shown(demo, ngozi, browser, "Payarena")
    await _shown(demo, ngozi, browser, "Remita")

    # PayNearMe: Ada Lovelace's slip, paid in cash at the fake's store.
    ada = await _customer(demo.db, "ada@example.com")
    browser = await demo.browser("ada@example.com")
    before = await _balance(browser)
    slip = await browser.open("/portal/slip")
    identifier = text_of(slip.text, "slip-identifier").replace(" ", "")
    paynearme = await _account_id(demo, "paynearme")
    async with httpx.AsyncClient(timeout=30.0) as store:
        cash = await store.post(
            f"{demo.db.settings.public_url}/fakes/paynearme/_fake/pay",
            data={
                "order": identifier,
                "amount": "12.00",
                "callback_url": f"{demo.kassa_url}/callbacks/{paynearme}",
            },
        )
    assert cash.json()["accepted"] is True, cash.text
    assert await _balance(browser) == before - Decimal("12.00")
    await _shown(demo, ada, browser, "PayNearMe")

    # A cash terminal: docs/terminals.md's curl command, with the demo network's secret.
    before = await _balance(browser)
    account = await _one(demo.db, select(Account.number).where(Account.customer_id == ada.id))
    network = await _account_id(demo, "cash_terminal")
    answer = await documented_pay(demo.kassa_url, network, DEMO_TERMINAL_SECRET, account)
    assert (answer["status"], answer["amount"]) == ("CREDITED", "25.00"), answer
    assert await _balance(browser) == before - Decimal("25.00")
    await _shown(demo, ada, browser, "Cash terminal")

    async with demo.db.session() as session:
        assert await ledger.verify_balances(session) == []


async def _account_id(demo: Demo, processor: str) -> int:
    return int(
        await _one(
            demo.db,
            select(ProcessorAccount.id).where(
                ProcessorAccount.processor == processor, ProcessorAccount.enabled.is_(True)
            ),
        )
    )
