"""Cards in the customer portal: adding the simulator's approving and declining test cards,
and what each does when an invoice is paid with it."""

from __future__ import annotations

from playwright.async_api import Page, expect

from billing.db import Database
from tests.browser.accessibility import assert_accessible
from tests.browser.support import assert_same_document, graphql_as_visitor, mark_document, sign_in
from tests.factories import APPROVE, DECLINE, customer_with_login, issue_invoice

CARDS = "{ viewer { customerId } }"
STORED = "query($id: ID!) { customer(id: $id) { paymentMethods { last4 isDefault } } }"


async def add_card(page: Page, number: str, *, make_default: bool = False) -> None:
    """Fill in the add-card form as a person would and send it."""
    await page.get_by_label("Card number").fill(number)
    await page.get_by_label("Expiry month").fill("12")
    await page.get_by_label("Expiry year").fill("2030")
    await page.get_by_label("Security code").fill("123")
    await page.get_by_label("Name on the card").fill("Ada Lovelace")
    if make_default:
        await page.get_by_label("Make it the card charged by default").check()
    await page.get_by_role("button", name="Add the card").click()


async def stored_cards(page: Page) -> list[dict[str, object]]:
    viewer = await graphql_as_visitor(page, CARDS)
    data = await graphql_as_visitor(page, STORED, {"id": viewer["viewer"]["customerId"]})
    cards: list[dict[str, object]] = data["customer"]["paymentMethods"]
    return cards


async def test_add_the_approving_and_the_declining_card_then_pay_with_each(
    page: Page, db: Database
) -> None:
    login = await customer_with_login(db)
    invoice = await issue_invoice(db, login, 4_000, description="Fibre, March")
    await sign_in(page, login.email)
    await page.get_by_role("link", name="Cards").click()
    await expect(page.get_by_text("No cards yet.")).to_be_visible()
    await assert_accessible(page)

    await mark_document(page)
    await add_card(page, APPROVE)
    await expect(page.get_by_text("Visa ending 4242 was added.")).to_be_visible()
    await add_card(page, DECLINE, make_default=True)
    await expect(page.get_by_text("Visa ending 0002 was added.")).to_be_visible()
    await assert_same_document(page)
    cards = page.locator("#cards > li")
    await expect(cards).to_have_count(2)
    await expect(cards.filter(has_text="ending 0002")).to_contain_text("Default")
    # Neither the number nor the security code is drawn back into the page.
    assert APPROVE not in await page.content() and DECLINE not in await page.content()
    await expect(page.get_by_label("Card number")).to_have_value("")
    assert await stored_cards(page) == [
        {"last4": "0002", "isDefault": True},
        {"last4": "4242", "isDefault": False},
    ]
    await assert_accessible(page)

    # Paying with the declining card (the default) is refused and changes nothing.
    await page.goto("/portal/invoices")
    await page.get_by_role("link", name=invoice.number).click()
    card = page.get_by_label("Card", exact=True)
    await expect(card.locator("option:checked")).to_contain_text("ending 0002")
    await mark_document(page)
    await page.get_by_role("button", name="Pay now").click()
    await expect(page.get_by_text("The card was declined.")).to_be_visible()
    await expect(page.locator("#invoice-status")).to_have_text("Unpaid")
    await expect(page.locator("#invoice-outstanding")).to_have_text("40.00 USD")
    await assert_accessible(page)

    # The approving card pays it, and the status changes where the customer is looking.
    await card.select_option(label="Visa ending 4242 (expires 12/2030)")
    await page.get_by_role("button", name="Pay now").click()
    await expect(page.get_by_text("Paid 40.00 USD. Thank you.")).to_be_visible()
    await expect(page.locator("#invoice-status")).to_have_text("Paid")
    await assert_same_document(page)
    await assert_accessible(page)


async def test_an_invalid_card_number_is_marked_beside_its_field(page: Page, db: Database) -> None:
    login = await customer_with_login(db)
    await sign_in(page, login.email)
    await page.goto("/portal/payment-methods")
    await add_card(page, "4242424242424241")  # fails the Luhn check
    number = page.get_by_label("Card number")
    await expect(number).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#f-cardNumber-error")).to_be_visible()
    await expect(page.get_by_text("No cards yet.")).to_be_visible()
    await assert_accessible(page)
