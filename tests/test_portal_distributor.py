"""The distributor portal (issue 10): a distributor sees its own figures and customers only,
signs customers up (postpaid, or prepaid with the credit it sold), adds accounts with typed-in
numbers, records cash with the commission shown before saving — and the preview is what is
booked — and reads and exports its own transactions.  Someone else's customer is a 404
page, and the other portals are not the distributor's.

The distributor below keeps 15 % of credit sold and 10 % of cash collected, as in the
issue's examples: selling 10.00 of credit leaves it owing 8.50; collecting 10.00, 9.00.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from billing import clock, jobs
from billing.db import Database
from billing.demo import DISTRIBUTOR_LOGIN, DISTRIBUTOR_SIGNUPS, load_demo
from billing.models import Role
from portals import distributor as distributor_portal
from schema.relay import encode_id
from tests.factories import (
    distributor_viewer,
    freeze_clock,
    make_account,
    make_customer,
    make_distributor,
    new_party,
    user_with_login,
)
from tests.graphql_support import row_counts
from tests.portal_support import Browser, form_fields, text_of

pytest_plugins = ["tests.portal_fixtures"]

EMAIL = "shop@example.com"


@dataclass(frozen=True)
class Shop:
    distributor_id: int
    #: Its customer, signed up by the distributor itself, with one account.
    customer_id: str
    customer_path: str


async def _shop(
    db: Database,
    name: str = "Corner Shop",
    credit_limit: int = 100000,
    number: str = "+2348030000001",
) -> Shop:
    """A distributor (15 % of sales, 10 % of cash) with a customer it signed up."""
    async with db.session() as session:
        if not await clock.is_frozen(session):
            await freeze_clock(db)
    async with db.transaction() as session:
        distributor = await make_distributor(
            session,
            name,
            credit_limit=credit_limit,
            sales_commission_bps=1500,
            payment_commission_bps=1000,
        )
        customer = await make_customer(
            session,
            distributor_viewer(distributor.id),
            name=f"{name} Customer",
            phone="+2348031234567",
        )
        await make_account(session, customer, distributor_viewer(distributor.id), number)
    customer_id = encode_id("Customer", customer.id)
    return Shop(distributor.id, customer_id, f"/distributor/customers/{customer_id}")


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await _shop(db)


@pytest.fixture
async def signed_in(browser: Browser, db: Database, shop: Shop) -> Browser:
    """The browser with the shop's distributor signed in, on its home page."""
    email = await user_with_login(db, EMAIL, Role.DISTRIBUTOR, distributor_id=shop.distributor_id)
    page = await browser.sign_in(email)
    assert (page.status_code, page.url.path) == (200, "/distributor"), page.text
    return browser


async def _collections(browser: Browser) -> list[list[str]]:
    """The distributor's collections as its CSV export lists them (rows after the header)."""
    response = await browser.http.get("/distributor/transactions.csv?kind=COLLECTION")
    return list(csv.reader(io.StringIO(response.text)))[1:]


# --- home --------------------------------------------------------------------------------


async def test_home_shows_the_figures_and_only_the_distributors_customers(
    signed_in: Browser, db: Database
) -> None:
    other = await _shop(db, "Other Kiosk", number="+2348030000002")
    await new_party(db, name="Nobody's Customer")

    page = await signed_in.open("/distributor")
    assert text_of(page.text, "balance") == "0.00 USD"
    assert text_of(page.text, "available-credit") == "1,000.00 USD"
    assert text_of(page.text, "credit-limit") == "1,000.00 USD"
    assert text_of(page.text, "commission") == "0.00 USD"
    customers = text_of(page.text, "customers")
    assert "Corner Shop Customer" in customers and "+234 803 123 4567" in customers
    assert "Other Kiosk" not in customers and "Nobody's Customer" not in customers
    assert (await signed_in.open(other.customer_path)).status_code == 404


