"""Signing in and out of the portal, throttling, session expiry, and password reset by mail."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select

from billing import clock, password_resets
from billing.db import Database
from billing.models import Role, SignInAttempt
from billing.users import create_user
from resolvers.sessions import SESSION_COOKIE, SESSION_MAX_AGE
from tests.factories import CUSTOMER_EMAIL, PASSWORD, Party
from tests.graphql_support import BASE_URL, Api
from tests.portal_support import HTMX, Browser, Mailbox, text_of

pytest_plugins = ["tests.portal_fixtures"]

NEW_PASSWORD = "a brand new passphrase"


def _session_cookie_header(response_headers: list[str]) -> str:
    return next(header for header in response_headers if header.startswith(f"{SESSION_COOKIE}="))


async def test_sign_in_sets_a_protected_cookie_and_sign_out_clears_it(
    browser: Browser, customer: Party
) -> None:
    await browser.open("/portal/sign-in")
    response = await browser.submit(
        "/portal/sign-in", {"email": CUSTOMER_EMAIL, "password": PASSWORD}, follow=False
    )
    assert (response.status_code, response.headers["location"]) == (303, "/portal")
    cookie = _session_cookie_header(response.headers.get_list("set-cookie"))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    page = await browser.open("/portal")
    assert page.status_code == 200 and "Hello, Ada Lovelace" in page.text

    response = await browser.submit("/portal/sign-out", follow=False)
    assert response.headers["location"] == "/portal/sign-in?notice=signed-out"
    assert "Max-Age=0" in _session_cookie_header(response.headers.get_list("set-cookie"))
    page = await browser.open("/portal")
    assert page.url.path == "/portal/sign-in" and "Hello" not in page.text


async def test_a_wrong_password_is_refused_beside_the_form(
    browser: Browser, customer: Party
) -> None:
    response = await browser.sign_in(password="not the password")
    assert response.status_code == 422
    assert "wrong e-mail address or password" in text_of(response.text, "main").lower()
    assert 'value="ada@example.com"' in response.text
    assert "not the password" not in response.text  # the password is never drawn back
    assert SESSION_COOKIE not in browser.http.cookies


async def test_five_wrong_passwords_lock_the_sign_in(browser: Browser, customer: Party) -> None:
    for _ in range(5):
        assert (await browser.sign_in(password="guess")).status_code == 422
    response = await browser.sign_in()  # the right password, but too late
    assert response.status_code == 422
    assert "sign-in pauses for 15 minutes" in response.text
    assert SESSION_COOKIE not in browser.http.cookies


async def test_sign_in_returns_to_the_page_asked_for(browser: Browser, customer: Party) -> None:
    page = await browser.open("/portal/invoices?status=PAID")
    assert page.url.path == "/portal/sign-in"
    assert page.url.params["next"] == "/portal/invoices?status=PAID"
    response = await browser.submit(
        "/portal/sign-in", {"email": CUSTOMER_EMAIL, "password": PASSWORD}
    )
    assert str(response.url) == f"{BASE_URL}/portal/invoices?status=PAID"
    assert response.status_code == 200


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"],
)
async def test_next_never_leaves_the_site(browser: Browser, customer: Party, target: str) -> None:
    await browser.open("/portal/sign-in")
    response = await browser.submit(
        "/portal/sign-in",
        {"email": CUSTOMER_EMAIL, "password": PASSWORD, "next": target},
        follow=False,
    )
    assert response.headers["location"] == "/portal"


async def test_an_expired_session_signs_in_again_and_comes_back(
    signed_in: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = time.time() + SESSION_MAX_AGE.total_seconds() + 60
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(later))
    page = await signed_in.open("/portal/payments")
    assert page.url.path == "/portal/sign-in"
    assert page.url.params["next"] == "/portal/payments"
    assert "Your session has ended" in page.text
    assert SESSION_COOKIE not in signed_in.http.cookies  # the dead cookie was dropped

    monkeypatch.undo()
    response = await signed_in.submit(
        "/portal/sign-in", {"email": CUSTOMER_EMAIL, "password": PASSWORD}
    )
    assert response.url.path == "/portal/payments" and response.status_code == 200


async def test_an_expired_session_under_htmx_redirects_the_whole_page(
    signed_in: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    await signed_in.open("/portal/invoices")
    later = time.time() + SESSION_MAX_AGE.total_seconds() + 60
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(later))
    response = await signed_in.http.get(
        "/portal/invoices?status=PAID",
        headers={**HTMX, "HX-Current-URL": f"{BASE_URL}/portal/invoices?status=PAID"},
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == (
        "/portal/sign-in?next=%2Fportal%2Finvoices%3Fstatus%3DPAID&notice=session-ended"
    )


async def test_staff_cannot_use_the_customer_portal(browser: Browser, db: Database) -> None:
    """Staff land on their own portal; the customer portal's start page sends them there,
    and its other pages are not for them."""
    async with db.transaction() as session:
        await create_user(session, "admin@kassa.test", PASSWORD, Role.ADMIN)
    response = await browser.sign_in("admin@kassa.test")
    assert response.url.path == "/admin"
    assert (await browser.open("/portal")).url.path == "/admin"
    response = await browser.open("/portal/invoices")
    assert response.status_code == 403
    assert "not for your kind of sign-in" in response.text


# --- password reset -----------------------------------------------------------------------


def _reset_link(mailbox_message: object) -> str:
    body = str(mailbox_message.get_payload(decode=True), "utf-8")  # type: ignore[attr-defined]
    match = re.search(rf"{re.escape(BASE_URL)}(/portal/password-reset/\S+)", body)
    assert match is not None, body
    return match.group(1)


async def _ask_for_reset(browser: Browser, email: str) -> str:
    await browser.open("/portal/sign-in")
    await browser.open("/portal/password-reset")
    response = await browser.submit("/portal/password-reset", {"email": email})
    assert response.status_code == 200
    return text_of(response.text, "main")


async def test_password_reset_by_mail_end_to_end(
    browser: Browser, customer: Party, mailbox: Mailbox
) -> None:
    answer = await _ask_for_reset(browser, "ADA@example.com")
    assert "a link to choose a new password is on its way" in answer
    (mail,) = await mailbox.received()
    assert mail["To"] == CUSTOMER_EMAIL and mail["From"] == "billing@kassa.test"
    assert mail["Subject"] == "Reset your kassa password"
    link = _reset_link(mail)

    page = await browser.open(link)
    assert page.status_code == 200 and "Choose a new password" in page.text
    response = await browser.submit(
        link, {"newPassword": NEW_PASSWORD, "confirmation": NEW_PASSWORD}
    )
    assert response.url.path == "/portal/sign-in"
    assert "Your password has been changed" in response.text

    assert (await browser.sign_in(password=PASSWORD)).status_code == 422
    assert (await browser.sign_in(password=NEW_PASSWORD)).url.path == "/portal"

    # The link works once: the password it was made for is gone.
    await browser.open(link)
    response = await browser.submit(
        link, {"newPassword": "yet another passphrase", "confirmation": "yet another passphrase"}
    )
    assert response.status_code == 422
    assert "not valid or was already used" in text_of(response.text, "main")


async def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    browser: Browser, customer: Party, mailbox: Mailbox
) -> None:
    known = await _ask_for_reset(browser, CUSTOMER_EMAIL)
    unknown = await _ask_for_reset(browser, "nobody@example.com")
    assert known == unknown
    assert [mail["To"] for mail in await mailbox.received()] == [CUSTOMER_EMAIL]


async def test_the_api_answers_the_same_for_any_address(
    browser: Browser, customer: Party, mailbox: Mailbox
) -> None:
    api = Api(browser.http)
    for email in (CUSTOMER_EMAIL, "nobody@example.com"):
        payload = await api.mutate("requestPasswordReset", {"email": email}, "")
        assert payload == {"errors": []}
    payload = await api.mutate("requestPasswordReset", {"email": "not an address"}, "")
    assert [error["code"] for error in payload["errors"]] == ["INVALID_EMAIL"]
    assert len(await mailbox.received()) == 1


async def test_a_reset_link_expires_after_an_hour(
    browser: Browser, customer: Party, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _ask_for_reset(browser, CUSTOMER_EMAIL)
    link = _reset_link((await mailbox.received())[0])
    real_now = clock.wall_now
    monkeypatch.setattr(
        clock, "wall_now", lambda: real_now() + password_resets.TOKEN_MAX_AGE + timedelta(minutes=1)
    )
    await browser.open(link)
    response = await browser.submit(
        link, {"newPassword": NEW_PASSWORD, "confirmation": NEW_PASSWORD}
    )
    assert response.status_code == 422
    assert "This reset link has expired" in text_of(response.text, "main")
    monkeypatch.undo()
    assert (await browser.sign_in()).url.path == "/portal"


async def test_a_new_password_is_checked_beside_its_field(
    browser: Browser, customer: Party, mailbox: Mailbox
) -> None:
    await _ask_for_reset(browser, CUSTOMER_EMAIL)
    link = _reset_link((await mailbox.received())[0])
    await browser.open(link)
    response = await browser.submit(link, {"newPassword": NEW_PASSWORD, "confirmation": "other"})
    assert response.status_code == 422
    assert text_of(response.text, "f-confirmation-error") == "The two passwords are not the same."
    response = await browser.submit(link, {"newPassword": "short", "confirmation": "short"})
    assert response.status_code == 422
    assert "at least 8 characters" in text_of(response.text, "f-newPassword-error")
    assert 'aria-invalid="true"' in response.text


async def test_a_reset_lifts_a_sign_in_lock(
    browser: Browser, customer: Party, mailbox: Mailbox, db: Database
) -> None:
    for _ in range(5):
        await browser.sign_in(password="guess")
    await _ask_for_reset(browser, CUSTOMER_EMAIL)
    link = _reset_link((await mailbox.received())[0])
    await browser.open(link)
    await browser.submit(link, {"newPassword": NEW_PASSWORD, "confirmation": NEW_PASSWORD})
    async with db.session() as session:
        counters = await session.scalars(
            select(SignInAttempt).where(SignInAttempt.email == CUSTOMER_EMAIL)
        )
    assert counters.all() == []
    assert (await browser.sign_in(password=NEW_PASSWORD)).url.path == "/portal"
