"""A state-changing request without the page's CSRF token is refused, whichever way it comes.

The session cookie alone is what another site could make a browser send; the token is what
it cannot know.  Each case sends the signed-in browser's cookies and everything else a real
submission would, less (or with a wrong) token, and checks that nothing was stored.
"""

from __future__ import annotations

from playwright.async_api import Page, expect

from billing.db import Database
from tests.browser.accessibility import assert_accessible
from tests.browser.support import graphql_as_visitor, sign_in
from tests.factories import APPROVE, customer_with_login

CARD_FORM = {
    "cardNumber": APPROVE,
    "expMonth": "12",
    "expYear": "2030",
    "cvc": "123",
    "holder": "Mallory",
}
STORED = "query($id: ID!) { customer(id: $id) { paymentMethods { last4 } } }"


async def stored_cards(page: Page) -> list[dict[str, str]]:
    viewer = await graphql_as_visitor(page, "{ viewer { customerId } }")
    data = await graphql_as_visitor(page, STORED, {"id": viewer["viewer"]["customerId"]})
    cards: list[dict[str, str]] = data["customer"]["paymentMethods"]
    return cards


async def fill_card_form(page: Page) -> None:
    for label, value in [
        ("Card number", APPROVE),
        ("Expiry month", "12"),
        ("Expiry year", "2030"),
        ("Security code", "123"),
    ]:
        await page.get_by_label(label).fill(value)


async def test_a_post_without_the_token_is_refused(page: Page, db: Database) -> None:
    login = await customer_with_login(db)
    await sign_in(page, login.email)
    for headers, extra in [
        ({}, {}),  # no token at all
        ({"X-CSRF-Token": "0" * 64}, {}),  # a made-up header
        ({}, {"csrf_token": "0" * 64}),
    ]:  # a made-up form field
        response = await page.request.post(
            "/portal/payment-methods", form={**CARD_FORM, **extra}, headers=headers
        )
        assert response.status == 403, (headers, extra, response.status)
    assert await stored_cards(page) == []


async def test_a_plain_form_stripped_of_its_token_is_refused(page: Page, db: Database) -> None:
    """As a forged form would arrive: a normal (non-htmx) submission with no token in it."""
    login = await customer_with_login(db)
    await sign_in(page, login.email)
    await page.goto("/portal/payment-methods")
    await page.evaluate("""() => {
        document.body.removeAttribute("hx-headers");
        for (const form of document.forms) {
            for (const name of ["hx-post", "hx-target", "hx-swap"]) form.removeAttribute(name);
            form.querySelector("input[name=csrf_token]")?.remove();
        }
    }""")
    await fill_card_form(page)
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.get_by_role("button", name="Add the card").click()
    assert (await posted.value).status == 403
    await expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    await assert_accessible(page)
    assert await stored_cards(page) == []


async def test_an_htmx_request_without_the_token_is_refused(page: Page, db: Database) -> None:
    """htmx sends the token from ``hx-headers`` on ``<body>``; without it, the swap shows the
    refusal where the form was and nothing is stored."""
    login = await customer_with_login(db)
    await sign_in(page, login.email)
    await page.goto("/portal/payment-methods")
    await page.evaluate("""() => {
        document.body.removeAttribute("hx-headers");
        document.querySelectorAll("input[name=csrf_token]").forEach((input) => input.remove());
    }""")
    await fill_card_form(page)
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.get_by_role("button", name="Add the card").click()
    response = await posted.value
    assert response.status == 403
    assert response.request.headers.get("hx-request") == "true"
    await expect(page.get_by_text("You may not do this here.")).to_be_visible()
    assert await stored_cards(page) == []


async def test_the_same_form_with_its_token_goes_through(page: Page, db: Database) -> None:
    """The control for the cases above: untouched, the form works."""
    login = await customer_with_login(db)
    await sign_in(page, login.email)
    await page.goto("/portal/payment-methods")
    await fill_card_form(page)
    await page.get_by_role("button", name="Add the card").click()
    await expect(page.get_by_text("Visa ending 4242 was added.")).to_be_visible()
    assert await stored_cards(page) == [{"last4": "4242"}]