async def test_the_customer_search_and_pages(
    signed_in: Browser, db: Database, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db.transaction() as session:
        for name in ("Amaka Obi", "Bola Ade"):
            await make_customer(session, distributor_viewer(shop.distributor_id), name=name)
    monkeypatch.setattr(distributor_portal, "PAGE_SIZE", 2)

    found = await signed_in.open("/distributor?q=amaka", **{"HX-Request": "true"})
    assert found.text.lstrip().startswith('<section id="customer-list"')
    assert "Amaka Obi" in found.text and "Bola Ade" not in found.text

    first = await signed_in.open("/distributor")
    assert "3 customers" in first.text and "More customers" in first.text
    cursor = first.text.split("/distributor?after=")[1].split('"')[0]
    second = await signed_in.open(f"/distributor?after={cursor}")
    assert "Corner Shop Customer" in text_of(second.text, "customers")
    assert "More customers" not in second.text


# --- signing customers up ----------------------------------------------------------------


async def test_a_postpaid_customer_starts_at_zero_and_earns_nothing(
    signed_in: Browser, db: Database
) -> None:
    page = await signed_in.submit(
        "/distributor/customers",
        {"name": "Ngozi Postpaid", "phone": "+2348035550000", "plan": "POSTPAID"},
    )
    assert page.status_code == 200 and page.url.path.startswith("/distributor/customers/")
    assert "is signed up" in text_of(page.text, "signed-up")
    assert text_of(page.text, "balance") == "0.00 USD"
    assert text_of(page.text, "available-funds") == "0.00 USD"  # no credit limit either
    home = await signed_in.open("/distributor")
    assert text_of(home.text, "balance") == "0.00 USD"
    assert text_of(home.text, "commission") == "0.00 USD"


async def test_a_prepaid_customer_is_sold_credit_at_the_previewed_commission(
    signed_in: Browser,
) -> None:
    preview = await signed_in.open(
        "/distributor/sale-preview?openingCredit=10.00", **{"HX-Request": "true"}
    )
    assert "keep 1.50 USD (15.00 %)" in text_of(preview.text, "sale-preview")
    assert "owe the provider 8.50 USD" in text_of(preview.text, "sale-preview")

    await signed_in.open("/distributor")
    page = await signed_in.submit(
        "/distributor/customers",
        {"name": "Amaka Prepaid", "plan": "PREPAID", "openingCredit": "10.00"},
    )
    assert text_of(page.text, "balance") == "-10.00 USD"  # the credit it bought
    assert text_of(page.text, "available-funds") == "10.00 USD"
    home = await signed_in.open("/distributor")
    assert text_of(home.text, "balance") == "8.50 USD"
    assert text_of(home.text, "commission") == "1.50 USD"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "", "plan": "POSTPAID"}, "name", "required"),
        ({"name": "A", "plan": "PREPAID"}, "openingCredit", "Enter the credit you sold"),
        ({"name": "A", "plan": "POSTPAID", "openingCredit": "5"}, "openingCredit", "postpaid"),
        ({"name": "A", "plan": "PREPAID", "openingCredit": "1.234"}, "openingCredit", "decimal"),
        ({"name": "A", "plan": "POSTPAID", "timeZone": "Mars/Base"}, "timeZone", "time zone"),
    ],
)
async def test_a_sign_up_that_cannot_be_taken_says_why_beside_the_field(
    signed_in: Browser, db: Database, fields: dict[str, str], field: str, message: str
) -> None:
    before = await row_counts(db)
    page = await signed_in.submit("/distributor/customers", fields, htmx=True)
    assert page.status_code == 422
    assert message.lower() in text_of(page.text, f"f-{field}-error").lower()
    assert await row_counts(db) == before


