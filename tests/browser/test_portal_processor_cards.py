"""Cards tokenized in the browser by the processor's own script (issue 12, §2): a customer of
the provider stores a card through Stripe.js (the Stripe fake's stand-in), a customer of a
reseller through Accept.js (the Authorize.Net fake's), each pays an invoice with it, and a
card whose bank wants 3-D Secure goes to the fake's confirmation page and comes back settled.
The fakes run on their own ports, as Stripe and Authorize.Net are other sites: every request
kassa's origin receives is recorded, and the card number is in none of them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Page, Request, expect
from starlette.types import ASGIApp, Receive, Scope, Send

from billing import clock, processor_accounts
from billing.db import Database
from billing.models import Role
from billing.payment_systems import MethodKind
from processors.fakes.authorize_net import FakeAuthorizeNet
from processors.fakes.stripe import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET, FakeStripe
from tests.bitcoin_chain import LiveServer
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import LiveServer as Kassa
from tests.browser.support import sign_in
from tests.factories import (
    T0,
    Login,
    admin_viewer,
    issue_invoice,
    make_account,
    make_customer,
    make_reseller,
    new_party,
    user_with_login,
)

SCREENSHOTS = Path("test-artifacts") / "processor-cards"
STRIPE_CARD = "4242424242424242"
THREE_D_SECURE_CARD = "4000002760003184"
ANET_CARD = "4111111111111111"
CARDS = (MethodKind.VISA, MethodKind.MASTERCARD)


class Later:
    """An ASGI app set after its server's port is known (the fake needs kassa's callback
    address, which needs the processor account, which needs the fake's address)."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@pytest.fixture
def fake_site() -> Iterator[tuple[LiveServer, Later]]:
    later = Later()
    server = LiveServer(later)
    server.start()
    try:
        yield server, later
    finally:
        server.stop()


@dataclass
class Recorder:
    """Every request the browser sends to kassa's origin, with its body."""

    origin: str
    seen: list[str]

    def __call__(self, request: Request) -> None:
        if request.url.startswith(self.origin):
            self.seen.append(f"{request.method} {request.url} {request.post_data or ''}")


def recording(page: Page, server: Kassa) -> Recorder:
    recorder = Recorder(server.url, [])
    page.on("request", recorder)
    return recorder


async def _account(db: Database, reseller_id: int | None, **fields: object) -> int:
    async with db.transaction() as session:
        account = await processor_accounts.create_account(
            session,
            admin_viewer(),
            processor_accounts.AccountInput(
                minimums=[("USD", "0.50")],
                method_kinds=CARDS,
                **fields,  # type: ignore[arg-type]
            ),
            reseller_id,
        )
    return account.id


async def stripe_account(db: Database, server: Kassa, site: tuple[LiveServer, Later]) -> FakeStripe:
    fake_server, later = site
    account_id = await _account(
        db,
        None,
        name="Stripe",
        processor="stripe",
        base_url=fake_server.url,
        credentials={
            "secret_key": SECRET_KEY,
            "publishable_key": PUBLISHABLE_KEY,
            "webhook_secret": WEBHOOK_SECRET,
            "stripe_js_url": f"{fake_server.url}/v3/",
        },
    )
    fake = FakeStripe(webhook_url=f"{server.url}/callbacks/{account_id}")
    later.app = fake.app
    return fake


async def reseller_customer(db: Database, email: str) -> Login:
    """A customer of a new reseller, with one service account and a portal login."""
    async with db.transaction() as session:
        if not await clock.is_frozen(session):
            await clock.freeze(session, T0)
        reseller = await make_reseller(session, "Corner Telecom")
        customer = await make_customer(session, admin_viewer(reseller.id), email=email)
        account = await make_account(session, customer)
    await user_with_login(db, email, Role.CUSTOMER, customer_id=customer.id)
    return Login(customer, account, email)


async def add_card_in_browser(
    page: Page, fill: Callable[[Page], Awaitable[None]], expected: str
) -> None:
    await page.goto("/portal/payment-methods")
    await fill(page)
    await page.get_by_label("Name on the card").fill("Ada Lovelace")
    await page.get_by_role("button", name="Add the card").click()
    await expect(page.get_by_text(f"{expected} was added.")).to_be_visible()


def stripe_fill(number: str) -> Callable[[Page], Awaitable[None]]:
    async def fill(page: Page) -> None:
        # Stripe's inputs (the fake's stand-ins for its iframe), not their group's label.
        await page.get_by_label("Card number", exact=True).fill(number)
        await page.get_by_label("Expiry (MM/YY)", exact=True).fill("12/31")
        await page.get_by_label("Security code", exact=True).fill("123")

    return fill


async def anet_fill(page: Page) -> None:
    await page.get_by_label("Card number").fill(ANET_CARD)
    await page.get_by_label("Expiry month").fill("12")
    await page.get_by_label("Expiry year").fill("2031")
    await page.get_by_label("Security code").fill("123")


async def pay(page: Page, invoice_number: str) -> None:
    await page.goto("/portal/invoices")
    await page.get_by_role("link", name=invoice_number).click()
    await page.get_by_role("button", name="Pay now").click()


