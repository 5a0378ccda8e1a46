"""Helpers for the portal browser tests: signing in, asking the API what the page should
show, telling an htmx swap from a page load.

The data comes from ``tests/factories.py`` (customers and administrators who can sign in,
cards, invoices, cash), made through the real services, so what the browser shows is what a
real customer would see, ledger and all.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Page, Route, expect

from billing.db import Database
from tests.browser.conftest import LiveServer
from tests.factories import PASSWORD
from tests.graphql_support import api_key


async def sign_in(
    page: Page, email: str, password: str = PASSWORD, lands_on: str = "/portal"
) -> None:
    """Sign in the way a person does: the form on /portal/sign-in, then the start page of
    the user's role (``lands_on``: the dashboard, or ``/admin`` for staff)."""
    await page.goto("/portal/sign-in")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(_absolute(page, lands_on))


def _absolute(page: Page, path: str) -> str:
    """``path``'s absolute address on whichever server this page talks to."""
    parts = urlsplit(page.url)
    return f"{parts.scheme}://{parts.netloc}{path}"


async def graphql_as_visitor(
    page: Page, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Ask the API what the page's visitor may see, with the browser's own session cookie.

    The portal pages are drawn from the same API; comparing the two is how a test knows
    the page shows the API's figures rather than figures of its own making.
    """
    response = await page.request.post(
        "/graphql",
        data={"query": query, "variables": variables or {}},
        headers={"accept": "application/json"},
    )
    assert response.ok, await response.text()
    body = await response.json()
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


async def partner_graphql(
    page: Page, db: Database, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Ask the API as the provider's partner (an API key that sees every customer): how a
    test learns the ids of another customer's objects without signing in as them."""
    token = await api_key(db)
    response = await page.request.post(
        "/graphql",
        data={"query": query, "variables": variables or {}},
        headers={"accept": "application/json", "authorization": f"Bearer {token}"},
    )
    body = await response.json()
    assert response.ok and "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def mark_document(page: Page) -> None:
    """Tag the current document, so :func:`assert_same_document` can tell an htmx swap in
    place from a full page load (which would start a new document without the tag)."""
    await page.evaluate("() => { window.__kassaSameDocument = true; }")


async def assert_same_document(page: Page) -> None:
    assert await page.evaluate("() => window.__kassaSameDocument === true"), (
        "the page was reloaded: the change was not made in place"
    )


async def back_to_kassa(page: Page, server: LiveServer) -> None:
    """A payment system sends the customer back to kassa's public address: here that is the
    live server."""
    public = server.settings.public_url.rstrip("/")
    if public == server.url:
        return

    async def rewrite(route: Route) -> None:
        parts = urlsplit(route.request.url)
        target = f"{server.url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        await route.fulfill(status=302, headers={"location": target})

    await page.route(f"{public}/**", rewrite)


#: True once htmx has taken up the page's content: new content is marked ``htmx-added``
#: until htmx has processed it (its triggers bound), which happens a moment after the swap.
_HTMX_SETTLED = (
    "() => window.htmx !== undefined"
    " && !document.querySelector('.htmx-added, .htmx-settling, .htmx-swapping, .htmx-request')"
)


async def htmx_settled(page: Page) -> None:
    """Wait until the page is loaded and htmx has bound the triggers of what it swapped in.

    Typing into a field whose ``hx-trigger`` is not bound yet fires nothing (a preview stays
    empty): a person cannot type that fast, a test can, so it waits first.
    """
    await page.wait_for_load_state()
    await page.wait_for_function(_HTMX_SETTLED)