async def test_selling_past_the_credit_limit_is_refused_with_the_apis_words(
    browser: Browser, db: Database
) -> None:
    shop = await _shop(db, "Small Kiosk", credit_limit=500)
    email = await user_with_login(db, EMAIL, Role.DISTRIBUTOR, distributor_id=shop.distributor_id)
    await browser.sign_in(email)
    preview = await browser.open("/distributor/sale-preview?openingCredit=10.00")
    assert "would be refused" in preview.text
    await browser.open("/distributor")
    before = await row_counts(db)
    page = await browser.submit(
        "/distributor/customers", {"name": "Too Much", "plan": "PREPAID", "openingCredit": "10"}
    )
    assert page.status_code == 422
    assert "credit limit" in page.text and "5.00 USD of credit is left" in page.text
    assert await row_counts(db) == before


# --- one customer ------------------------------------------------------------------------


async def test_the_customer_page_shows_what_a_distributor_may_see(
    signed_in: Browser, shop: Shop
) -> None:
    page = await signed_in.open(shop.customer_path)
    assert page.status_code == 200
    assert "+234 803 000 0001" in text_of(page.text, "accounts")
    assert "+234 803 123 4567" in text_of(page.text, "profile")
    assert text_of(page.text, "available-funds") == "0.00 USD"
    assert "Nothing to pay" in text_of(page.text, "open-invoices")


async def test_an_account_is_added_with_the_number_typed_in(signed_in: Browser, shop: Shop) -> None:
    await signed_in.open(shop.customer_path)
    page = await signed_in.submit(
        f"{shop.customer_path}/accounts", {"number": "+2348039990000", "product": "Mobile"}
    )
    assert "Added +2348039990000 (Mobile)" in text_of(page.text, "account-added")
    assert "+234 803 999 0000" in text_of(page.text, "accounts")

    again = await signed_in.submit(
        f"{shop.customer_path}/accounts", {"number": "+2348039990000", "product": "Mobile"}
    )
    assert again.status_code == 422
    assert "already exists" in text_of(again.text, "f-account-number-error")


async def test_cash_is_previewed_then_booked_as_previewed_and_once(
    signed_in: Browser, shop: Shop
) -> None:
    preview = await signed_in.open(
        f"{shop.customer_path}/payment-preview?amount=10.00", **{"HX-Request": "true"}
    )
    shown = text_of(preview.text, "payment-preview")
    assert "balance goes down 10.00 USD" in shown
    assert "keep 1.00 USD (10.00 %)" in shown and "owe the provider 9.00 USD" in shown

    page = await signed_in.open(shop.customer_path)
    fields = form_fields(page.text, f"{shop.customer_path}/payments")
    recorded = await signed_in.submit(f"{shop.customer_path}/payments", {"amount": "10.00"})
    assert recorded.status_code == 200
    assert text_of(recorded.text, "payment-recorded") == (
        "Recorded 10.00 USD in cash. You keep 1.00 USD and owe the provider 9.00 USD for it."
    )
    assert text_of(recorded.text, "balance") == "-10.00 USD"
    assert text_of(recorded.text, "distributor-balance") == "9.00 USD"

    # The same form sent again (a double click, a reload) records nothing more.
    await signed_in.http.post(f"{shop.customer_path}/payments", data={**fields, "amount": "10.00"})
    assert [row[4:7] for row in await _collections(signed_in)] == [["10.00", "1.00", "9.00"]]
    home = await signed_in.open("/distributor")
    assert text_of(home.text, "balance") == "9.00 USD"
    assert text_of(home.text, "commission") == "1.00 USD"


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("", "enter the amount"),
        ("0", "greater than zero"),
        ("ten", "decimal"),
        ("1.001", "decimals"),
    ],
)
async def test_cash_that_cannot_be_taken_says_why(
    signed_in: Browser, db: Database, shop: Shop, amount: str, message: str
) -> None:
    await signed_in.open(shop.customer_path)
    before = await row_counts(db)
    page = await signed_in.submit(f"{shop.customer_path}/payments", {"amount": amount}, htmx=True)
    assert page.status_code == 422
    assert message in text_of(page.text, "f-payment-amount-error").lower()
    assert await row_counts(db) == before


