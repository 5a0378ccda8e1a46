"""Each API value has one name on every page, money and dates read as the locale writes them,
and the dashboard's auto-payment sentence says what the customer's class really does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from billing.db import Database
from portals import rendering, words
from tests.factories import Party, issue_invoice
from tests.portal_support import Browser

pytest_plugins = ["tests.portal_fixtures"]

SCHEMA = Path(__file__).resolve().parent.parent / "schema" / "schema.graphql"
#: The enums whose values the portals show.
SHOWN = (
    "InvoiceStatus",
    "InvoiceKind",
    "DistributorInvoiceStatus",
    "PaymentStatus",
    "AttemptStatus",
    "PaymentChannel",
    "CustomerStatus",
    "AccountStatus",
    "ChargeKind",
    "BillingPeriod",
    "CardCharging",
    "LedgerTransactionKind",
    "StatusChangeCause",
    "RunKind",
    "Role",
)


def _values(enum: str) -> list[str]:
    body = re.search(rf"^enum {enum} {{(.*?)^}}", SCHEMA.read_text(), re.S | re.M)
    assert body, enum
    return re.findall(r"^\s+([A-Z_]+)\s*$", body.group(1), re.M)


@pytest.mark.parametrize("enum", SHOWN)
def test_every_value_a_page_shows_has_a_name(enum: str) -> None:
    assert [value for value in _values(enum) if value not in words.NAMES] == []


def test_an_invoice_closed_early_has_one_name() -> None:
    assert words.name("OUT_OF_TURN") == "Closed early"
    assert [kind for kind, title in words.INVOICE_KINDS if "closed early" in title.lower()] == [
        "outOfTurnInvoices"
    ]


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("30468.90", "NGN", "30,468.90 NGN"),
        ("-1234567.5", "USD", "-1,234,567.5 USD"),  # the API's digits, none added or lost
        ("1000000", "JPY", "1,000,000 JPY"),
        ("0.00", "EUR", "0.00 EUR"),
    ],
)
def test_money_keeps_the_digits_and_gains_separators(
    amount: str, currency: str, shown: str
) -> None:
    assert rendering.money({"amount": amount, "currency": currency}) == shown


def test_dates_and_instants_read_as_british_english() -> None:
    assert rendering.day("2026-12-02") == "2 Dec 2026"
    # An instant on the customer's calendar: late on the 1st in UTC is the 2nd in Lagos.
    assert rendering.moment("2026-12-01T23:30:00+00:00", "Africa/Lagos") == "2 Dec 2026 00:30"


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("+442079460001", "+44 207 946 0001"),
        ("+15551234567", "+1 555 123 4567"),
        ("+2348031234567", "+234 803 123 4567"),
        ("+1 555 1000", "+1 555 1000"),  # typed with spaces: kept as typed
        ("(020) 7946-0001", "(020) 7946-0001"),
    ],
)
def test_phone_numbers_are_grouped_to_be_read_out(typed: str, shown: str) -> None:
    assert rendering.phone(typed) == shown


def _customer(auto: bool, regular: str | None, early: str | None) -> dict[str, object]:
    cls = (
        None
        if regular is None
        else {
            "regularInvoices": {"cardCharging": regular},
            "outOfTurnInvoices": {"cardCharging": early},
        }
    )
    return {"autoPayment": auto, "customerClass": cls}


@pytest.mark.parametrize(
    ("customer", "sentence"),
    [
        (_customer(False, "ON_ISSUE", "ON_ISSUE"), "Auto-payment is off: you pay each invoice"),
        (_customer(True, None, None), "Auto-payment is on: but under your terms no invoice"),
        (
            _customer(True, "ON_DUE_DATE", "NEVER"),
            "Auto-payment is on: each regular invoice is charged to your default card on its "
            "due date; each invoice closed early you pay yourself.",
        ),
        (
            _customer(True, "NEVER", "ON_ISSUE"),
            "Auto-payment is on: each invoice closed early is charged to your default card "
            "when it is issued; each regular invoice you pay yourself.",
        ),
    ],
)
def test_the_auto_payment_sentence_follows_the_class(
    customer: dict[str, object], sentence: str
) -> None:
    assert words.auto_payment(customer).startswith(sentence)


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de_DE"),
        ("fr;q=0.2, pt-BR;q=0.9", "pt_BR"),  # by weight, not by order
        ("xx-YY, en-US;q=0.5", "en_US"),  # an unknown language is passed over
        ("de;q=0, en-IN", "en_IN"),  # q=0 means "not this one"
        ("*", rendering.LOCALE),
        ("", rendering.LOCALE),
        ("de;q=abc", rendering.LOCALE),  # malformed entries are skipped
        ("<script>,../../etc", rendering.LOCALE),
        ("de," * 300, rendering.LOCALE),  # too long to be a browser's
    ],
)
def test_the_reader_locale_follows_the_browser(header: str, locale: str) -> None:
    assert rendering.reader_locale(header) == locale


async def test_a_page_formats_money_and_dates_in_the_browsers_locale(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    await issue_invoice(db, customer, 3_046_890)
    british = (await signed_in.open("/portal/invoices")).text
    german = await signed_in.open("/portal/invoices", **{"Accept-Language": "de-DE,de;q=0.9"})
    assert "30,468.90 USD" in british and "30.468,90 USD" in german.text
    assert "Accept-Language" in german.headers["vary"]
