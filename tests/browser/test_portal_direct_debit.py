"""Direct debit in a real browser (issue 14): a customer of a gateway-billed class sees the
gateway's establishment fee and commission first, agrees, enters a bank account on the fake
Debitsuccess's hosted form (served on its own port; the processor account's API address points
there), comes back to kassa and sees the account kept among the payment methods.  Then an
invoice is collected by a one-off schedule, the test clock is moved on (the domain's
advance_clock) so a poll settles it, and the administrator's Direct debit page shows the
schedule's history.  The portal page and the admin page are screenshotted at 1280 and 360 px
(test-artifacts/direct-debit/) and must not scroll sideways on a phone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from billing import gateway_billing, jobs
from billing.db import Database
from billing.gateway_billing import PaidOn, SettingsInput
from billing.models import CardCharging
from billing.payment_systems import MethodKind
from billing.processor_accounts import AccountInput, create_account
from processors.fakes.debitsuccess import BUSINESS_ID, PASSWORD, USERNAME, FakeDebitsuccess
from tests.bitcoin_chain import LiveServer as FakeServer
from tests.bitcoin_chain import serving
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import ARTIFACTS, LiveServer
from tests.browser.support import back_to_kassa, sign_in
from tests.factories import (
    admin_viewer,
    admin_with_login,
    customer_class,
    customer_with_login,
    issue_invoice,
)

SHOTS = Path(ARTIFACTS) / "direct-debit"
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture
def gateway() -> Iterator[tuple[FakeDebitsuccess, FakeServer]]:
    fake = FakeDebitsuccess()
    with serving(fake.app) as live:
        yield fake, live


async def _shoot(page: Page, name: str) -> None:
    """The page at a desktop's width and a phone's; at the phone's nothing is cut off."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1280, 900), (360, 740)):
        await page.set_viewport_size({"width": width, "height": height})
        await page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    assert await page.evaluate(OVERFLOW) <= 0, name
    await page.set_viewport_size({"width": 1280, "height": 900})


async def test_on_boarding_through_the_widget_then_a_schedule_settled_by_a_poll(
    page: Page,
    db: Database,
    server: LiveServer,
    gateway: tuple[FakeDebitsuccess, FakeServer],
) -> None:
    fake, live = gateway
    async with db.transaction() as session:
        account = await create_account(
            session,
            admin_viewer(),
            AccountInput(
                name="Debitsuccess",
                processor="debitsuccess",
                credentials={
                    "username": USERNAME,
                    "password": PASSWORD,
                    "business_id": BUSINESS_ID,
                },
                base_url=live.url,
                minimums=[("USD", "1.00")],
                method_kinds=[MethodKind.DIRECT_DEBIT],
            ),
        )
        await gateway_billing.save_settings(
            session, admin_viewer(), account.id, SettingsInput(PaidOn.SETTLED, "25", "USD", "1.5")
        )
    class_id = await customer_class(db, "Direct debit", card_charging=CardCharging.ON_DUE_DATE)
    async with db.transaction() as session:
        await gateway_billing.bill_class_through(session, admin_viewer(), class_id, account.id)
    mary = await customer_with_login(db, name="Mary Jackson", class_id=class_id)
    await back_to_kassa(page, server)
    await sign_in(page, mary.email)

    # The fee and commission come first; nothing is made at the gateway before agreeing.
    await page.goto("/portal/payment-methods")
    await page.get_by_role("link", name="Set up direct debit").click()
    await expect(page.locator("#fees")).to_contain_text("25.00 USD")
    await expect(page.locator("#fees")).to_contain_text("1.50 %")
    assert fake.customers == {}
    await assert_accessible(page)
    await _shoot(page, "portal-offer")
    await page.get_by_role("button", name="Continue to Debitsuccess").click()
    await expect(page.locator("#f-agree-error")).to_contain_text("Tick the box")
    await page.get_by_label("I agree to Debitsuccess's establishment fee and commission").check()
    await page.get_by_role("button", name="Continue to Debitsuccess").click()

    # The gateway's own form, then back to kassa.
    await expect(page).to_have_url(re.compile(re.escape(live.url) + "/paynow/"))
    await page.get_by_label("Account holder").fill("Mary Jackson")
    await page.get_by_label("Bank account or card number").fill("0212345678901")
    await page.get_by_role("button", name="Save payment details").click()
    await expect(page.locator("#set-up-done")).to_contain_text("bank account ending 8901")
    await expect(page.locator("#current")).to_contain_text("account DEA")
    await assert_accessible(page)
    await _shoot(page, "portal-done")
    await page.goto("/portal/payment-methods")
    await expect(page.locator("#cards")).to_contain_text(
        "Bank account ending 8901, by direct debit"
    )

    # An invoice falls due: a one-off schedule; the polls see it through to Settled.
    invoice = await issue_invoice(db, mary, 5000)
    due_at = datetime.combine(invoice.due_date, datetime.min.time(), UTC) + timedelta(hours=9)
    await jobs.advance_clock(db, due_at + timedelta(days=5))
    [schedule] = fake.schedules.values()
    assert schedule["externalScheduleIdentifier"] == "attempt-1"

    await page.context.clear_cookies()
    await sign_in(page, await admin_with_login(db), lands_on="/admin")
    await page.get_by_role("link", name="Direct debit").click()
    history = page.locator("#customers-title + article, article").filter(has_text="Mary Jackson")
    await expect(history).to_contain_text("attempt-1")
    for status in ("Unattempted", "Pending", "Cleared", "Settled"):
        await expect(history).to_contain_text(status)
    await expect(history).to_contain_text("Completed")
    await assert_accessible(page)
    await _shoot(page, "admin")