async def test_cash_past_the_credit_limit_is_refused_and_nothing_is_written(
    browser: Browser, db: Database
) -> None:
    shop = await _shop(db, "Small Kiosk", credit_limit=500)
    email = await user_with_login(db, EMAIL, Role.DISTRIBUTOR, distributor_id=shop.distributor_id)
    await browser.sign_in(email)
    preview = await browser.open(f"{shop.customer_path}/payment-preview?amount=10")
    assert "would be refused" in preview.text
    await browser.open(shop.customer_path)
    before = await row_counts(db)
    page = await browser.submit(f"{shop.customer_path}/payments", {"amount": "10"})
    assert page.status_code == 422
    assert "past its credit limit" in text_of(page.text, "f-payment-amount-error")
    assert await row_counts(db) == before


async def test_another_distributors_customer_is_not_found_anywhere(
    signed_in: Browser, db: Database
) -> None:
    other = await _shop(db, "Other Kiosk", number="+2348030000002")
    home = await signed_in.open("/distributor")  # a page of its own, for the forms' token
    token = form_fields(home.text, "/distributor/customers")["csrf_token"]
    before = await row_counts(db)
    assert (await signed_in.open(other.customer_path)).status_code == 404
    assert (
        await signed_in.open(f"{other.customer_path}/payment-preview?amount=1")
    ).status_code == 404
    for action, data in (
        ("payments", {"amount": "1.00", "key": "k1"}),
        ("accounts", {"number": "+1555000", "product": "Mobile"}),
    ):
        response = await signed_in.http.post(
            f"{other.customer_path}/{action}", data={**data, "csrf_token": token}
        )
        assert response.status_code == 404, action
    assert await row_counts(db) == before


# --- transactions ------------------------------------------------------------------------


async def test_transactions_filter_by_kind_and_day_and_export_as_csv(
    signed_in: Browser, shop: Shop
) -> None:
    await signed_in.open("/distributor")
    await signed_in.submit(
        "/distributor/customers", {"name": "Amaka", "plan": "PREPAID", "openingCredit": "10"}
    )
    await signed_in.open(shop.customer_path)
    await signed_in.submit(f"{shop.customer_path}/payments", {"amount": "20.00"})

    page = await signed_in.open("/distributor/transactions")
    listed = text_of(page.text, "transactions")
    assert "Sale of credit" in listed and "Cash collected" in listed
    assert "+8.50 USD" in listed and "+18.00 USD" in listed and "2.00 USD" in listed

    sales = await signed_in.open("/distributor/transactions?kind=SALE")
    assert "1 transaction" in sales.text and "Cash collected" not in text_of(
        sales.text, "transactions"
    )
    same_day = await signed_in.open("/distributor/transactions?from=2026-03-16&to=2026-03-16")
    assert "2 transactions" in same_day.text
    before = await signed_in.open("/distributor/transactions?to=2026-03-15")
    assert "0 transactions" in before.text
    wrong = await signed_in.open("/distributor/transactions?from=2026-03-17&to=2026-03-16")
    assert wrong.status_code == 422 and "before the first" in text_of(wrong.text, "f-to-error")

    export = await signed_in.http.get("/distributor/transactions.csv?kind=SALE&from=2026-03-16")
    assert export.status_code == 200
    assert export.headers["content-type"] == "text/csv; charset=utf-8"
    assert export.headers["content-disposition"] == (
        'attachment; filename="transactions-2026-03-16-to-now.csv"'
    )
    header, *rows = list(csv.reader(io.StringIO(export.text)))
    assert header[:2] == ["date", "kind"]
    assert [row[1:2] + row[4:8] for row in rows] == [["SALE", "10.00", "1.50", "8.50", "USD"]]
    assert 'href="/distributor/transactions.csv?kind=SALE"' in sales.text


