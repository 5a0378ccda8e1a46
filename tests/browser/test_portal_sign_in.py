"""Signing in and out of the customer portal in a real browser."""

from __future__ import annotations

from playwright.async_api import Page, expect

from billing.db import Database
from tests.browser.accessibility import assert_accessible
from tests.browser.support import sign_in
from tests.factories import PASSWORD, customer_with_login


async def test_a_customer_signs_in_and_lands_on_the_dashboard(page: Page, db: Database) -> None:
    login = await customer_with_login(db, name="Ada Lovelace")
    await page.goto("/portal/sign-in")
    await assert_accessible(page)
    await sign_in(page, login.email)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Ada Lovelace")
    await assert_accessible(page)


async def test_a_wrong_password_is_refused_on_the_form(page: Page, db: Database) -> None:
    login = await customer_with_login(db)
    await page.goto("/portal/sign-in")
    await page.get_by_label("E-mail address").fill(login.email)
    await page.get_by_label("Password").fill("not the password at all")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page).to_have_url(f"{page.url.split('/portal')[0]}/portal/sign-in")
    await expect(page.get_by_label("Password")).to_have_value("")
    # The error page is a page too: it must be as usable as the form was.
    await assert_accessible(page)


async def test_a_page_asked_for_before_signing_in_opens_after_it(page: Page, db: Database) -> None:
    login = await customer_with_login(db)
    await page.goto("/portal/invoices")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("E-mail address").fill(login.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Invoices")


async def test_signing_out_ends_the_session(page: Page, db: Database) -> None:
    login = await customer_with_login(db)
    await sign_in(page, login.email)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_text("You have signed out.")).to_be_visible()
    await page.goto("/portal")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
