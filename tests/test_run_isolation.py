"""One customer never stops a bill run or a collection run (issue 8, item 2).

The attack: several customers are due in one run and one of them fails — a domain error (a
balance out of range), a bad value in the database (a time zone that does not exist), a bug
(an exception injected for one customer id).  The others are invoiced and charged; each
failing customer is skipped and recorded with its error, visible to the administrators who
see that customer (GraphQL and the admin pages) and to no one else, and the next run after
the cause is gone gets it through and marks it resolved.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from billing import card_charges, invoices, jobs, run_failures
from billing.billrun import BILL_RUN_JOB
from billing.collection_run import COLLECTION_RUN_JOB, RECONCILE_AFTER
from billing.db import Database
from billing.errors import UserError
from billing.models import (
    AttemptStatus,
    CardCharging,
    CollectionAttempt,
    Customer,
    InvoiceStatus,
    Job,
    JobStatus,
    RunFailure,
    RunKind,
)
from processors.simulator import SimulatorProcessor
from schema.relay import encode_id
from tests.factories import (
    T0,
    Party,
    admin_with_login,
    customer_class,
    customer_with_login,
    freeze_clock,
    invoices_of,
    issue_invoice,
    make_reseller,
    new_party,
    post_usage,
    store_card,
)
from tests.graphql_support import Api, signed_in_api
from tests.portal_support import Browser, text_of

pytest_plugins = ["tests.graphql_fixtures", "tests.portal_fixtures"]

UTC_APRIL_1 = datetime(2026, 4, 1, tzinfo=UTC)
#: A card number that must never reach a run failure, though a bug's message quotes it.
PAN = "4242424242424242"

FAILURES = """
query($customerId: ID, $all: Boolean!) {
  runFailures(first: 50, customerId: $customerId, includeResolved: $all) {
    totalCount
    edges { node {
      id kind code message attempts firstSeenAt lastSeenAt nextRetryAt resolvedAt
      customer { id name } invoice { id number }
    } }
  }
}
"""


def _failing_for(
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
    name: str,
    errors: dict[int, Callable[[], Exception]],
    customer_of: Callable[..., Sequence[int]],
) -> None:
    """Make ``module.name`` raise ``errors[customer id]()`` whenever it works on one of
    those customers (``customer_of`` names the customers a call is about), as a bug would."""
    original = getattr(module, name)

    async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs)
        return await original(*args, **kwargs)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs)
        return original(*args, **kwargs)

    def check(*args: Any, **kwargs: Any) -> None:
        for customer_id in customer_of(*args, **kwargs):
            if customer_id in errors:
                raise errors[customer_id]()

    monkeypatch.setattr(
        module, name, async_wrapper if inspect.iscoroutinefunction(original) else wrapper
    )


def _card_payments_completed() -> float:
    """The metric ``kassa_payments_total`` of completed card payments, as /metrics has it."""
    value = REGISTRY.get_sample_value(
        "kassa_payments_total", {"channel": "CARD", "outcome": "completed"}
    )
    return value or 0.0


async def _failures(db: Database) -> dict[int, RunFailure]:
    async with db.session() as session:
        rows = await session.scalars(select(RunFailure))
        return {row.customer_id: row for row in rows if row.customer_id is not None}


async def _next_bill_at(db: Database, customer_id: int) -> datetime:
    async with db.session() as session:
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        return customer.next_bill_at


async def _pending_job(db: Database, kind: str) -> datetime | None:
    async with db.session() as session:
        return await session.scalar(
            select(Job.due_at).where(Job.kind == kind, Job.status == JobStatus.PENDING)
        )


async def _list(api: Api, customer_id: str | None = None, all: bool = False) -> dict[str, Any]:
    connection: dict[str, Any] = (await api.run(FAILURES, {"customerId": customer_id, "all": all}))[
        "runFailures"
    ]
    return connection


# --- the bill run -----------------------------------------------------------------------------


async def test_a_bill_run_invoices_everyone_but_the_failing_customers_and_retries_them(
    db: Database,
    http: httpx.AsyncClient,
    admin: Browser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await freeze_clock(db)
    async with db.transaction() as session:
        reseller_a = (await make_reseller(session, "Reseller A")).id
        reseller_b = (await make_reseller(session, "Reseller B")).id
    good = await new_party(db, name="Good Provider")
    bad_zone = await new_party(db, name="Bad Zone")
    out_of_range = await new_party(db, name="Out Of Range")
    buggy = await new_party(db, name="Buggy Reseller Customer", reseller_id=reseller_a)
    neighbour = await new_party(db, name="Good Reseller Customer", reseller_id=reseller_a)
    everyone = (good, bad_zone, out_of_range, buggy, neighbour)
    for party in everyone:
        await post_usage(db, party, 1500, T0)
    async with db.transaction() as session:  # a bad value: a zone that does not exist
        await session.execute(
            update(Customer).where(Customer.id == bad_zone.id).values(time_zone="Mars/Olympus")
        )
    _failing_for(
        monkeypatch,
        invoices,
        "_draft_customer",
        {
            out_of_range.id: lambda: UserError(
                "BALANCE_OUT_OF_RANGE", "this would take a balance out of range", "amount"
            ),
            buggy.id: lambda: RuntimeError(f"bug while invoicing card {PAN}"),
        },
        lambda closings, *rest: [closing.billee.id for closing in closings],
    )

    await jobs.advance_clock(db, UTC_APRIL_1)

    for party in (good, neighbour):  # invoiced and moved on to April
        [invoice] = await invoices_of(db, party.id)
        assert (invoice.total, invoice.period_end) == (1500, UTC_APRIL_1.date())
        assert await _next_bill_at(db, party.id) == datetime(2026, 5, 1, tzinfo=UTC)
    for party in (bad_zone, out_of_range, buggy):  # skipped: nothing invoiced, still due
        assert await invoices_of(db, party.id) == []
        assert await _next_bill_at(db, party.id) == UTC_APRIL_1
    failures = await _failures(db)
    assert {customer: (f.kind, f.code, f.attempts) for customer, f in failures.items()} == {
        bad_zone.id: (RunKind.BILL_RUN, "INVALID_TIME_ZONE", 1),
        out_of_range.id: (RunKind.BILL_RUN, "BALANCE_OUT_OF_RANGE", 1),
        buggy.id: (RunKind.BILL_RUN, "INTERNAL_ERROR", 1),
    }
    assert "RuntimeError" in failures[buggy.id].message and PAN not in failures[buggy.id].message
    assert failures[out_of_range.id].message == "this would take a balance out of range"
    retry_at = UTC_APRIL_1 + run_failures.RETRY_FIRST
    assert {f.next_retry_at for f in failures.values()} == {retry_at}
    assert await _pending_job(db, BILL_RUN_JOB) == retry_at  # the run wakes for the retry

    # Visible to the administrators who see the customer, and to no one else.
    provider = await signed_in_api(http, await admin_with_login(db, "root@isolation.example"))
    listed = await _list(provider)
    assert listed["totalCount"] == 3
    names = {edge["node"]["customer"]["name"] for edge in listed["edges"]}
    assert names == {"Bad Zone", "Out Of Range", "Buggy Reseller Customer"}
    staff_a = await signed_in_api(
        http, await admin_with_login(db, "a@isolation.example", reseller_a)
    )
    [only] = (await _list(staff_a))["edges"]
    assert only["node"]["customer"]["name"] == "Buggy Reseller Customer"
    assert only["node"]["code"] == "INTERNAL_ERROR" and only["node"]["invoice"] is None
    staff_b = await signed_in_api(
        http, await admin_with_login(db, "b@isolation.example", reseller_b)
    )
    assert (await _list(staff_b))["totalCount"] == 0
    assert (await _list(staff_b, encode_id("Customer", buggy.id)))["totalCount"] == 0
    login = await customer_with_login(db, "someone@isolation.example")
    refused = await (await signed_in_api(http, login.email)).post(FAILURES, {"all": False})
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    # On the administrators' pages: the list, and the customer's own page.
    page = await admin.open("/admin/run-failures")
    assert page.status_code == 200
    problems = text_of(page.text, "run-failure-list")
    for words in ("Bad Zone", "Out Of Range", "Buggy Reseller Customer", "BALANCE_OUT_OF_RANGE"):
        assert words in problems
    assert PAN not in page.text and "Good Provider" not in problems
    customer_page = await admin.open(f"/admin/customers/{encode_id('Customer', buggy.id)}")
    assert "INTERNAL_ERROR" in text_of(customer_page.text, "run-failures")
    clean_page = await admin.open(f"/admin/customers/{encode_id('Customer', good.id)}")
    assert 'id="run-failures"' not in clean_page.text

    # The cause gone, the next run invoices them and resolves their failures.
    monkeypatch.undo()
    async with db.transaction() as session:
        await session.execute(
            update(Customer).where(Customer.id == bad_zone.id).values(time_zone="UTC")
        )
    await jobs.advance_clock(db, retry_at)
    for party in everyone:
        [invoice] = await invoices_of(db, party.id)
        assert invoice.total == 1500
        assert await _next_bill_at(db, party.id) == datetime(2026, 5, 1, tzinfo=UTC)
    assert all(f.resolved_at == retry_at for f in (await _failures(db)).values())
    assert (await _list(provider))["totalCount"] == 0
    assert (await _list(provider, all=True))["totalCount"] == 3
    assert "No problems" in (await admin.open("/admin/run-failures")).text


async def test_a_customer_that_keeps_failing_is_retried_later_and_later(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retries back off, so a customer that always fails cannot keep the run busy."""
    await freeze_clock(db)
    party = await new_party(db)
    await post_usage(db, party, 100, T0)
    _failing_for(
        monkeypatch,
        invoices,
        "_draft_customer",
        {party.id: lambda: RuntimeError("always")},
        lambda closings, *rest: [closing.billee.id for closing in closings],
    )
    await jobs.advance_clock(db, UTC_APRIL_1 + timedelta(hours=2))
    [failure] = (await _failures(db)).values()
    # April 1 00:00, 00:15, 00:45, 01:45: each wait twice the last.
    assert failure.attempts == 4
    assert failure.next_retry_at == UTC_APRIL_1 + timedelta(hours=3, minutes=45)
    assert run_failures.retry_delay(100) == run_failures.RETRY_MAX


