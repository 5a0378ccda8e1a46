"""GraphiQL at ``/graphql`` works offline: every file it needs is vendored and served here.

Any request for an address other than the live server's is recorded and refused, so a page
that reached for a CDN fails here as it would on a machine with no network.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from playwright.async_api import Page, Request, Route, expect

from billing.db import Database
from tests.browser.conftest import LiveServer
from tests.factories import PASSWORD, admin_with_login

SIGN_IN = (
    'mutation { signIn(input: {email: "%s", password: "%s"}) { viewer { role } errors { code } } }'
)


def _leaves(request: Request) -> bool:
    """Whether the request goes over the network to anywhere but the live server."""
    address = urlsplit(request.url)
    return address.scheme in ("http", "https", "ws", "wss") and address.hostname != "127.0.0.1"


async def _keep_local(page: Page) -> list[str]:
    """Refuse every request that would leave 127.0.0.1; returns the list of those tried."""
    outside: list[str] = []

    async def refuse(route: Route, request: Request) -> None:
        await (route.abort() if _leaves(request) else route.continue_())

    await page.route("**/*", refuse)
    page.on("request", lambda request: outside.append(request.url) if _leaves(request) else None)
    return outside


async def _run(page: Page) -> None:
    await page.locator(".graphiql-execute-button").click()


async def test_graphiql_renders_and_runs_queries_without_the_network(
    page: Page, server: LiveServer, db: Database
) -> None:
    outside = await _keep_local(page)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    response = await page.goto("/graphql")
    assert response is not None and response.status == 200
    await expect(page.locator(".graphiql-execute-button")).to_be_visible()
    # The welcome document's query runs as it stands: an anonymous viewer.
    await _run(page)
    result = page.locator(".result-window")
    await expect(result).to_contain_text('"authenticated": false')

    # Signing in sets the session cookie that GraphiQL's later requests carry.
    email = await admin_with_login(db)
    await page.goto("/graphql?q=" + quote(SIGN_IN % (email, PASSWORD)))
    await _run(page)
    await expect(result).to_contain_text('"role": "ADMIN"')
    await page.goto("/graphql?q=" + quote("{ viewer { authenticated role } }"))
    await _run(page)
    await expect(result).to_contain_text('"authenticated": true')

    # The schema came through too: the documentation explorer lists the root types.
    await page.get_by_role("button", name="Show Documentation Explorer").click()
    await expect(page.locator(".graphiql-doc-explorer")).to_contain_text("Query")

    assert outside == []
    assert errors == []
