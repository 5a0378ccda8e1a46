"""Fixtures for the portal tests (``pytest_plugins = ["tests.portal_fixtures"]``).

``browser`` is a :class:`~tests.portal_support.Browser` on an app whose mail goes to the
``mailbox``, an aiosmtpd server started once per test run; ``customer`` has a sign-in, and
``signed_in`` is the browser with that customer signed in; ``admin`` is the browser with the
provider's administrator signed in.  (The browser tests' Playwright browser is ``chromium``.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from aiosmtpd.controller import Controller

from app import create_app
from billing.db import Database
from settings import Settings
from tests.factories import Login, admin_with_login, customer_with_login
from tests.graphql_support import BASE_URL
from tests.portal_support import Browser, Inbox, Mailbox
from tests.ports import free_port


@pytest.fixture(scope="session")
def _smtp_server() -> Iterator[Mailbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield Mailbox("127.0.0.1", controller.port, inbox)
    controller.stop()


@pytest.fixture
def mailbox(_smtp_server: Mailbox) -> Mailbox:
    _smtp_server.inbox.clear()
    return _smtp_server


@pytest.fixture
def portal_settings(settings: Settings, mailbox: Mailbox) -> Settings:
    return settings.with_(
        smtp_host=mailbox.host,
        smtp_port=mailbox.port,
        public_url=BASE_URL,
        smtp_from="billing@kassa.test",
    )


@pytest.fixture
async def browser(portal_settings: Settings, db: Database) -> AsyncIterator[Browser]:
    app = create_app(portal_settings, database=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as client:
        yield Browser(client)


@pytest.fixture
async def customer(db: Database) -> Login:
    return await customer_with_login(db)


@pytest.fixture
async def signed_in(browser: Browser, customer: Login) -> Browser:
    """The browser with the customer signed in, on the dashboard."""
    response = await browser.sign_in()
    assert response.url.path == "/portal", response.text
    return browser


@pytest.fixture
async def admin(browser: Browser, db: Database) -> Browser:
    """The browser with the provider's administrator signed in, on the customer search."""
    response = await browser.sign_in(await admin_with_login(db))
    assert response.url.path == "/admin", response.text
    return browser
