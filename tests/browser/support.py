"""Helpers for the portal browser tests: customers who can sign in, invoices, signing in.

Everything is made through the real services (as ``tests/factories.py`` does), so what the
browser shows is what a real customer would see, ledger and all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

from playwright.async_api import Page, expect

from billing.db import Database
from billing.invoices import close_period_out_of_turn
from billing.models import Invoice, Role
from billing.payment_methods import add_card
from billing.users import create_user
from tests.factories import (
    APPROVE,
    T0,
    Party,
    admin_viewer,
    card_details,
    make_charge_at,
    new_party,
    pay_cash,
)
from tests.graphql_support import api_key

#: Long enough for the password rules, and obviously a test value.
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Login:
    """A customer (with one service account) and the credentials of its portal user."""

    party: Party
    email: str
    password: str = PASSWORD

    @property
    def customer_id(self) -> int:
        return self.party.customer.id


async def customer_login(db: Database, email: str | None = None, **fields: object) -> Login:
    """A customer made by ``create_customer`` and a CUSTOMER user for it (``create_user``)."""
    address = email or f"customer-{uuid4().hex[:8]}@example.com"
    party = await new_party(db, **{"email": address, **fields})
    async with db.transaction() as session:
        await create_user(session, address, PASSWORD, Role.CUSTOMER, customer_id=party.id)
    return Login(party, address)


async def issue_invoice(
    db: Database,
    party: Party,
    amount: int,
    description: str = "Mobile plan",
    service_at: datetime = T0,
) -> Invoice:
    """A real invoice: a charge posted through ``post_charge``, then invoiced out of turn."""
    async with db.transaction() as session:
        await make_charge_at(session, party.account, amount, service_at, description)
        return await close_period_out_of_turn(session, admin_viewer(), party.id)


async def settle_in_cash(db: Database, party: Party, amount: int) -> None:
    """Cash at the counter, settled against the oldest open invoice first."""
    async with db.transaction() as session:
        await pay_cash(session, party.customer, amount)


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


async def admin_login(db: Database, email: str = "admin@kassa.test") -> str:
    """An administrator of the provider (sees every customer); returns the e-mail address
    to sign in with, with :data:`PASSWORD`."""
    async with db.transaction() as session:
        await create_user(session, email, PASSWORD, Role.ADMIN)
    return email


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


async def store_card(db: Database, party: Party, number: str = APPROVE) -> None:
    """A stored card made through ``add_card`` (the simulator tokenizes it), for tests whose
    subject is not the card form itself."""
    async with db.transaction() as session:
        await add_card(session, admin_viewer(), party.id, card_details(number))


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
