"""The administrators' distributor pages show what the GraphQL API says, put its errors
beside their fields, record a distributor's payment once per form, and are for staff only —
a reseller's staff its own distributors only."""

from __future__ import annotations

from typing import Any

from billing.db import Database
from billing.models import Role
from schema.relay import encode_id
from tests.factories import (
    ADMIN_EMAIL,
    PASSWORD,
    admin_with_login,
    distributor_viewer,
    make_customer,
    make_distributor,
    make_reseller,
    user_with_login,
)
from tests.portal_support import HTMX, Browser, csrf_token, customer_api, form_fields, text_of

pytest_plugins = ["tests.portal_fixtures"]

LIST = "/admin/distributors"
FIGURES = """id name balance { amount currency } availableCredit { amount currency }
    creditLimit { amount currency } commissionThisPeriod { amount currency }
    salesCommission paymentCommission warningThresholdPercent warningThreshold { amount }
    statisticsEmail contactName accountingEmail timeZone billingPeriod
    commissionByPeriod(first: 6) { periodStart commission { amount currency } }
    transactions(first: 50) { totalCount edges { node { kind amount { amount } } } }
    customers(first: 50) { totalCount edges { node { id name } } }"""
#: A complete create form, as an administrator fills it in.
NEW = {
    "name": "Corner Shop",
    "currency": "USD",
    "creditLimit": "1000.00",
    "billingPeriod": "WEEKLY",
    "timeZone": "Africa/Lagos",
    "salesCommission": "15",
    "paymentCommission": "10",
    "contactName": "Bola Ade",
    "phone": "+2348012345678",
    "address": "1 Market Road, Lagos",
    "accountingEmail": "books@shop.example",
    "warningThresholdKind": "amount",
    "warningThreshold": "800.00",
    "statisticsEmail": "FULL_WITH_CSV",
    "login.email": "shop@example.com",
    "login.password": "shop password 1",
    "login.timeZone": "Africa/Lagos",
    "login.language": "en",
}


def _money(value: dict[str, str]) -> str:
    return f"{value['amount']} {value['currency']}"


def _path(pk: int) -> str:
    return f"{LIST}/{encode_id('Distributor', pk)}"


async def _figures(browser: Browser, path: str, email: str = ADMIN_EMAIL) -> dict[str, Any]:
    """The distributor on ``path`` as the API shows it to its administrator."""
    api = await customer_api(browser, email)
    data = await api.run(
        f"query($id: ID!) {{ distributor(id: $id) {{ {FIGURES} }} }}",
        {"id": path.rsplit("/", 1)[1]},
    )
    distributor: dict[str, Any] = data["distributor"]
    return distributor


async def _kiosk(db: Database, reseller_id: int | None = None, name: str = "Kiosk") -> int:
    """A distributor (15 % on sales, 1,000.00 limit) that sold 10.00 of credit to a customer."""
    async with db.transaction() as session:
        distributor = await make_distributor(
            session, name, reseller_id, credit_limit=100000, sales_commission_bps=1500
        )
    async with db.transaction() as session:
        await make_customer(
            session,
            distributor_viewer(distributor.id),
            name=f"{name} customer",
            opening_balance=-1000,
        )
    return distributor.id


async def _create(admin: Browser, **fields: str) -> Any:
    await admin.open(f"{LIST}/new")
    return await admin.submit(LIST, {**NEW, **fields})


# --- the list -----------------------------------------------------------------------------


