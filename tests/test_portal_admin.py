"""The administrators' pages show what the GraphQL API says, move money exactly once per
form, and are for staff only."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from billing.customers import MAX_SEARCH_LENGTH
from billing.db import Database
from schema.relay import encode_id
from tests.factories import (
    ADMIN_EMAIL,
    Party,
    admin_with_login,
    issue_invoice,
    make_reseller,
    new_party,
    pay_cash,
)
from tests.portal_support import (
    HTMX,
    Browser,
    csrf_token,
    customer_api,
    form_fields,
    parse,
    text_of,
)

pytest_plugins = ["tests.portal_fixtures"]

ADMIN_FIGURES = """
    balance { amount currency } availableFunds { amount currency } status
    invoices(first: 10) { number status total { amount currency } outstanding { amount currency } }
    payments(first: 10) { method amount { amount currency } reference }
    ledgerTransactions(first: 10) {
      totalCount edges { node { kind description amount { amount currency } } }
    }
"""


def _money(value: dict[str, str]) -> str:
    return f"{value['amount']} {value['currency']}"


def _path(party: Party) -> str:
    return f"/admin/customers/{encode_id('Customer', party.id)}"


def link_to(html: str, label: str) -> str:
    """The address of the link reading ``label``."""
    before = html.split(f">{label}</a>")[0]
    return before.rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")


async def _figures(admin: Browser, party: Party, selection: str = ADMIN_FIGURES) -> dict[str, Any]:
    """The customer as the API shows it to the administrator."""
    api = await customer_api(admin, ADMIN_EMAIL)
    data = await api.run(
        f"query($id: ID!) {{ customer(id: $id) {{ {selection} }} }}",
        {"id": encode_id("Customer", party.id)},
    )
    customer: dict[str, Any] = data["customer"]
    return customer


async def _history(db: Database, party: Party) -> None:
    """Two invoices (15.00 and 49.99 USD) and a 10.00 USD cash payment: balance 54.99 USD."""
    await issue_invoice(db, party, 1230, 270)
    await issue_invoice(db, party, 4999)
    async with db.transaction() as session:
        await pay_cash(session, party.customer, 1000)


# --- who may come in ----------------------------------------------------------------------


async def test_administrators_land_on_the_customer_search(admin: Browser) -> None:
    page = admin.page
    assert page is not None and "<h1>Customers</h1>" in page.text
    assert 'href="/admin" aria-current="page">Customers</a>' in page.text
    # The customer portal's address sends an administrator on to their own start page.
    response = await admin.open("/portal")
    assert response.url.path == "/admin"
    response = await admin.http.get("/portal", headers=HTMX)
    assert response.headers["HX-Redirect"] == "/admin"


async def test_a_customer_cannot_reach_the_administrators_pages(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    response = await signed_in.open("/admin")
    assert response.url.path == "/portal"  # their own start page, as signing in would
    own = _path(customer)
    response = await signed_in.open(own)
    assert response.status_code == 403 and "Not allowed" in response.text
    token = csrf_token((await signed_in.open("/portal")).text)
    for action in ("payments", "charges"):
        response = await signed_in.http.post(
            f"{own}/{action}",
            headers={**HTMX, "X-CSRF-Token": token},
            data={
                "method": "CASH",
                "amount": "5.00",
                "key": "k",
                "kind": "ONE_OFF",
                "accountId": encode_id("Account", customer.account.id),
                "description": "Free money",
            },
        )
        assert response.status_code == 403
    data = await (await customer_api(signed_in)).run(
        "query($id: ID!) { customer(id: $id) { balance { amount } payments { id } } }",
        {"id": encode_id("Customer", customer.id)},
    )
    assert data["customer"] == {"balance": {"amount": "0.00"}, "payments": []}


async def test_unknown_and_foreign_customers_are_404_pages(admin: Browser, db: Database) -> None:
    reseller = await _reseller_admin(db)
    theirs = await new_party(db, name="Someone Else's", email="else@example.com")
    for path in (
        "/admin/customers/garbage",
        f"/admin/customers/{encode_id('Customer', 999999)}",
        f"/admin/customers/{encode_id('Invoice', theirs.id)}",
        "/admin/no-such-page",
    ):
        response = await admin.open(path)
        assert response.status_code == 404, path
        assert "Page not found" in response.text
    # A reseller's administrator sees only the reseller's customers.
    await admin.open("/admin")
    await admin.submit("/portal/sign-out")
    response = await admin.sign_in(reseller)
    assert response.url.path == "/admin"
    response = await admin.open(_path(theirs))
    assert response.status_code == 404 and "Someone Else" not in response.text
    token = csrf_token((await admin.open("/admin")).text)
    response = await admin.http.post(
        f"{_path(theirs)}/payments",
        headers={**HTMX, "X-CSRF-Token": token},
        data={"method": "CASH", "amount": "5.00", "key": "k1"},
    )
    assert response.status_code == 404
    assert "Someone Else" not in text_of((await admin.open("/admin")).text, "customer-list")


async def _reseller_admin(db: Database) -> str:
    async with db.transaction() as session:
        reseller = await make_reseller(session, "Reseller R")
    return await admin_with_login(db, "reseller-admin@kassa.test", reseller_id=reseller.id)


# --- finding a customer -------------------------------------------------------------------


async def test_customers_are_found_by_name_email_and_status(admin: Browser, db: Database) -> None:
    await new_party(db, name="Ada Lovelace", email="ada@example.com")
    await new_party(db, name="Alan Turing", email="turing@machines.example")
    await new_party(db, name="Grace Hopper", email="grace@example.com", status="SUSPENDED")

    def listed(html: str) -> list[str]:
        rows = parse(html).texts
        return sorted(
            name
            for name in ("Ada Lovelace", "Alan Turing", "Grace Hopper")
            if name in "".join(rows.get("customer-list", []))
        )

    page = await admin.open("/admin")
    assert text_of(page.text, "customer-list-title") == "3 customers"
    assert listed((await admin.open("/admin?q=ada")).text) == ["Ada Lovelace"]
    assert listed((await admin.open("/admin?q=MACHINES")).text) == ["Alan Turing"]
    assert listed((await admin.open("/admin?status=SUSPENDED")).text) == ["Grace Hopper"]
    assert listed((await admin.open("/admin?q=example.com&status=ACTIVE")).text) == ["Ada Lovelace"]
    page = await admin.open("/admin?q=nobody")
    assert "No customers match." in page.text
    # As the administrator types, htmx asks for the list alone.
    fragment = await admin.http.get("/admin?q=grace", headers=HTMX)
    assert fragment.text.lstrip().startswith('<section id="customer-list"')
    assert listed(fragment.text) == ["Grace Hopper"]
    assert 'value="grace"' in (await admin.open("/admin?q=grace")).text  # the search stays


async def test_a_too_long_search_is_a_400_page_and_the_box_says_how_long(admin: Browser) -> None:
    page = await admin.open("/admin")
    assert f'maxlength="{MAX_SEARCH_LENGTH}"' in page.text
    too_long = await admin.open("/admin?q=" + "x" * (MAX_SEARCH_LENGTH + 1))
    assert too_long.status_code == 400
    assert f"Search for at most {MAX_SEARCH_LENGTH} characters." in too_long.text
    fragment = await admin.http.get("/admin?q=" + "x" * (MAX_SEARCH_LENGTH + 1), headers=HTMX)
    assert fragment.status_code == 400


async def test_the_search_pages_through_the_customers_connection(
    admin: Browser, db: Database
) -> None:
    for number in range(23):
        await new_party(db, name=f"Paged Customer {number:02d}", email=f"p{number}@example.com")
    first = await admin.open("/admin?q=paged")
    assert text_of(first.text, "customer-list-title") == "23 customers matching “paged”"
    assert first.text.count("Paged Customer") == 20
    more = link_to(first.text, "More customers")
    assert "q=paged" in more
    second = await admin.open(more)
    assert second.text.count("Paged Customer") == 3
    assert "Paged Customer 00" in second.text and "Paged Customer 22" not in second.text
    assert "More customers" not in second.text


# --- one customer -------------------------------------------------------------------------


async def test_the_customer_page_shows_the_api_figures(admin: Browser, db: Database) -> None:
    party = await new_party(
        db, name="Ada Lovelace", email="ada@example.com", phone="+44 20 7946 0001"
    )
    await _history(db, party)
    data = await _figures(admin, party)
    page = (await admin.open(_path(party))).text
    assert "<h1>Ada Lovelace</h1>" in page
    assert text_of(page, "balance") == _money(data["balance"]) == "54.99 USD"
    assert text_of(page, "available-funds") == _money(data["availableFunds"])
    assert text_of(page, "status") == "Active"
    assert "+44 20 7946 0001" in text_of(page, "profile")
    assert party.account.number in text_of(page, "accounts")
    invoices = text_of(page, "invoices")
    for invoice in data["invoices"]:
        assert invoice["number"] in invoices and _money(invoice["outstanding"]) in invoices
    assert _money(data["payments"][0]["amount"]) in text_of(page, "payments")
    ledger = text_of(page, "ledger")
    statement = data["ledgerTransactions"]
    assert text_of(page, "ledger-title") == f"Ledger transactions ({statement['totalCount']})"
    amounts = [edge["node"]["amount"] for edge in statement["edges"]]
    assert sum(Decimal(amount["amount"]) for amount in amounts) == Decimal("54.99")
    for amount in amounts:
        assert _money(amount) in ledger
    assert "-10.00 USD" in ledger  # the cash payment lowered the balance


async def test_the_ledger_pages_on_its_own(admin: Browser, db: Database) -> None:
    party = await new_party(db)
    await issue_invoice(db, party, *range(100, 1300, 100))  # twelve charges
    page = await admin.open(_path(party))
    assert text_of(page.text, "ledger-title") == "Ledger transactions (12)"
    assert page.text.count('data-kind="CHARGE"') == 10
    older = link_to(page.text, "Older transactions")
    fragment = await admin.http.get(older, headers=HTMX)
    assert fragment.text.lstrip().startswith('<section id="ledger-list"')
    assert fragment.text.count('data-kind="CHARGE"') == 2
    assert "Back to the newest" in fragment.text and "Older transactions" not in fragment.text
    whole = await admin.open(older)  # without htmx: the whole page, that list moved on
    assert whole.text.count('data-kind="CHARGE"') == 2 and "<h1>" in whole.text


# --- recording a payment ------------------------------------------------------------------


async def test_recording_a_payment_moves_the_balance_once_per_form(
    admin: Browser, db: Database
) -> None:
    party = await new_party(db)
    await _history(db, party)
    path = _path(party)
    page = await admin.open(path)
    fields = {
        **form_fields(page.text, f"{path}/payments"),
        "method": "WIRE",
        "amount": "20.50",
        "reference": "WIRE-778",
    }
    first = await admin.http.post(f"{path}/payments", data=fields)
    again = await admin.http.post(f"{path}/payments", data=fields)  # a double click
    for response in (first, again):
        assert response.status_code == 200
        assert text_of(response.text, "payment-recorded") == (
            "Recorded a payment of 20.50 USD by wire transfer, reference WIRE-778."
        )
        assert text_of(response.text, "balance") == "34.49 USD"
    data = await _figures(admin, party)
    assert data["balance"]["amount"] == "34.49"
    assert [(p["method"], p["amount"]["amount"], p["reference"]) for p in data["payments"]] == [
        ("WIRE", "20.50", "WIRE-778"),
        ("CASH", "10.00", None),
    ]
    kinds = [edge["node"]["kind"] for edge in data["ledgerTransactions"]["edges"]]
    assert kinds[0] == "PAYMENT" and kinds.count("PAYMENT") == 2
    # The next form drawn has a new key: a second payment is a new payment.
    assert form_fields(again.text, f"{path}/payments")["key"] != fields["key"]


async def test_recording_a_payment_under_htmx_redraws_the_customer(
    admin: Browser, db: Database
) -> None:
    party = await new_party(db)
    await _history(db, party)
    await admin.open(_path(party))
    response = await admin.submit(
        f"{_path(party)}/payments", {"method": "CHEQUE", "amount": "54.99"}, htmx=True
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="customer"')
    assert text_of(response.text, "balance") == "0.00 USD"
    assert "Cheque" in text_of(response.text, "payments")
    assert "Payment" in text_of(response.text, "ledger")
    assert (await _figures(admin, party, "balance { amount }"))["balance"]["amount"] == "0.00"


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        ("1.234", "USD amounts have at most 2 decimals."),
        ("ten", "'ten' is not a decimal amount."),
        ("0", "Amount must be greater than zero."),
        ("", "'' is not a decimal amount."),
    ],
)
async def test_a_bad_payment_amount_is_shown_beside_the_field(
    admin: Browser, db: Database, amount: str, error: str
) -> None:
    party = await new_party(db)
    await admin.open(_path(party))
    response = await admin.submit(
        f"{_path(party)}/payments", {"method": "CASH", "amount": amount, "reference": "R-1"}
    )
    assert response.status_code == 422
    assert text_of(response.text, "f-payment-amount-error") == error
    assert 'aria-invalid="true"' in response.text and 'value="R-1"' in response.text
    data = await _figures(admin, party, "balance { amount } payments { id }")
    assert data == {"balance": {"amount": "0.00"}, "payments": []}


async def test_a_method_the_form_never_offered_is_refused_beside_the_field(
    admin: Browser, db: Database
) -> None:
    party = await new_party(db)
    await admin.open(_path(party))
    response = await admin.submit(f"{_path(party)}/payments", {"method": "CARD", "amount": "5.00"})
    assert response.status_code == 422
    assert text_of(response.text, "f-payment-method-error") == "Choose one of the options."
    assert (await _figures(admin, party, "payments { id }"))["payments"] == []


# --- posting a charge ---------------------------------------------------------------------


async def test_posting_a_charge_raises_the_balance_once_per_form(
    admin: Browser, db: Database
) -> None:
    party = await new_party(db)
    path = _path(party)
    page = await admin.open(path)
    fields = {
        **form_fields(page.text, f"{path}/charges"),
        "kind": "USAGE",
        "description": "Roaming data 1.2 GB",
        "amount": "4.50",
    }
    assert fields["accountId"] == encode_id("Account", party.account.id)
    for _ in range(2):  # a double click
        response = await admin.http.post(f"{path}/charges", data=fields)
        assert response.status_code == 200
        assert text_of(response.text, "charge-posted") == (
            f"Posted 4.50 USD to {party.account.number}: Roaming data 1.2 GB."
        )
    data = await _figures(admin, party)
    assert data["balance"]["amount"] == "4.50"
    (entry,) = [edge["node"] for edge in data["ledgerTransactions"]["edges"]]
    assert entry == {
        "kind": "CHARGE",
        "description": "Roaming data 1.2 GB",
        "amount": {"amount": "4.50", "currency": "USD"},
    }
    assert "Roaming data 1.2 GB" in text_of(response.text, "ledger")


async def test_charge_errors_are_shown_beside_their_fields(admin: Browser, db: Database) -> None:
    party = await new_party(db)
    other = await new_party(db, name="Other")
    await admin.open(_path(party))
    response = await admin.submit(
        f"{_path(party)}/charges", {"description": "Late fee", "amount": "-3"}, htmx=True
    )
    assert response.status_code == 422
    assert response.text.lstrip().startswith('<div id="customer"')
    assert text_of(response.text, "f-charge-amount-error") == "Amount must be greater than zero."
    assert 'value="Late fee"' in response.text
    await admin.open(_path(party))
    response = await admin.submit(f"{_path(party)}/charges", {"description": " ", "amount": "3.00"})
    assert response.status_code == 422 and "f-charge-description-error" in response.text
    # Another customer's account, slipped into the form, is not one of this customer's.
    await admin.open(_path(party))
    response = await admin.submit(
        f"{_path(party)}/charges",
        {
            "description": "Misdirected",
            "amount": "3.00",
            "accountId": encode_id("Account", other.account.id),
        },
    )
    assert response.status_code == 422
    assert text_of(response.text, "f-charge-accountId-error") == "Choose one of the options."
    for someone in (party, other):
        assert (await _figures(admin, someone, "balance { amount }"))["balance"] == {
            "amount": "0.00"
        }


# --- forged requests ----------------------------------------------------------------------


async def test_a_post_without_the_csrf_token_is_refused(admin: Browser, db: Database) -> None:
    party = await new_party(db)
    path = _path(party)
    page = await admin.open(path)
    fields = form_fields(page.text, f"{path}/payments")
    forged = {**fields, "amount": "5.00", "csrf_token": "0" * 64}
    for data, headers in [
        ({k: v for k, v in forged.items() if k != "csrf_token"}, {}),
        (forged, {}),
        ({**forged, "csrf_token": ""}, {"X-CSRF-Token": "0" * 64}),
    ]:
        response = await admin.http.post(f"{path}/payments", data=data, headers=headers)
        assert response.status_code == 403
    assert (await _figures(admin, party, "payments { id }"))["payments"] == []
