"""Issue 10's checklist in a browser: the administrator makes a distributor with a portal
login on ``/admin/distributors/new``, the distributor signs in, signs a customer up, adds an account with a number typed
in, records a cash payment with the commission shown before saving, and sees the
commission and its balance — and both balances follow the rules with numbers:

* 10 % payment commission on 10.00 collected → the customer's balance −10.00, the
  distributor owes 9.00 and has kept 1.00;
* 15 % sales commission on 10.00 of credit sold → the new customer −10.00, the distributor
  owes 8.50 more (17.50 in all) and has kept 1.50 more (2.50).

Each page is also drawn at 1280 and 360 px wide (screenshots in
``test-artifacts/distributor-portal/``) and must not scroll sideways on a phone.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, ViewportSize, expect

from billing.db import Database
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import ARTIFACTS
from tests.browser.support import graphql_as_visitor, htmx_settled, sign_in
from tests.factories import PASSWORD, admin_with_login

DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 360, "height": 740}
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
SHOTS = Path(ARTIFACTS) / "distributor-portal"
EMAIL = "shop@example.com"

BALANCES = """
query { viewer { distributor { balance { amount } commissionThisPeriod { amount } } }
        customers(first: 10) { edges { node { name balance { amount } } } } }
"""


async def _both_widths(page: Page, name: str) -> None:
    """Screenshots of the page at desktop and phone width; on a phone nothing sticks out."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("1280", DESKTOP), ("360", PHONE)):
        await page.set_viewport_size(size)
        await page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    assert await page.evaluate(OVERFLOW) <= 0, name
    await page.set_viewport_size(DESKTOP)


async def _balances(page: Page) -> tuple[str, str, dict[str, str]]:
    """The distributor's balance and commission, and its customers' balances, as the API
    tells the signed-in distributor."""
    data = await graphql_as_visitor(page, BALANCES)
    own = data["viewer"]["distributor"]
    customers = {
        edge["node"]["name"]: edge["node"]["balance"]["amount"]
        for edge in data["customers"]["edges"]
    }
    return own["balance"]["amount"], own["commissionThisPeriod"]["amount"], customers


async def test_the_distributor_checklist(page: Page, db: Database) -> None:
    await page.set_viewport_size(DESKTOP)
    # The administrator makes the distributor, with its portal sign-in, on its page.
    await sign_in(page, await admin_with_login(db), lands_on="/admin")
    await page.goto("/admin/distributors/new")
    await page.get_by_label("Name", exact=True).fill("Corner Shop")
    await page.get_by_label("Currency", exact=True).fill("USD")
    await page.get_by_label("Credit limit", exact=True).fill("1000.00")
    await page.get_by_label("Sales commission (%)").fill("15")
    await page.get_by_label("Payment commission (%)").fill("10")
    await page.get_by_label("E-mail address", exact=True).fill(EMAIL)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Create the distributor").click()
    await expect(page.get_by_role("heading", level=1, name="Corner Shop")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()

    # The distributor signs in and lands on its own portal.
    await sign_in(page, EMAIL, lands_on="/distributor")
    await expect(page.locator("#balance")).to_have_text("0.00 USD")
    await expect(page.locator("#available-credit")).to_have_text("1,000.00 USD")

    # A postpaid customer, signed up with the quick form.
    await page.get_by_label("Name", exact=True).fill("Amaka Obi")
    await page.get_by_label("Phone number").fill("+2348031234567")
    await page.get_by_role("button", name="Sign up").click()
    await expect(page.get_by_role("heading", level=1, name="Amaka Obi")).to_be_visible()
    await expect(page.locator("#signed-up")).to_contain_text("Amaka Obi is signed up")

    # An account, the number typed in by hand.
    await page.get_by_label("Phone number").fill("+2348039990000")
    await page.get_by_label("Product").fill("Mobile prepaid")
    await page.get_by_role("button", name="Add the account").click()
    await expect(page.locator("#account-added")).to_contain_text("+2348039990000")
    await expect(page.locator("#accounts")).to_contain_text("+234 803 999 0000")

    # Cash: the commission and what it will owe show as the amount is typed, before saving.
    await htmx_settled(page)
    await page.get_by_label("Amount taken (USD)").fill("10.00")
    preview = page.locator("#payment-preview")
    await expect(preview).to_contain_text("You keep 1.00 USD (10.00 %)")
    await expect(preview).to_contain_text("will owe the provider 9.00 USD")
    await _both_widths(page, "customer-preview")
    await page.get_by_role("button", name="Record the payment").click()
    await expect(page.locator("#payment-recorded")).to_have_text(
        "Recorded 10.00 USD in cash. You keep 1.00 USD and owe the provider 9.00 USD for it."
    )
    # The rule: the customer's balance goes down 10.00, the distributor owes 9.00.
    await expect(page.locator("#balance")).to_have_text("-10.00 USD")
    await expect(page.locator("#distributor-balance")).to_have_text("9.00 USD")
    assert await _balances(page) == ("9.00", "1.00", {"Amaka Obi": "-10.00"})
    await _both_widths(page, "customer")

    # A prepaid customer sold 10.00 of credit, the sale previewed as it is typed.
    await page.get_by_role("navigation").get_by_role("link", name="Customers").click()
    await htmx_settled(page)
    await page.get_by_label("Name", exact=True).fill("Bola Ade")
    await page.get_by_label("Plan").select_option("PREPAID")
    await page.get_by_label("Credit sold (USD)").fill("10.00")
    sale = page.locator("#sale-preview")
    await expect(sale).to_contain_text("keep 1.50 USD (15.00 %)")
    await expect(sale).to_contain_text("owe the provider 8.50 USD")
    await page.get_by_role("button", name="Sign up").click()
    await expect(page.get_by_role("heading", level=1, name="Bola Ade")).to_be_visible()
    await expect(page.locator("#balance")).to_have_text("-10.00 USD")
    assert await _balances(page) == (
        "17.50",
        "2.50",
        {"Amaka Obi": "-10.00", "Bola Ade": "-10.00"},
    )

    # Home: the balance it owes, the commission it earned, the credit it has left.
    await page.get_by_role("navigation").get_by_role("link", name="Customers").click()
    await expect(page.locator("#balance")).to_have_text("17.50 USD")
    await expect(page.locator("#commission")).to_have_text("2.50 USD")
    await expect(page.locator("#available-credit")).to_have_text("982.50 USD")
    await expect(page.locator("#customers tbody tr")).to_have_count(2)
    await _both_widths(page, "home")
    await assert_accessible(page)

    # Its transactions: the sale and the collection, with their commissions.
    await page.get_by_role("navigation").get_by_role("link", name="Transactions").click()
    rows = page.locator("#transactions tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("Sale of credit")
    await expect(rows.nth(0)).to_contain_text("+8.50 USD")
    await expect(rows.nth(1)).to_contain_text("Cash collected")
    await expect(rows.nth(1)).to_contain_text("+9.00 USD")
    await page.get_by_label("Cash collected").check()
    await expect(rows).to_have_count(1)
    await expect(page.locator("#csv-export")).to_have_attribute(
        "href", "/distributor/transactions.csv?kind=COLLECTION"
    )
    async with page.expect_download() as download:
        await page.locator("#csv-export").click()
    saved = await (await download.value).path()
    lines = Path(saved).read_text().splitlines()
    assert len(lines) == 2 and lines[1].endswith(",10.00,1.00,9.00,USD"), lines
    await _both_widths(page, "transactions")
    await assert_accessible(page)