async def test_the_list_shows_each_distributors_money_and_searches(
    admin: Browser, db: Database
) -> None:
    pk = await _kiosk(db)
    await _kiosk(db, name="Market Stall")
    page = await admin.open(LIST)
    assert page.status_code == 200
    assert f'href="{LIST}" aria-current="page">Distributors</a>' in page.text
    row = text_of(page.text, "distributors")
    assert "Kiosk" in row and "Market Stall" in row
    kiosk = await _figures(admin, _path(pk))
    for figure in ("balance", "creditLimit", "availableCredit"):
        assert (
            kiosk[figure]["amount"]
            == {"balance": "8.50", "creditLimit": "1000.00", "availableCredit": "991.50"}[figure]
        )
    assert "8.50 USD" in row and "1,000.00 USD" in row and "991.50 USD" in row
    # htmx asks for the list alone as the visitor types.
    found = await admin.http.get(LIST, params={"q": "stall"}, headers=HTMX)
    assert found.status_code == 200 and "<h1>" not in found.text
    assert "Market Stall" in found.text and ">Kiosk<" not in found.text
    too_long = await admin.open(f"{LIST}?q={'x' * 255}")
    assert too_long.status_code == 400


# --- making and changing one --------------------------------------------------------------


async def test_a_distributor_made_with_a_login_signs_in_to_its_portal(
    admin: Browser, db: Database
) -> None:
    page = await _create(admin)
    assert page.status_code == 200 and page.url.path.startswith(f"{LIST}/")
    assert "<h1>Corner Shop</h1>" in page.text
    made = await _figures(admin, page.url.path)
    assert made["salesCommission"] == "15.00" and made["paymentCommission"] == "10.00"
    assert (
        made["warningThresholdPercent"] is None and made["warningThreshold"]["amount"] == "800.00"
    )
    assert (made["statisticsEmail"], made["timeZone"], made["billingPeriod"]) == (
        "FULL_WITH_CSV",
        "Africa/Lagos",
        "WEEKLY",
    )
    assert made["contactName"] == "Bola Ade" and made["accountingEmail"] == "books@shop.example"
    # Under htmx the form is answered with a redirect to the new page.
    await admin.open(f"{LIST}/new")
    response = await admin.submit(
        LIST, {**NEW, "login.email": "", "login.password": "", "name": "Two"}, htmx=True
    )
    assert response.headers["HX-Redirect"].startswith(f"{LIST}/")
    await admin.submit("/portal/sign-out")
    signed_in = await admin.sign_in("shop@example.com", "shop password 1")
    assert signed_in.url.path == "/distributor"


async def test_the_apis_errors_stand_beside_their_fields_and_nothing_is_made(
    admin: Browser, db: Database
) -> None:
    await user_with_login(db, "taken@example.com", Role.ADMIN)
    for fields, beside in (
        ({"salesCommission": "150"}, "salesCommission"),
        ({"currency": "XYZ"}, "currency"),
        ({"timeZone": "Mars/Base"}, "timeZone"),
        ({"login.timeZone": "Mars/Base"}, "login.timeZone"),
        ({"login.email": "taken@example.com"}, "login.email"),
        ({"login.password": "short"}, "login.password"),
        ({"warningThreshold": "-5"}, "warningThreshold"),
        ({"warningThresholdKind": "both"}, "warningThreshold"),
        ({"billingPeriod": "HOURLY"}, "billingPeriod"),
        ({"name": ""}, "name"),
    ):
        await admin.open(f"{LIST}/new")
        response = await admin.submit(LIST, {**NEW, **fields}, htmx=True)
        assert response.status_code == 422, fields
        assert "<h1>" not in response.text  # the form alone, swapped in place
        assert f'id="f-{beside}-error"' in response.text, (fields, response.text)
        assert 'aria-invalid="true"' in response.text or beside.endswith("Kind")
        assert 'value="shop password 1"' not in response.text  # a password is never echoed
    listed = await admin.open(LIST)
    assert "0 distributors" in listed.text