async def test_a_card_through_stripe_js_pays_and_the_number_never_reaches_kassa(
    page: Page, db: Database, server: Kassa, fake_site: tuple[LiveServer, Later]
) -> None:
    fake = await stripe_account(db, server, fake_site)
    party = await new_party(db, email="ada@example.com")
    email = await user_with_login(db, "ada@example.com", Role.CUSTOMER, customer_id=party.id)
    invoice = await issue_invoice(db, party, 4_000, description="Fibre, March")
    recorder = recording(page, server)
    await sign_in(page, email)

    await page.goto("/portal/payment-methods")
    form = page.locator("[data-card-form]")
    await expect(form).to_have_attribute("data-processor", "stripe")
    await expect(page.get_by_role("button", name="Add the card")).to_be_enabled()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "stripe-1280.png", full_page=True)
    await page.set_viewport_size({"width": 360, "height": 800})
    await page.screenshot(path=SCREENSHOTS / "stripe-360.png", full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 900})
    await assert_accessible(page)
    await add_card_in_browser(page, stripe_fill(STRIPE_CARD), "Visa ending 4242")
    assert len(fake.customers) == 1 and len(fake.payment_methods) == 1

    await pay(page, invoice.number)
    await expect(page.get_by_text("Paid 40.00 USD. Thank you.")).to_be_visible()
    await expect(page.locator("#invoice-status")).to_have_text("Paid")
    assert recorder.seen and not [r for r in recorder.seen if STRIPE_CARD in r]
    assert "/portal/payment-methods" in " ".join(recorder.seen)


async def test_a_card_that_needs_3d_secure_is_confirmed_at_the_bank_and_settles(
    page: Page, db: Database, server: Kassa, fake_site: tuple[LiveServer, Later]
) -> None:
    await stripe_account(db, server, fake_site)
    party = await new_party(db, email="ada@example.com")
    email = await user_with_login(db, "ada@example.com", Role.CUSTOMER, customer_id=party.id)
    invoice = await issue_invoice(db, party, 2_500, description="Roaming")
    recorder = recording(page, server)
    await sign_in(page, email)
    await add_card_in_browser(page, stripe_fill(THREE_D_SECURE_CARD), "Visa ending 3184")

    await pay(page, invoice.number)
    await expect(page.get_by_text("Your bank wants to confirm this payment.")).to_be_visible()
    # The fake's page completes the authentication and sends the customer back to kassa's
    # payments page (at the configured public address); Stripe's webhook settles the payment.
    back = f"{server.settings.public_url}/portal/payments"
    async with page.expect_request(lambda request: request.url.startswith(back)):
        await page.get_by_role("link", name="Confirm the payment with your bank").click()
    await page.goto("/portal/invoices")
    await page.get_by_role("link", name=invoice.number).click()
    # The webhook may land after the invoice page was drawn: look again until it has.
    for _ in range(30):
        if (await page.locator("#invoice-status").inner_text()).strip() == "Paid":
            break
        await page.wait_for_timeout(500)
        await page.reload()
    await expect(page.locator("#invoice-status")).to_have_text("Paid")
    assert not [r for r in recorder.seen if THREE_D_SECURE_CARD in r]


async def test_a_reseller_customer_stores_a_card_through_accept_js_and_pays(
    page: Page, db: Database, server: Kassa, fake_site: tuple[LiveServer, Later]
) -> None:
    fake_server, later = fake_site
    gateway = FakeAuthorizeNet()
    later.app = gateway.app
    login = await reseller_customer(db, "chinua@example.com")
    await _account(
        db,
        login.customer.reseller_id,
        name="Authorize.Net",
        processor="authorize_net",
        base_url=f"{fake_server.url}/xml/v1/request.api",
        credentials={
            "api_login_id": gateway.login,
            "transaction_key": gateway.transaction_key,
            "signature_key": gateway.signature_key,
            "client_key": gateway.client_key,
            "accept_js_url": f"{fake_server.url}/v1/Accept.js",
        },
    )
    invoice = await issue_invoice(db, login, 1_999, description="Mobile")
    recorder = recording(page, server)
    await sign_in(page, login.email)

    await page.goto("/portal/payment-methods")
    await expect(page.locator("[data-card-form]")).to_have_attribute(
        "data-processor", "authorize_net"
    )
    await expect(page.get_by_role("button", name="Add the card")).to_be_enabled()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "accept-js-1280.png", full_page=True)
    await page.set_viewport_size({"width": 360, "height": 800})
    await page.screenshot(path=SCREENSHOTS / "accept-js-360.png", full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 900})
    await assert_accessible(page)
    await add_card_in_browser(page, anet_fill, "Visa ending 1111")
    assert "securePaymentContainerRequest" in gateway.requests

    await pay(page, invoice.number)
    await expect(page.get_by_text("Paid 19.99 USD. Thank you.")).to_be_visible()
    assert recorder.seen and not [r for r in recorder.seen if ANET_CARD in r]
