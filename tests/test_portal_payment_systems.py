"""The administrators' payment systems page: a processor account added, listed, edited and
disabled through the API's mutations, refusals shown beside their fields, credentials shown
only as set or not set (never a value, not even a refused one), and only staff reach it."""

from __future__ import annotations

import re
from typing import Any, cast

from sqlalchemy import select

from billing.db import Database
from billing.models import ProcessorAccount
from tests.portal_support import Browser, text_of

pytest_plugins = ["tests.portal_fixtures"]

PATH = "/admin/payment-systems"
SECRET = "whsec_portal_secret_77"


def fields(**given: Any) -> dict[str, str]:
    """The new-account form filled in (``methodKinds`` a list: several boxes ticked)."""
    values: dict[str, Any] = {
        "name": "Simulated cards",
        "processor": "simulator",
        "mode": "TEST",
        "baseUrl": "",
        "minimums": "USD 1.00\nEUR 0.50",
        "methodKinds": ["VISA", "MAESTRO"],
        "credentialName": "webhook_secret",
        "credentialValue": SECRET,
        **given,
    }
    return cast(dict[str, str], values)


async def test_an_administrator_adds_edits_and_disables_a_payment_system(
    admin: Browser, db: Database
) -> None:
    page = await admin.open(PATH)
    assert page.status_code == 200
    assert "No payment system is configured" in text_of(page.text, "no-accounts")
    assert 'href="/admin/payment-systems"' in page.text  # in the navigation
    saved = await admin.submit(PATH, fields())
    assert saved.status_code == 200, saved.text
    assert text_of(saved.text, "payment-systems-done") == "Saved Simulated cards."
    row = text_of(saved.text, "account-1")
    assert "EUR 0.50, USD 1.00" in row and "maestro, visa" in row
    assert "webhook_secret: set" in row
    assert SECRET not in saved.text
    # Saved, the account's edit form is shown: the credential set, its field empty.
    match = re.search(r'action="(/admin/payment-systems/[^"/]+)"', saved.text)
    assert match is not None
    edit = match[1]
    assert 'name="credential.webhook_secret"' in saved.text
    renamed = await admin.submit(edit, fields(name="Cards", credentialName="", credentialValue=""))
    assert text_of(renamed.text, "payment-systems-done") == "Saved Cards."
    assert "webhook_secret: set" in text_of(renamed.text, "account-1")
    disabled = await admin.submit(f"{edit}/disable")
    assert text_of(disabled.text, "payment-systems-done") == "Disabled Cards."
    assert "Disabled" in text_of(disabled.text, "account-1")
    async with db.session() as session:
        stored = (await session.scalars(select(ProcessorAccount))).one()
    assert (stored.name, stored.enabled) == ("Cards", False)


async def test_refusals_are_shown_beside_their_fields_and_no_secret_is_drawn_back(
    admin: Browser, db: Database
) -> None:
    await admin.open(PATH)
    refused = await admin.submit(PATH, fields(methodKinds=["ECHECK"]))
    assert refused.status_code == 422
    assert "cannot take ECHECK" in text_of(refused.text, "f-methodKinds-error")
    assert SECRET not in refused.text
    malformed = await admin.submit(PATH, fields(minimums="USD"))
    assert malformed.status_code == 422
    assert "One currency and minimum per line" in text_of(malformed.text, "f-minimums-error")
    negative = await admin.submit(PATH, fields(minimums="USD -1"))
    assert "negative" in text_of(negative.text, "f-minimums-error")
    async with db.session() as session:
        assert (await session.scalars(select(ProcessorAccount))).all() == []


async def test_a_customer_is_not_shown_the_page(signed_in: Browser) -> None:
    page = await signed_in.open(PATH)
    assert page.url.path != PATH or page.status_code in (403, 404)