async def test_the_edit_form_shows_the_terms_and_saves_them(admin: Browser, db: Database) -> None:
    path = _path(await _kiosk(db))
    page = await admin.open(f"{path}/edit")
    fields = form_fields(page.text, f"{path}/edit")
    assert fields["name"] == "Kiosk" and fields["salesCommission"] == "15.00"
    assert fields["creditLimit"] == "1000.00" and fields["warningThreshold"] == "90.00"
    assert (
        'id="f-warningThresholdKind-percent" name="warningThresholdKind" value="percent" checked'
        in page.text
    )
    assert "currency" not in fields  # fixed for good
    saved = await admin.submit(
        f"{path}/edit",
        {
            "name": "Kiosk Two",
            "paymentCommission": "12.5",
            "warningThresholdKind": "amount",
            "warningThreshold": "700",
            "statisticsEmail": "NONE",
        },
    )
    assert saved.url.path == path and "<h1>Kiosk Two</h1>" in saved.text
    after = await _figures(admin, path)
    assert after["paymentCommission"] == "12.50" and after["statisticsEmail"] == "NONE"
    assert (
        after["warningThresholdPercent"] is None and after["warningThreshold"]["amount"] == "700.00"
    )
    await admin.open(f"{path}/edit")
    refused = await admin.submit(f"{path}/edit", {"creditLimit": "-1"}, htmx=True)
    assert refused.status_code == 422 and 'id="f-creditLimit-error"' in refused.text
    assert (await _figures(admin, path))["creditLimit"]["amount"] == "1000.00"


# --- one distributor ----------------------------------------------------------------------


async def test_the_page_shows_the_apis_figures_transactions_and_customers(
    admin: Browser, db: Database
) -> None:
    path = _path(await _kiosk(db))
    page = await admin.open(path)
    api = await _figures(admin, path)
    assert (
        text_of(page.text, "balance")
        == "8.50 USD"
        == _money(api["balance"]).replace(" USD", " USD")
    )
    assert text_of(page.text, "available-credit") == "991.50 USD"
    assert text_of(page.text, "credit-limit") == "1,000.00 USD"
    assert text_of(page.text, "commission-this-period") == "1.50 USD"
    assert api["commissionThisPeriod"]["amount"] == "1.50"
    periods = text_of(page.text, "commission-periods")
    assert api["commissionByPeriod"][0]["commission"]["amount"] == "1.50"
    assert "1.50 USD" in periods and "(open)" in periods
    transactions = text_of(page.text, "transactions")
    assert "Sale of credit" in transactions and "10.00 USD" in transactions
    (customer,) = api["customers"]["edges"]
    assert f'href="/admin/customers/{customer["node"]["id"]}"' in page.text
    assert "Kiosk customer" in text_of(page.text, "customers")


async def test_a_payment_lowers_the_balance_once_however_often_it_is_sent(
    admin: Browser, db: Database
) -> None:
    path = _path(await _kiosk(db))
    page = await admin.open(path)
    key = form_fields(page.text, f"{path}/payments")["key"]
    for _ in range(2):  # a double click: the same form, the same key
        response = await admin.submit(
            f"{path}/payments", {"amount": "5.00", "reference": "R-1", "key": key}, htmx=True
        )
        assert response.status_code == 200
        assert text_of(response.text, "payment-recorded") == "Recorded a payment of 5.00 USD."
    api = await _figures(admin, path)
    assert api["balance"]["amount"] == "3.50"
    kinds = [edge["node"]["kind"] for edge in api["transactions"]["edges"]]
    assert kinds.count("PAYMENT_TO_PROVIDER") == 1
    # A fresh form has a fresh key; a bad amount is shown beside the field.
    assert f'value="{key}"' not in response.text
    await admin.open(path)
    refused = await admin.submit(f"{path}/payments", {"amount": "-1"}, htmx=True)
    assert refused.status_code == 422 and 'id="f-payment-amount-error"' in refused.text


