"""The cash terminal API (``/terminal/v1``, :mod:`billing.terminals`) end to end over the app:
signatures (wrong, missing, old, future, replayed), check, pay (idempotent on the network's
transaction id, another amount refused with nothing written), currencies, owners' reach,
settlement oldest invoice first, status, the daily reconciliation, the customer's and the
administrator's pages, and ``docs/terminals.md``'s curl and Python examples run against a
live server.  Every test ends with the ledger check (``tests/conftest.py``)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app import create_app
from billing import clock, terminals
from billing.db import Database
from billing.models import (
    Customer,
    CustomerStatus,
    InvoiceStatus,
    LedgerTransaction,
    Payment,
    PaymentChannel,
    PaymentStatus,
    ProcessorAccount,
    TerminalRequest,
)
from billing.payment_systems import IncomingRequest, MethodKind
from billing.processor_accounts import AccountInput, create_account, disable_account
from resolvers.rate_limits import SlidingWindow
from schema.relay import encode_id
from settings import Settings
from tests.bitcoin_chain import LiveServer, serving
from tests.factories import (
    T0,
    Login,
    Party,
    admin_viewer,
    admin_with_login,
    balance_of,
    freeze_clock,
    invoices_of,
    issue_invoice,
    make_reseller,
    new_party,
)
from tests.graphql_support import signed_in_api, table_contents
from tests.portal_support import Browser
from tests.terminal_docs import DOC, doc_block, documented_pay

pytest_plugins = ["tests.graphql_fixtures", "tests.portal_fixtures"]

SECRET = "kiosk-secret-for-tests-0123456789"


async def make_network(
    db: Database,
    reseller_id: int | None = None,
    name: str = "City Kiosks",
    secret: str = SECRET,
    minimums: tuple[tuple[str, str], ...] = (("USD", "1.00"),),
) -> int:
    """A cash terminal network: a processor account of the provider or of a reseller."""
    async with db.transaction() as session:
        made = await create_account(
            session,
            admin_viewer(),
            AccountInput(
                name=name,
                processor="cash_terminal",
                credentials={"signing_secret": secret},
                minimums=list(minimums),
            ),
            reseller_id,
        )
    return made.id


@pytest.fixture
async def network(db: Database) -> int:
    return await make_network(db)


_last_stamp = [0]


def _next_stamp() -> int:
    """Now, in seconds — but never a second already used: two identical requests within one
    second would carry one signature, and kassa refuses the second as a replay."""
    _last_stamp[0] = max(int(time.time()), _last_stamp[0] + 1)
    return _last_stamp[0]


def signed(
    network: int | str,
    operation: str,
    payload: dict[str, Any] | bytes,
    *,
    secret: str = SECRET,
    at: float | None = None,
) -> tuple[str, bytes, dict[str, str]]:
    """A request as a network sends it: path, body and signed headers."""
    path = f"/terminal/v1/{operation}"
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    stamp = str(int(at) if at is not None else _next_stamp())
    return (
        path,
        body,
        {
            "Content-Type": "application/json",
            "X-Terminal-Network": str(network),
            "X-Terminal-Timestamp": stamp,
            "X-Terminal-Signature": terminals.sign(secret, "POST", path, stamp, body),
        },
    )


async def send(
    http: httpx.AsyncClient, network: int, operation: str, payload: dict[str, Any], **how: Any
) -> httpx.Response:
    path, body, headers = signed(network, operation, payload, **how)
    return await http.post(path, content=body, headers=headers)


def payment_of(party: Party, txn: str, amount: str = "25.00", **fields: str) -> dict[str, Any]:
    return {
        "account": party.account.number,
        "amount": amount,
        "currency": "USD",
        "transaction_id": txn,
        "transaction_time": "2026-03-16T11:58:00+00:00",
        **fields,
    }


async def terminal_payments(db: Database) -> list[Payment]:
    async with db.session() as session:
        rows = await session.scalars(
            select(Payment).where(Payment.method == PaymentChannel.TERMINAL).order_by(Payment.id)
        )
        return list(rows.all())


# --- check ----------------------------------------------------------------------------------


async def test_check_tells_the_name_currency_and_amount_due_and_nothing_else(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    party = await new_party(db, "555-0100", email="ada@example.com", phone="+15550100")
    await issue_invoice(db, party, 4000)
    expected = {
        "exists": True,
        "customer": str(party.id),
        "display_name": "Ada Lovelace",
        "currency": "USD",
        "amount_due": "40.00",
    }
    by_account = await send(http, network, "check", {"account": "555-0100"})
    assert (by_account.status_code, by_account.json()) == (200, expected)
    by_id = await send(http, network, "check", {"customer": str(party.id)})
    assert (by_id.status_code, by_id.json()) == (200, expected)


async def test_an_unknown_or_closed_customer_only_does_not_exist(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    party = await new_party(db, "555-0100")
    for asked in ({"account": "555-0199"}, {"customer": "999"}, {"customer": "12abc"}):
        answer = await send(http, network, "check", asked)
        assert (answer.status_code, answer.json()) == (200, {"exists": False})
    async with db.transaction() as session:
        closed = await session.get(Customer, party.id)
        assert closed is not None
        closed.status = CustomerStatus.CLOSED
    answer = await send(http, network, "check", {"account": "555-0100"})
    assert answer.json() == {"exists": False}
    both = await send(http, network, "check", {"account": "555-0100", "customer": "1"})
    assert (both.status_code, both.json()["error"]["code"]) == (422, "INVALID_CUSTOMER")


# --- signatures -----------------------------------------------------------------------------


async def test_bad_signatures_are_refused_and_write_nothing(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    party = await new_party(db, "555-0100")
    before = await table_contents(db)
    now = time.time()
    payload = payment_of(party, "T-1")
    cases: list[tuple[str, int, str, dict[str, str], bytes | None]] = []

    path, body, headers = signed(network, "pay", payload, secret="not-the-secret")
    cases.append(("wrong secret", 401, "BAD_SIGNATURE", headers, None))
    path, body, headers = signed(network, "pay", payload)
    cases.append(("body changed", 401, "BAD_SIGNATURE", headers, body.replace(b"25.00", b"95.00")))
    cases.append(
        (
            "unsigned",
            401,
            "MISSING_SIGNATURE",
            {k: v for k, v in headers.items() if k != "X-Terminal-Signature"},
            None,
        )
    )
    cases.append(
        ("no timestamp", 401, "MISSING_SIGNATURE", {**headers, "X-Terminal-Timestamp": ""}, None)
    )
    _, _, old = signed(network, "pay", payload, at=now - 310)
    cases.append(("six minutes old", 401, "STALE_TIMESTAMP", old, None))
    _, _, future = signed(network, "pay", payload, at=now + 310)
    cases.append(("six minutes ahead", 401, "STALE_TIMESTAMP", future, None))
    _, _, unknown = signed(network + 100, "pay", payload)
    cases.append(("unknown network", 404, "UNKNOWN_NETWORK", unknown, None))
    cases.append(
        ("no network", 404, "UNKNOWN_NETWORK", {**headers, "X-Terminal-Network": "x"}, None)
    )
    for why, status, code, sent_headers, sent_body in cases:
        answer = await http.post(path, content=sent_body or body, headers=sent_headers)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), why
    assert await table_contents(db) == before

    # Four and a half minutes either way is inside the window.
    for at, txn in ((now - 280, "T-2"), (now + 280, "T-3")):
        answer = await send(http, network, "pay", payment_of(party, txn), at=at)
        assert answer.status_code == 200, answer.text


async def test_another_kind_of_processor_account_is_no_network(
    db: Database, http: httpx.AsyncClient
) -> None:
    async with db.transaction() as session:
        card_account = await create_account(
            session,
            admin_viewer(),
            AccountInput(
                name="Cards",
                processor="simulator",
                minimums=[("USD", "1.00")],
                method_kinds=[MethodKind.VISA],
            ),
        )
    answer = await send(http, card_account.id, "check", {"account": "555-0100"})
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "UNKNOWN_NETWORK")


async def test_a_replayed_request_is_refused_and_pays_once(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    party = await new_party(db, "555-0100")
    path, body, headers = signed(network, "pay", payment_of(party, "T-1"))
    first = await http.post(path, content=body, headers=headers)
    assert first.status_code == 200, first.text
    again = await http.post(path, content=body, headers=headers)
    assert (again.status_code, again.json()["error"]["code"]) == (401, "REPLAYED")
    # A check's signature is spent the same way.
    path, body, headers = signed(network, "check", {"account": "555-0100"})
    assert (await http.post(path, content=body, headers=headers)).status_code == 200
    assert (await http.post(path, content=body, headers=headers)).status_code == 401
    assert len(await terminal_payments(db)) == 1


async def test_used_signatures_are_pruned_once_out_of_the_window(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    await new_party(db, "555-0100")
    await send(http, network, "check", {"account": "555-0100"}, at=time.time() - 200)
    async with db.transaction() as session:
        await terminals.authenticate(
            session,
            _incoming(*signed(network, "check", {"account": "555-0100"})),
            clock.wall_now() + timedelta(seconds=150),
        )
    async with db.session() as session:
        kept = (await session.scalars(select(TerminalRequest.id))).all()
    assert len(kept) == 1  # the old one went when the new one came


def _incoming(path: str, body: bytes, headers: dict[str, str]) -> IncomingRequest:
    return IncomingRequest("POST", path, {k.lower(): v for k, v in headers.items()}, body)


async def test_an_oversized_body_is_refused_unread(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    payload = {"account": "555-0100", "padding": "x" * terminals.MAX_BODY}
    answer = await send(http, network, "check", payload)
    assert (answer.status_code, answer.json()["error"]["code"]) == (413, "BODY_TOO_LARGE")


# --- pay ------------------------------------------------------------------------------------


async def test_pay_lowers_the_balance_and_settles_invoices_oldest_first(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    party = await new_party(db, "555-0100")
    older = await issue_invoice(db, party, 3000)
    await freeze_clock(db, T0 + timedelta(days=1))
    newer = await issue_invoice(db, party, 2000, service_at=T0)
    answer = await send(http, network, "pay", payment_of(party, "T-1001", "40.00"))
    assert answer.status_code == 200, answer.text
    paid = answer.json()
    assert paid == {
        "status": "CREDITED",
        "transaction_id": "T-1001",
        "transaction_time": "2026-03-16T11:58:00+00:00",
        "payment_id": paid["payment_id"],
        "customer": str(party.id),
        "amount": "40.00",
        "currency": "USD",
        "credited_at": (T0 + timedelta(days=1)).isoformat(),
        "duplicate": False,
    }
    async with db.session() as session:
        assert await balance_of(session, party.id) == 1000
        payment = await session.get(Payment, int(paid["payment_id"]))
        assert payment is not None
        assert (payment.method, payment.status, payment.processor_account_id) == (
            PaymentChannel.TERMINAL,
            PaymentStatus.COMPLETED,
            network,
        )
        assert payment.reference == "City Kiosks, txn T-1001"
        booked = await session.get(LedgerTransaction, payment.transaction_id)
        assert booked is not None
        assert booked.description == "Cash terminal payment (City Kiosks, txn T-1001)"
    statuses = {i.id: (i.status, i.amount_paid) for i in await invoices_of(db, party.id)}
    assert statuses == {
        older.id: (InvoiceStatus.PAID, 3000),
        newer.id: (InvoiceStatus.PARTIALLY_PAID, 1000),
    }
    check = await send(http, network, "check", {"account": "555-0100"})
    assert check.json()["amount_due"] == "10.00"


async def test_pay_is_idempotent_on_the_transaction_id(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    party = await new_party(db, "555-0100")
    first = await send(http, network, "pay", payment_of(party, "T-1"))
    again = await send(http, network, "pay", payment_of(party, "T-1"))
    assert again.status_code == 200
    assert again.json() == {**first.json(), "duplicate": True}
    someone_else = await new_party(db, "555-0177")
    before = await table_contents(db)
    for other in (
        payment_of(party, "T-1", "26.00"),
        payment_of(someone_else, "T-1"),
        payment_of(party, "T-1", currency="EUR"),
    ):
        refused = await send(http, network, "pay", other)
        assert (refused.status_code, refused.json()["error"]["code"]) == (
            409,
            "TRANSACTION_ID_REUSED",
        ), other
        assert await table_contents(db) == before
    async with db.session() as session:
        assert await balance_of(session, party.id) == -2500
    assert len(await terminal_payments(db)) == 1


async def test_currencies_amounts_and_times_are_checked_before_anything_is_written(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    party = await new_party(db, "555-0100")
    euro = await new_party(db, "555-0200", currency="EUR")
    before = await table_contents(db)
    cases = [
        (payment_of(party, "T-1", currency="EUR"), "CURRENCY_MISMATCH"),
        (payment_of(euro, "T-2", currency="EUR"), "CURRENCY_NOT_ACCEPTED"),
        (payment_of(party, "T-3", "0.50"), "AMOUNT_BELOW_MINIMUM"),
        (payment_of(party, "T-4", "1.005"), "TOO_MANY_DECIMALS"),
        (payment_of(party, "T-4", "ten"), "INVALID_AMOUNT"),
        (payment_of(party, "T-5", "0"), "AMOUNT_NOT_POSITIVE"),
        (payment_of(party, "T-6", currency="XYZ"), "INVALID_CURRENCY"),
        (payment_of(party, "T 7"), "INVALID_TRANSACTION_ID"),
        (payment_of(party, "T-8", transaction_time="2026-03-16T11:58:00"), "INVALID_TIME"),
        (payment_of(party, "T-9", transaction_time="2099-01-01T00:00:00Z"), "INVALID_TIME"),
        (payment_of(party, "T-10", account="555-0999"), "UNKNOWN_CUSTOMER"),
    ]
    for payload, code in cases:
        answer = await send(http, network, "pay", payload)
        assert (answer.status_code, answer.json()["error"]["code"]) == (422, code), payload
    path, _, headers = signed(network, "pay", b"not json")
    answer = await http.post(path, content=b"not json", headers=headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (422, "INVALID_JSON")
    assert await table_contents(db) == before


async def test_a_disabled_network_takes_no_payment_but_still_answers_status(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    party = await new_party(db, "555-0100")
    await send(http, network, "pay", payment_of(party, "T-1"))
    async with db.transaction() as session:
        await disable_account(session, admin_viewer(), network)
    refused = await send(http, network, "pay", payment_of(party, "T-2"))
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "NETWORK_DISABLED")
    status = await send(http, network, "status", {"transaction_id": "T-1"})
    assert status.json()["status"] == "CREDITED"


# --- whom a network reaches -----------------------------------------------------------------


async def test_a_resellers_network_reaches_only_that_resellers_customers(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    async with db.transaction() as session:
        mine, theirs = await make_reseller(session, "Mine"), await make_reseller(session, "Theirs")
    my_network = await make_network(db, mine.id, "Mine's kiosks", "mine-secret")
    providers = await new_party(db, "555-0001")
    my_customer = await new_party(db, "555-0002", reseller_id=mine.id)
    their_customer = await new_party(db, "555-0003", reseller_id=theirs.id)
    for other in (providers, their_customer):
        for asked in ({"account": other.account.number}, {"customer": str(other.id)}):
            seen = await send(http, my_network, "check", asked, secret="mine-secret")
            assert seen.json() == {"exists": False}
        refused = await send(
            http, my_network, "pay", payment_of(other, f"T-{other.id}"), secret="mine-secret"
        )
        assert refused.json()["error"]["code"] == "UNKNOWN_CUSTOMER"
    own = await send(http, my_network, "pay", payment_of(my_customer, "T-1"), secret="mine-secret")
    assert own.status_code == 200
    # The provider's network reaches a reseller's customers only where the reseller allows
    # its customers the provider's payment systems.
    assert (await send(http, network, "check", {"account": "555-0002"})).json()["exists"] is False
    async with db.transaction() as session:
        allowing = await session.get(type(mine), mine.id)
        assert allowing is not None
        allowing.processor_fallback = True
    assert (await send(http, network, "check", {"account": "555-0002"})).json()["exists"] is True
    assert (await send(http, network, "check", {"account": "555-0003"})).json()["exists"] is False


# --- status and reconciliation --------------------------------------------------------------


async def test_status_tells_what_kassa_did_with_a_transaction(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    party = await new_party(db, "555-0100")
    unknown = await send(http, network, "status", {"transaction_id": "T-1"})
    assert unknown.json() == {"status": "UNKNOWN", "transaction_id": "T-1"}
    paid = (await send(http, network, "pay", payment_of(party, "T-1"))).json()
    known = await send(http, network, "status", {"transaction_id": "T-1"})
    assert known.json() == {k: v for k, v in paid.items() if k != "duplicate"}
    # Another network's transaction of the same id is its own business.
    other = await make_network(db, name="Other kiosks", secret="other-secret")
    theirs = await send(http, other, "status", {"transaction_id": "T-1"}, secret="other-secret")
    assert theirs.json()["status"] == "UNKNOWN"


async def test_the_reconciliation_lists_exactly_what_was_credited_that_day(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    party = await new_party(db, "555-0100")
    other = await make_network(db, name="Other kiosks", secret="other-secret")
    await send(http, network, "pay", payment_of(party, "T-1", "10.00"))
    await send(http, network, "pay", payment_of(party, "T-1", "10.00"))  # a duplicate
    await send(http, network, "pay", payment_of(party, "T-2", "5.50"))
    await send(http, network, "pay", payment_of(party, "T-3", "99.00", currency="EUR"))  # refused
    await send(http, other, "pay", payment_of(party, "T-9", "7.00"), secret="other-secret")
    await freeze_clock(db, T0 + timedelta(days=1))
    await send(http, network, "pay", payment_of(party, "T-4", "3.00"))

    answer = await send(http, network, "reconciliation", {"date": "2026-03-16"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["transaction_id"], r["amount"], r["currency"], r["status"]) for r in rows] == [
        ("T-1", "10.00", "USD", "CREDITED"),
        ("T-2", "5.50", "USD", "CREDITED"),
    ]
    assert {r["customer"] for r in rows} == {str(party.id)}
    assert {r["credited_at"] for r in rows} == {T0.isoformat()}
    assert {r["transaction_time"] for r in rows} == {"2026-03-16T11:58:00+00:00"}
    async with db.session() as session:
        ids = (
            await session.scalars(
                select(Payment.id)
                .where(Payment.processor_account_id == network, Payment.received_at == T0)
                .order_by(Payment.id)
            )
        ).all()
    assert [r["payment_id"] for r in rows] == [str(i) for i in ids]
    next_day = await send(http, network, "reconciliation", {"date": "2026-03-17"})
    assert [r["transaction_id"] for r in csv.DictReader(io.StringIO(next_day.text))] == ["T-4"]
    bad = await send(http, network, "reconciliation", {"date": "16/03/2026"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "INVALID_DATE")

    # Administrators download the same file.
    async with db.session() as session:
        staff = await terminals.reconciliation_for_staff(
            session, admin_viewer(), network, T0.date()
        )
    assert staff == answer.text


# --- the documentation's examples, against a live server ------------------------------------


@pytest.fixture
def live(settings: Settings, db: Database) -> Iterator[LiveServer]:
    """The app on a loopback port, with a database of its own opened by its lifespan."""
    with serving(create_app(settings)) as server:
        yield server


async def test_the_documented_python_example_signs_as_kassa_checks(
    db: Database, live: LiveServer, network: int
) -> None:
    party = await new_party(db, "555-0100")
    example: dict[str, Any] = {"__name__": "terminal_example"}
    exec(compile(doc_block("python", "def call("), str(DOC), "exec"), example)
    call = example["call"]
    status, text = call(live.url, str(network), SECRET, "check", {"account": "555-0100"})
    assert (status, json.loads(text)["exists"]) == (200, True)
    status, text = call(live.url, str(network), SECRET, "pay", payment_of(party, "T-1"))
    assert (status, json.loads(text)["status"]) == (200, "CREDITED")
    status, text = call(live.url, str(network), "wrong", "check", {"account": "555-0100"})
    assert status == 401


async def test_the_documented_curl_command_pays_at_a_terminal(
    db: Database, live: LiveServer, network: int
) -> None:
    party = await new_party(db, "555-0100")
    await issue_invoice(db, party, 2500)
    answer = await documented_pay(live.url, network, SECRET)
    assert (answer["status"], answer["amount"], answer["transaction_id"]) == (
        "CREDITED",
        "25.00",
        "T-1001",
    )
    async with db.session() as session:
        assert await balance_of(session, party.id) == 0
    assert [i.status for i in await invoices_of(db, party.id)] == [InvoiceStatus.PAID]
    async with db.session() as session:
        account = await session.get(ProcessorAccount, network)
        assert account is not None and account.processor == "cash_terminal"


# --- what people see ------------------------------------------------------------------------


async def test_a_terminal_payment_reads_well_on_the_customers_and_the_administrators_pages(
    db: Database, browser: Browser, customer: Login, network: int
) -> None:
    async with db.transaction() as session:
        account = await session.get(ProcessorAccount, network)
        assert account is not None
        await terminals.pay(session, account, payment_of(customer, "T-1001"), clock.wall_now())
    shown = "Cash terminal, City Kiosks, txn T-1001"
    await browser.sign_in()
    page = await browser.open("/portal/payments")
    assert shown in page.text
    await browser.submit("/portal/sign-out")
    admin_page = await browser.sign_in(await admin_with_login(db))
    assert admin_page.url.path == "/admin"
    page = await browser.open(f"/admin/customers/{encode_id('Customer', customer.id)}")
    assert shown in page.text


async def test_administrators_download_a_networks_reconciliation(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    party = await new_party(db, "555-0100")
    await send(http, network, "pay", payment_of(party, "T-1"))
    networks = await make_network(db, (reseller := await _reseller(db)), "Theirs", "s2")
    query = "query($id: ID!, $date: Date!) { terminalReconciliation(accountId: $id, date: $date) }"
    admin = await signed_in_api(http, await admin_with_login(db))
    day = {"id": encode_id("ProcessorAccount", network), "date": "2026-03-16"}
    csv_text = (await admin.run(query, day))["terminalReconciliation"]
    assert csv_text == (await send(http, network, "reconciliation", {"date": "2026-03-16"})).text
    # A reseller's administrator reaches only the reseller's own networks.
    theirs = await signed_in_api(http, await admin_with_login(db, "r@x.test", reseller))
    assert (await theirs.run(query, day))["terminalReconciliation"] is None
    own = {"id": encode_id("ProcessorAccount", networks), "date": "2026-03-16"}
    assert (await theirs.run(query, own))["terminalReconciliation"] == (
        ",".join(terminals.CSV_COLUMNS) + "\n"
    )


async def _reseller(db: Database) -> int:
    async with db.transaction() as session:
        return (await make_reseller(session, "Reseller")).id


async def test_the_payment_systems_page_links_each_network_to_its_reconciliation(
    db: Database, browser: Browser, network: int
) -> None:
    party = await new_party(db, "555-0100")
    async with db.transaction() as session:
        account = await session.get(ProcessorAccount, network)
        assert account is not None
        await terminals.pay(session, account, payment_of(party, "T-1"), clock.wall_now())
    await browser.sign_in(await admin_with_login(db))
    page = await browser.open("/admin/payment-systems")
    action = f"/admin/payment-systems/{encode_id('ProcessorAccount', network)}/reconciliation"
    assert f'action="{action}"' in page.text
    download = await browser.open(f"{action}?date=2026-03-16")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [(r["transaction_id"], r["amount"]) for r in rows] == [("T-1", "25.00")]
    assert (await browser.open(f"{action}?date=yesterday")).status_code == 400
    elsewhere = encode_id("ProcessorAccount", network + 1)
    assert (
        await browser.open(f"/admin/payment-systems/{elsewhere}/reconciliation")
    ).status_code == 404


async def test_an_administrator_sets_up_a_network_as_documented(
    db: Database, http: httpx.AsyncClient
) -> None:
    party = await new_party(db, "555-0100")
    mutation = doc_block("graphql", "createProcessorAccount").replace("…", "doc-secret")
    admin = await signed_in_api(http, await admin_with_login(db))
    payload = (await admin.run(mutation))["createProcessorAccount"]
    assert payload["errors"] == []
    network_id = payload["processorAccount"]["id"]
    path, body, headers = signed(0, "pay", payment_of(party, "T-1"), secret="doc-secret")
    answer = await http.post(
        path, content=body, headers={**headers, "X-Terminal-Network": network_id}
    )
    assert (answer.status_code, answer.json()["status"]) == (200, "CREDITED")


async def test_deliveries_of_one_transaction_at_once_book_it_once(
    db: Database, http: httpx.AsyncClient, network: int
) -> None:
    party = await new_party(db, "555-0100")
    other = await new_party(db, "555-0200")
    same = await asyncio.gather(
        *(send(http, network, "pay", payment_of(party, "T-1")) for _ in range(3))
    )
    assert {answer.status_code for answer in same} == {200}
    assert len({answer.json()["payment_id"] for answer in same}) == 1
    assert sorted(answer.json()["duplicate"] for answer in same) == [False, True, True]
    # One transaction id for two customers at once: one is booked, the other refused.
    racing = await asyncio.gather(
        send(http, network, "pay", payment_of(party, "T-2")),
        send(http, network, "pay", payment_of(other, "T-2")),
    )
    assert sorted(answer.status_code for answer in racing) == [200, 409]
    assert len(await terminal_payments(db)) == 2


# --- rate limit -----------------------------------------------------------------------------


async def test_a_network_over_its_rate_limit_is_told_to_wait_and_nothing_is_written(
    db: Database, settings: Settings, network: int
) -> None:
    """Three signed requests a minute (``KASSA_TERMINAL_RATE_LIMIT=3``): the fourth is 429
    with Retry-After and is not run; requests that do not verify spend nothing of the
    network's allowance; another network has its own."""
    party = await new_party(db, "555-0100")
    other = await make_network(db, name="Metro Kiosks")
    app = create_app(replace(settings, terminal_rate_limit=3), database=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kassa.test") as http:
        for _ in range(5):  # someone naming the network without its secret
            forged = await send(http, network, "check", {"account": "555-0100"}, secret="x" * 32)
            assert forged.status_code == 401
        for _ in range(3):
            assert (await send(http, network, "check", {"account": "555-0100"})).status_code == 200
        refused = await send(http, network, "pay", payment_of(party, "T-429"))
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "RATE_LIMITED"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert (await send(http, other, "check", {"account": "555-0100"})).status_code == 200
    assert await terminal_payments(db) == []


def test_the_window_lets_requests_in_again_as_old_ones_age_out() -> None:
    now = [1000.0]
    window = SlidingWindow(clock=lambda: now[0])
    assert [window.admit("a", 2) for _ in range(2)] == [0, 0]
    now[0] += 15
    assert window.admit("a", 2) == 45  # the first ages out 45 s from now
    assert window.admit("b", 2) == 0
    now[0] += 45
    assert window.admit("a", 2) == 0
    assert all(window.admit("c", 0) == 0 for _ in range(500))  # 0: no limit
