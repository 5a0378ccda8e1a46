"""The portal foundation: CSRF on every state-changing request, full page or htmx fragment,
security headers, error pages, and the vendored htmx."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import httpx

from billing.db import Database
from billing.models import InvoiceStatus
from portals.csrf import CSRF_COOKIE
from tests.factories import Party, issue_invoice
from tests.portal_support import HTMX, Browser, csrf_token, text_of
from tests.statements import statements

pytest_plugins = ["tests.portal_fixtures"]


def _auto_payment(page: httpx.Response) -> str:
    return text_of(page.text, "auto-payment-state").split(":")[0]


async def test_root_sends_visitors_to_the_portal(browser: Browser) -> None:
    response = await browser.http.get("/")
    assert (response.status_code, response.headers["location"]) == (303, "/portal")


# --- CSRF ---------------------------------------------------------------------------------


async def test_a_plain_form_without_the_token_is_refused(signed_in: Browser) -> None:
    for token in (None, "", "0" * 64):
        data = {"autoPayment": "on"} | ({} if token is None else {"csrf_token": token})
        response = await signed_in.http.post("/portal/auto-payment", data=data)
        assert response.status_code == 403, token
        assert "reload the page" in response.text
    assert _auto_payment(await signed_in.open("/portal")) == "Auto-payment is off"


async def test_an_htmx_request_without_the_header_is_refused(signed_in: Browser) -> None:
    response = await signed_in.http.post(
        "/portal/auto-payment", data={"autoPayment": "on"}, headers=HTMX
    )
    assert response.status_code == 403
    # The refusal replaces the page's content rather than a fragment's place.
    assert response.headers["HX-Retarget"] == "#main"
    assert "<html" not in response.text and "Not allowed" in response.text
    assert _auto_payment(await signed_in.open("/portal")) == "Auto-payment is off"


async def test_the_token_works_in_the_header_or_the_form(signed_in: Browser) -> None:
    await signed_in.open("/portal")
    response = await signed_in.submit("/portal/auto-payment", htmx=True)
    assert (response.status_code, _auto_payment(response)) == (200, "Auto-payment is on")
    await signed_in.open("/portal")
    response = await signed_in.submit("/portal/auto-payment")
    assert (response.status_code, _auto_payment(response)) == (200, "Auto-payment is off")


async def test_a_form_content_type_is_read_in_any_case(signed_in: Browser) -> None:
    """Media types are case-insensitive: the token in a form sent as
    ``Application/X-WWW-Form-Urlencoded`` counts as in any other."""
    page = await signed_in.open("/portal")
    body = urlencode({"autoPayment": "on", "csrf_token": csrf_token(page.text)})
    response = await signed_in.http.post(
        "/portal/auto-payment",
        content=body,
        headers={"content-type": "Application/X-WWW-Form-Urlencoded; Charset=UTF-8"},
    )
    assert response.status_code == 200
    assert _auto_payment(response) == "Auto-payment is on"


async def test_a_token_is_bound_to_the_browser_and_its_session(
    browser: Browser, customer: Party
) -> None:
    before = csrf_token((await browser.open("/portal/sign-in")).text)
    await browser.sign_in()
    after = csrf_token((await browser.open("/portal")).text)
    assert before != after  # signing in changes the session, and so the token
    response = await browser.http.post(
        "/portal/auto-payment", data={"autoPayment": "on", "csrf_token": before}
    )
    assert response.status_code == 403
    # Another browser's token does not fit this browser's cookie either.
    browser.http.cookies.set(CSRF_COOKIE, "x" * 43, domain="kassa.test")
    response = await browser.http.post(
        "/portal/auto-payment", data={"autoPayment": "on", "csrf_token": after}
    )
    assert response.status_code == 403


async def test_a_browser_without_the_cookie_gets_one_and_a_refusal(browser: Browser) -> None:
    response = await browser.http.post("/portal/sign-in", data={"email": "a@b.c"})
    assert response.status_code == 403
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}=") and "HttpOnly" in cookie
    assert "SameSite=lax" in cookie and "Secure" in cookie


async def test_an_oversized_form_is_refused_unread(signed_in: Browser) -> None:
    await signed_in.open("/portal")
    response = await signed_in.submit("/portal/auto-payment", {"padding": "x" * 100_000})
    assert response.status_code == 413


# --- full pages and fragments -------------------------------------------------------------


async def test_htmx_gets_the_fragment_and_browsers_the_page(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    await issue_invoice(db, customer, 1000)
    page = await signed_in.open("/portal/invoices")
    fragment = await signed_in.http.get("/portal/invoices", headers=HTMX)
    for response in (page, fragment):
        assert response.status_code == 200
        assert "HX-Request" in response.headers["vary"]
    assert page.text.lstrip().lower().startswith("<!doctype html>")
    assert fragment.text.lstrip().startswith('<section id="invoice-list"')
    assert "<html" not in fragment.text and "<nav" not in fragment.text
    assert text_of(fragment.text, "invoice-list") == text_of(page.text, "invoice-list")


async def test_history_restore_and_boosted_requests_get_the_whole_page(
    signed_in: Browser,
) -> None:
    for extra in ({"HX-History-Restore-Request": "true"}, {"HX-Boosted": "true"}):
        response = await signed_in.http.get("/portal/invoices", headers=HTMX | extra)
        assert response.text.lstrip().lower().startswith("<!doctype html>"), extra
        assert "Vary" in response.headers


async def test_pages_carry_security_headers_and_the_htmx_setup(signed_in: Browser) -> None:
    response = await signed_in.open("/portal")
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    token = csrf_token(response.text)
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in response.text
    assert 'src="/static/vendor/htmx/htmx.min.js' in response.text
    assert 'href="#main"' in response.text and '<main id="main"' in response.text
    assert '<nav aria-label="Main">' in response.text
    assert 'aria-current="page">Dashboard<' in response.text


async def test_htmx_and_its_licence_are_served(browser: Browser) -> None:
    static = Path(__file__).resolve().parent.parent / "static" / "vendor" / "htmx"
    script = await browser.http.get("/static/vendor/htmx/htmx.min.js")
    assert script.status_code == 200
    assert script.content == (static / "htmx.min.js").read_bytes()
    assert 'version:"2.0.11"' in script.text
    assert (static / "LICENSE").read_text().startswith("Zero-Clause BSD")
    assert (await browser.http.get("/static/kassa.css")).status_code == 200


async def test_an_unknown_portal_page_is_a_404_page(signed_in: Browser) -> None:
    response = await signed_in.open("/portal/no-such-page")
    assert response.status_code == 404
    assert "Page not found" in response.text and '<nav aria-label="Main">' in response.text


async def test_an_unknown_status_filter_shows_every_invoice(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    await issue_invoice(db, customer, 1000)
    response = await signed_in.open("/portal/invoices?status=NONSENSE")
    assert response.status_code == 200
    assert text_of(response.text, "invoice-list-title") == "1 invoice"
    assert InvoiceStatus.UNPAID.value in response.text


async def test_a_foreign_cursor_is_a_400_page(signed_in: Browser) -> None:
    response = await signed_in.open("/portal/invoices?after=not-a-cursor")
    assert response.status_code == 400
    assert "That address is not right" in response.text


async def test_a_trailing_slash_is_dropped(signed_in: Browser) -> None:
    response = await signed_in.open("/portal/")
    assert (response.status_code, response.url.path) == (200, "/portal")


async def test_a_page_asks_who_the_visitor_is_once(signed_in: Browser, db: Database) -> None:
    """A page runs several operations (who the visitor is, whose letterhead, the page's
    own); the session cookie is looked up for the first and remembered for the rest."""
    with statements(db) as seen:
        page = await signed_in.open("/portal")
    assert page.status_code == 200
    assert sum("user_sessions" in statement for statement in seen) == 1