async def test_transactions_page_back_in_time_with_their_filters(
    signed_in: Browser, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portals import distributor_transactions

    await signed_in.open(shop.customer_path)
    for amount in ("1.00", "2.00", "3.00"):
        await signed_in.submit(f"{shop.customer_path}/payments", {"amount": amount})
    monkeypatch.setattr(distributor_transactions, "PAGE_SIZE", 2)
    first = await signed_in.open("/distributor/transactions?kind=COLLECTION")
    assert "3 transactions" in first.text and "Older transactions" in first.text
    older = first.text.split('href="/distributor/transactions?kind=COLLECTION&amp;after=')[1]
    second = await signed_in.open(
        "/distributor/transactions?kind=COLLECTION&after=" + older.split('"')[0]
    )
    assert "+0.90 USD" in text_of(second.text, "transactions")
    assert "Back to the newest" in second.text and "Older transactions" not in second.text


# --- the other portals -------------------------------------------------------------------


async def test_the_other_portals_are_not_the_distributors(signed_in: Browser) -> None:
    for home in ("/portal", "/admin"):
        page = await signed_in.open(home)
        assert (page.status_code, page.url.path) == (200, "/distributor"), home
    for path in ("/admin/review", "/admin/classes", "/portal/invoices", "/portal/payments"):
        refused = await signed_in.open(path)
        assert refused.status_code == 403, path
        # The way out of a refusal is the distributor's own page, which opens.
        assert '<a href="/distributor">Back to the start page</a>' in refused.text
    navigation = await signed_in.open("/distributor/transactions")
    assert 'href="/distributor/transactions" aria-current="page"' in navigation.text


# --- the demo ------------------------------------------------------------------------------


async def test_the_demo_distributor_lands_on_a_working_portal(
    browser: Browser, demo_db: Database
) -> None:
    """``make run``'s distributor login: customers (two sold opening credit), and a sale,
    collections with commission and a payment to the provider — 10 % of 20.00 and 10.00
    sold, 5 % of 5.00 and 15.00 collected, 30.00 handed in: it owes 16.00, kept 4.00."""
    await load_demo(demo_db, datetime(2026, 12, 2, 18, 42, tzinfo=UTC))
    page = await browser.sign_in(*DISTRIBUTOR_LOGIN)
    assert (page.status_code, page.url.path) == (200, "/distributor")
    assert text_of(page.text, "balance") == "16.00 USD"
    assert text_of(page.text, "commission") == "4.00 USD"
    customers = text_of(page.text, "customers")
    for name, _, _ in DISTRIBUTOR_SIGNUPS:
        assert name in customers
    assert "Amaka Obi" in customers and "-20.00 USD" in customers

    listed = await browser.open("/distributor/transactions")
    kinds = [row.split('"')[0] for row in listed.text.split('data-kind="')[1:]]
    assert sorted(kinds) == sorted(
        ["SALE", "SALE", "COLLECTION", "COLLECTION", "PAYMENT_TO_PROVIDER"]
    )
    first_customer = page.text.split('href="/distributor/customers/')[1].split('"')[0]
    assert (await browser.open(f"/distributor/customers/{first_customer}")).status_code == 200


async def test_the_transactions_page_lists_the_distributors_invoices(
    signed_in: Browser, shop: Shop, db: Database
) -> None:
    page = await signed_in.open("/distributor/transactions")
    assert "No invoices yet" in text_of(page.text, "invoice-list")
    await signed_in.open("/distributor")
    await signed_in.submit(
        "/distributor/customers", {"name": "Amaka", "plan": "PREPAID", "openingCredit": "10"}
    )
    await jobs.advance_clock(db, datetime(2026, 4, 2, tzinfo=UTC))  # March is invoiced
    page = await signed_in.open("/distributor/transactions")
    listed = text_of(page.text, "invoice-list")
    assert listed.count("INV-") == 1, listed
    assert "Open" in listed and "8.50 USD" in listed and "1 Mar 2026 – 31 Mar 2026" in listed
