"""The customer portal's "Pay another way" (portals/redirect_pay.py) against the PayPal,
Skrill, Payarena and Remita fakes: the options and the invoice's amount, the page sending the
browser to the system, the return page (paid, still waiting with its polling, canceled) safe to
reload for each system, Remita's self-submitting form, and Remita's missing phone told before
any redirect."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from billing.db import Database
from billing.models import Account, Customer, Payment, PaymentStatus
from schema.relay import encode_id
from tests.factories import Party, balance_of, customer_with_login, issue_invoice
from tests.portal_support import Browser, form_fields, text_of
from tests.redirect_browser import press, round_trip
from tests.redirect_fixtures import RedirectSystem

pytest_plugins = ["tests.portal_fixtures", "tests.redirect_fixtures"]


async def _only_payment(db: Database) -> Payment:
    async with db.session() as session:
        [payment] = list(await session.scalars(select(Payment)))
    return payment


async def test_paying_an_invoice_through_paypal_and_coming_back(
    db: Database, signed_in: Browser, paypal_account: int, paypal_server: object
) -> None:
    customer_id = await _customer_id(db)
    invoice = await _invoice(db, customer_id)
    page = await signed_in.open(f"/portal/invoices/{invoice}")
    assert f"/portal/pay?invoice={invoice}" in page.text
    page = await signed_in.open(f"/portal/pay?invoice={invoice}")
    assert page.status_code == 200 and "Paypal" in page.text
    assert form_fields(page.text, "/portal/pay")["amount"] == "40.00"
    sent = await signed_in.submit("/portal/pay", follow=False)
    assert sent.status_code == 200
    approve = _link(sent.text)
    payment = await _only_payment(db)
    assert payment.status == PaymentStatus.PENDING and approve == payment.action_url

    query = await press(approve, "approve")
    address = f"/portal/pay/return/{payment.id}?{urlencode(query)}"
    for _ in range(2):  # reloading changes nothing
        back = await signed_in.open(address)
        assert back.status_code == 200
        assert "received" in text_of(back.text, "outcome-paid")
    async with db.session() as session:
        assert await balance_of(session, customer_id) == 0
        assert await session.scalar(select(func.count()).select_from(Payment)) == 1


@pytest.mark.parametrize("choice", ["approve", "cancel"])
async def test_each_system_round_trip_through_the_portal(
    db: Database, browser: Browser, redirect_system: RedirectSystem, choice: str
) -> None:
    """PayPal, Skrill, Payarena and Remita alike: a top-up is sent to the system's page (a
    link, or Remita's form), the return page waits (and polls) until the customer acts there,
    then shows the payment received, or canceled with nothing charged.  Payarena POSTs the
    browser back: the return address turns that into its GET."""
    await customer_with_login(
        db, "ngozi@example.test", currency=redirect_system.currency, phone="+2348012345678"
    )
    await browser.sign_in("ngozi@example.test")
    await browser.open("/portal/pay")
    sent = await browser.submit("/portal/pay", {"amount": "1500.00"}, follow=False)
    assert sent.status_code == 200
    payment = await _only_payment(db)
    assert payment.status == PaymentStatus.PENDING and payment.action_url
    back = await browser.open(f"/portal/pay/return/{payment.id}")
    assert "outcome-waiting" in back.text and "poll=1" in back.text
    back = await round_trip(browser, sent, payment.id, choice)
    for _ in range(2):  # reloading changes nothing
        if choice == "approve":
            assert "received" in text_of(back.text, "outcome-paid")
        else:
            assert "Nothing was charged" in text_of(back.text, "outcome-canceled")
            assert 'href="/portal/pay" id="pay-again"' in back.text
        back = await browser.open(str(back.url))
    paid = choice == "approve"
    assert (await _only_payment(db)).status == (
        PaymentStatus.COMPLETED if paid else PaymentStatus.FAILED
    )
    async with db.session() as session:
        assert await balance_of(session, payment.customer_id) == (-150_000 if paid else 0)


async def test_remita_without_a_phone_is_told_what_to_fill_in(
    db: Database, browser: Browser, remita_account: int
) -> None:
    await customer_with_login(db, "ngozi@example.test", currency="NGN", phone=None)
    await browser.sign_in("ngozi@example.test")
    await browser.open("/portal/pay")
    refused = await browser.submit("/portal/pay", {"amount": "100.00"}, follow=False)
    assert refused.status_code == 422
    assert 'href="/portal/profile"' in refused.text and "phone" in text_of(
        refused.text, "fix-profile"
    )
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == 0


async def test_remita_is_entered_by_a_form_that_submits_itself(
    db: Database, browser: Browser, remita_account: int, remita_server: object
) -> None:
    await customer_with_login(db, "ngozi@example.test", currency="NGN", phone="+2348012345678")
    await browser.sign_in("ngozi@example.test")
    await browser.open("/portal/pay")
    page = await browser.submit("/portal/pay", {"amount": "100.00"}, follow=False)
    assert page.status_code == 200
    payment = await _only_payment(db)
    assert f'action="{payment.action_url}"' in page.text
    assert f'value="{payment.processor_reference}"' in page.text  # the RRR
    assert "Continue to the payment page" in page.text and "/static/redirect_pay.js" in page.text
    # The page may send its form to Remita, and only there.
    origin = (payment.action_url or "").split("/remita/")[0]
    assert f"form-action 'self' {origin};" in page.headers["content-security-policy"]


def _link(html: str) -> str:
    """Where the page sends the browser (its link, which its script follows)."""
    found = re.search(r'href="([^"]+)" id="redirect-link"', html)
    assert found is not None and found.group(1), "no link to the payment page"
    return unescape(found.group(1))


async def _customer_id(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.min(Customer.id))) or 0)


async def _invoice(db: Database, customer_id: int) -> str:
    async with db.session() as session:
        customer = await session.get(Customer, customer_id)
        account = await session.scalar(select(Account).where(Account.customer_id == customer_id))
    assert customer is not None and account is not None
    invoice = await issue_invoice(db, Party(customer, account), 4000)
    return str(encode_id("Invoice", invoice.id))
