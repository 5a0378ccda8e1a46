"""The API keys section of an administrator's distributor page: a key made there acts as the
distributor (its token shown once), is listed, and stops working when revoked; bad input is
shown beside its field with nothing written; a post without the CSRF token, or to another
reseller's distributor, changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from billing.db import Database
from billing.models import ApiKey
from schema.relay import encode_id
from tests.factories import admin_with_login, make_distributor, make_reseller
from tests.graphql_support import Api
from tests.portal_support import HTMX, Browser, csrf_token, parse, text_of

pytest_plugins = ["tests.portal_fixtures"]

VIEWER = "{ viewer { kind role scope distributorId } }"


async def _kiosk(db: Database, reseller_id: int | None = None, name: str = "Kiosk") -> str:
    """A distributor's page address."""
    async with db.transaction() as session:
        distributor = await make_distributor(session, name, reseller_id)
    return f"/admin/distributors/{encode_id('Distributor', distributor.id)}"


async def _keys(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(ApiKey)) or 0)


async def test_a_key_made_on_the_page_acts_as_the_distributor_until_revoked(
    admin: Browser, db: Database
) -> None:
    path = await _kiosk(db)
    page = await admin.open(path)
    assert "API keys (0)" in page.text and "No API keys yet." in page.text
    made = await admin.submit(f"{path}/api-keys", {"name": "Till", "scope": "READ"}, htmx=True)
    assert made.status_code == 200 and "<h1>" not in made.text  # the section only
    token = text_of(made.text, "new-api-key-token")
    assert token.startswith("kassa_")
    assert "API keys (1)" in made.text and "Read only" in text_of(made.text, "api-key-list")
    key = Api(admin.http, token)
    assert (await key.run(VIEWER))["viewer"] == {
        "kind": "API_KEY",
        "role": "DISTRIBUTOR",
        "scope": "READ",
        "distributorId": path.rsplit("/", 1)[1],
    }
    # Shown once: the page drawn again lists the key, not its token.
    again = await admin.open(path)
    assert token not in again.text and "Till" in text_of(again.text, "api-key-list")
    [revoke] = [action for action, _ in parse(again.text).forms if action.endswith("/revoke")]
    revoked = await admin.submit(revoke, htmx=True)
    assert revoked.status_code == 200
    assert text_of(revoked.text, "api-key-revoked") == "Revoked the key “Till”: it no longer works."
    assert "Revoked" in text_of(revoked.text, "api-key-list") and f'action="{revoke}"' not in (
        revoked.text
    )
    refused = await key.post(VIEWER)
    assert refused.status_code == 401


async def test_without_javascript_the_whole_page_comes_back_with_the_token(
    admin: Browser, db: Database
) -> None:
    path = await _kiosk(db)
    await admin.open(path)
    page = await admin.submit(f"{path}/api-keys", {"name": "Till", "scope": "READ_WRITE"})
    assert page.status_code == 200 and "<h1>Kiosk</h1>" in page.text
    assert text_of(page.text, "new-api-key-token").startswith("kassa_")


async def test_bad_input_stands_beside_its_field_and_nothing_is_made(
    admin: Browser, db: Database
) -> None:
    path = await _kiosk(db)
    await admin.open(path)
    for name, message in (("   ", "name is required"), ("x" * 101, "longer than 100 characters")):
        refused = await admin.submit(f"{path}/api-keys", {"name": name}, htmx=True)
        assert refused.status_code == 422
        assert message in text_of(refused.text, "f-key-name-error").lower()
        assert "new-api-key" not in refused.text
    assert await _keys(db) == 0


async def test_no_csrf_token_or_another_resellers_distributor_changes_nothing(
    browser: Browser, db: Database
) -> None:
    async with db.transaction() as session:
        reseller = await make_reseller(session, "Reseller R")
    ours = await _kiosk(db, reseller.id, "Our Kiosk")
    theirs = await _kiosk(db, None, "Provider Kiosk")
    await browser.sign_in(await admin_with_login(db, "r@kassa.test", reseller_id=reseller.id))
    page = await browser.open(ours)
    token = csrf_token(page.text)
    forged = await browser.http.post(f"{ours}/api-keys", data={"name": "Till"}, headers=HTMX)
    assert forged.status_code == 403
    foreign = await browser.http.post(
        f"{theirs}/api-keys", data={"name": "Till"}, headers={**HTMX, "X-CSRF-Token": token}
    )
    assert foreign.status_code == 404 and "Provider Kiosk" not in foreign.text
    assert await _keys(db) == 0
    mine = await browser.submit(f"{ours}/api-keys", {"name": "Till"}, htmx=True)
    assert mine.status_code == 200 and await _keys(db) == 1