async def test_transactions_filter_page_and_download_as_csv(admin: Browser, db: Database) -> None:
    path = _path(await _kiosk(db))
    page = await admin.open(path)
    for n in range(11):
        await admin.submit(f"{path}/payments", {"amount": "0.10", "key": f"k{n}"}, htmx=True)
    payments = await admin.http.get(
        path, params={"list": "transactions", "kind": "PAYMENT_TO_PROVIDER"}, headers=HTMX
    )
    assert "<h1>" not in payments.text and "Transactions (11)" in payments.text
    assert "Sale of credit" not in text_of(payments.text, "transactions")
    older = payments.text.split('href="')[-1].split('"')[0].replace("&amp;", "&")
    assert "kind=PAYMENT_TO_PROVIDER" in older and "after=" in older
    rest = await admin.http.get(older, headers=HTMX)
    assert text_of(rest.text, "transactions").count("Payment to the provider") == 1
    # A day range on the distributor's calendar: nothing before today.
    empty = await admin.open(f"{path}?from=2000-01-01&to=2000-01-31")
    assert "No transactions match." in empty.text
    csv_link = await admin.open(f"{path}?kind=SALE")
    assert f'href="{path}/transactions.csv?kind=SALE"' in csv_link.text
    download = await admin.http.get(f"{path}/transactions.csv", params={"kind": "SALE"})
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    lines = download.text.splitlines()
    assert lines[0].startswith("date,kind,customer") and len(lines) == 2
    assert page.status_code == 200


# --- who may come in ----------------------------------------------------------------------


async def test_a_resellers_staff_manage_their_own_distributors_only(
    browser: Browser, db: Database
) -> None:
    async with db.transaction() as session:
        reseller = await make_reseller(session, "Reseller R")
    ours = _path(await _kiosk(db, reseller.id, "Our Kiosk"))
    theirs = _path(await _kiosk(db, None, "Provider Kiosk"))
    email = await admin_with_login(db, "reseller-admin@kassa.test", reseller_id=reseller.id)
    await browser.sign_in(email)
    listed = await browser.open(LIST)
    assert "Our Kiosk" in listed.text and "Provider Kiosk" not in listed.text
    assert (await browser.open(ours)).status_code == 200
    for address in (theirs, f"{theirs}/edit", f"{theirs}/transactions.csv"):
        response = await browser.open(address)
        assert response.status_code == 404 and "Provider Kiosk" not in response.text, address
    token = csrf_token(listed.text)
    for action, data in (
        ("payments", {"amount": "5.00", "key": "k"}),
        ("edit", {**NEW, "name": "Taken Over"}),
    ):
        response = await browser.http.post(
            f"{theirs}/{action}", data=data, headers={**HTMX, "X-CSRF-Token": token}
        )
        assert response.status_code == 404, action
    # What it makes is its reseller's.
    made = await _create(
        browser, **{"login.email": "", "login.password": "", "name": "Reseller Shop"}
    )
    assert "<h1>Reseller Shop</h1>" in made.text
    await browser.submit("/portal/sign-out")
    await browser.sign_in(await admin_with_login(db))
    provider = await _figures(browser, theirs)
    assert provider["balance"]["amount"] == "8.50" and provider["name"] == "Provider Kiosk"


async def test_customers_and_distributors_are_refused(signed_in: Browser, db: Database) -> None:
    pk = await _kiosk(db)
    path = _path(pk)
    email = await user_with_login(db, "kiosk@example.com", Role.DISTRIBUTOR, distributor_id=pk)
    for who in ("customer", "distributor"):
        if who == "distributor":
            await signed_in.submit("/portal/sign-out")
            await signed_in.sign_in(email, PASSWORD)
        token = csrf_token(signed_in.page.text if signed_in.page else "")
        for address in (LIST, f"{LIST}/new", path, f"{path}/edit", f"{path}/transactions.csv"):
            assert (await signed_in.open(address)).status_code == 403, (who, address)
        response = await signed_in.http.post(
            f"{path}/payments",
            data={"amount": "5.00", "key": "k"},
            headers={**HTMX, "X-CSRF-Token": token},
        )
        assert response.status_code == 403, who
    # The distributor itself still owes what it owed.
    assert (await _figures(signed_in, path, email))["balance"]["amount"] == "8.50"