# --- the collection run -------------------------------------------------------------------------


async def _charged_customer(db: Database, class_id: int, name: str) -> tuple[Party, int]:
    """A customer with auto-payment and a default card, and an invoice of 2000 charged on
    issue; returns the party and the invoice id."""
    party = await new_party(db, name=name, class_id=class_id, auto_payment=True)
    await store_card(db, party, make_default=True)
    return party, (await issue_invoice(db, party, 2000)).id


async def _attempt(db: Database, invoice_id: int) -> CollectionAttempt:
    async with db.session() as session:
        attempt = await session.scalar(
            select(CollectionAttempt).where(CollectionAttempt.invoice_id == invoice_id)
        )
        assert attempt is not None
        return attempt


async def test_a_collection_run_charges_everyone_but_the_failing_invoices_and_retries_them(
    db: Database, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await freeze_clock(db)
    class_id = await customer_class(db, card_charging=CardCharging.ON_ISSUE)
    first, _ = await _charged_customer(db, class_id, "First")
    undecided, undecided_invoice = await _charged_customer(db, class_id, "Undecided")
    unbooked, unbooked_invoice = await _charged_customer(db, class_id, "Unbooked")
    last, _ = await _charged_customer(db, class_id, "Last")
    # A bug while opening one customer's charge, and one while booking another's answer.
    _failing_for(
        monkeypatch,
        card_charges,
        "open_charges",
        {undecided.id: lambda: RuntimeError("bug while opening")},
        lambda session, drafts, now: [draft.customer_id for draft in drafts],
    )
    _failing_for(
        monkeypatch,
        card_charges,
        "_book",
        {unbooked.id: lambda: RuntimeError("bug while booking")},
        lambda session, locked, succeeded, now: [p.customer_id for p, _ in succeeded],
    )

    completed_before = _card_payments_completed()
    await jobs.advance_clock(db, T0 + timedelta(minutes=1))

    for party in (first, last):
        [invoice] = await invoices_of(db, party.id)
        assert invoice.status == InvoiceStatus.PAID
    # Counted once booked: the batches a savepoint undid on the way down are not counted.
    assert _card_payments_completed() - completed_before == 2
    assert (await _attempt(db, undecided_invoice)).status == AttemptStatus.SCHEDULED
    assert len(SimulatorProcessor().charges()) == 3  # nothing sent for the undecided one
    unbooked_attempt = await _attempt(db, unbooked_invoice)
    assert unbooked_attempt.status == AttemptStatus.UNKNOWN  # charged, left for the janitor
    failures = await _failures(db)
    assert {c: (f.kind, f.invoice_id, f.code) for c, f in failures.items()} == {
        undecided.id: (RunKind.COLLECTION, undecided_invoice, "INTERNAL_ERROR"),
        unbooked.id: (RunKind.COLLECTION, unbooked_invoice, "INTERNAL_ERROR"),
    }
    # The run wakes for the retry, or sooner to see the charge in flight settled.
    wake = T0 + min(run_failures.RETRY_FIRST, RECONCILE_AFTER)
    assert await _pending_job(db, COLLECTION_RUN_JOB) == wake

    provider = await signed_in_api(http, await admin_with_login(db))
    listed = await _list(provider, encode_id("Customer", undecided.id))
    [edge] = listed["edges"]
    assert edge["node"]["invoice"]["id"] == encode_id("Invoice", undecided_invoice)

    monkeypatch.undo()
    await jobs.advance_clock(db, T0 + timedelta(hours=1))
    for party in (first, undecided, unbooked, last):
        [invoice] = await invoices_of(db, party.id)
        assert invoice.status == InvoiceStatus.PAID, party.customer.name
    # The unbooked charge was looked up by its key and booked, never made twice.
    assert len(SimulatorProcessor().charges()) == 4
    assert (await _attempt(db, unbooked_invoice)).status == AttemptStatus.SUCCEEDED
    assert all(f.resolved_at is not None for f in (await _failures(db)).values())
    assert (await _list(provider))["totalCount"] == 0
    assert _card_payments_completed() - completed_before == 4
