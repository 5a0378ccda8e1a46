"""A distributor signing in lands on a page of their own that says what they can do (until
the distributor portal exists), never on a 403 page whose link leads back to itself."""

from __future__ import annotations

from billing.db import Database
from billing.models import Role
from tests.factories import make_distributor, new_party, user_with_login
from tests.portal_support import Browser, text_of

pytest_plugins = ["tests.portal_fixtures"]


async def _distributor(db: Database) -> int:
    async with db.transaction() as session:
        return (await make_distributor(session, "Corner Shop")).id


async def test_a_distributor_lands_on_a_page_that_says_what_they_can_do(
    browser: Browser, db: Database
) -> None:
    distributor_id = await _distributor(db)
    await new_party(db, name="Signed Up", distributor_id=distributor_id, phone="+2348031234567")
    await new_party(db, name="Someone Else's")
    email = await user_with_login(
        db, "shop@example.com", Role.DISTRIBUTOR, distributor_id=distributor_id
    )

    page = await browser.sign_in(email)
    assert (page.status_code, page.url.path) == (200, "/distributor")
    assert "What you can do here" in text_of(page.text, "can-do")
    customers = text_of(page.text, "customers")
    assert "Signed Up" in customers and "+234 803 123 4567" in customers
    assert "Someone Else's" not in customers


async def test_the_other_portals_send_a_distributor_home(browser: Browser, db: Database) -> None:
    distributor_id = await _distributor(db)
    email = await user_with_login(
        db, "shop@example.com", Role.DISTRIBUTOR, distributor_id=distributor_id
    )
    await browser.sign_in(email)

    for home in ("/portal", "/admin"):
        page = await browser.open(home)
        assert (page.status_code, page.url.path) == (200, "/distributor"), home
    refused = await browser.open("/admin/review")
    assert refused.status_code == 403
    # The way out of a refusal is the distributor's own page, which opens.
    assert '<a href="/distributor">Back to the start page</a>' in refused.text
    assert (await browser.open("/distributor")).status_code == 200
