"""Direct-debit gateway billing (:mod:`billing.gateway_billing`) over the test clock, against
the fake Debitsuccess (:mod:`processors.fakes.debitsuccess`) served over real HTTP, with the
real adapter (:mod:`processors.debitsuccess`): on-boarding through the fake's hosted form, a
schedule submitted when the invoice falls due and settled by a later poll, a payment stop that
flags the customer and stops submissions until the method is replaced, a failure followed by
kassa's own retry, a lost answer reconciled by the schedule's identifier with no second
schedule, the same status seen by three polls applied once, the poll's windows and cursor,
Cleared or Settled as the operator's choice, and bad settings refused."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.types import ASGIApp, Receive, Scope, Send

from billing import gateway_billing, jobs
from billing.db import Database
from billing.errors import UserError
from billing.gateway_billing import FormStart, PaidOn, SettingsInput
from billing.models import (
    AttemptStatus,
    CardCharging,
    CollectionAttempt,
    GatewayEnrollment,
    GatewaySchedule,
    GatewayScheduleStatus,
    GatewaySettings,
    Invoice,
    InvoiceStatus,
    LedgerTransaction,
    OutboxMessage,
    Payment,
    PaymentChannel,
    PaymentMethod,
    PaymentStatus,
    Role,
    TransactionKind,
)
from billing.payment_systems import MAX_POLL_DAYS, MethodKind
from billing.processor_accounts import AccountInput, create_account
from processors import registry
from processors.fakes.debitsuccess import BUSINESS_ID, PASSWORD, USERNAME, FakeDebitsuccess
from schema.relay import encode_id
from tests.bitcoin_chain import LiveServer, serving
from tests.factories import (
    Party,
    admin_viewer,
    customer_class,
    customer_viewer,
    issue_invoice,
    ledger_problems,
    new_party,
    user_with_login,
)
from tests.portal_support import Browser, form_fields, parse, text_of

pytest_plugins = ["tests.portal_fixtures"]

CREDENTIALS = {"username": USERNAME, "password": PASSWORD, "business_id": BUSINESS_ID}
#: The fake's "hang" outlasts the adapter's timeout in these tests.
HANG_SECONDS = 3.0
RETURN_URL = "http://kassa.test/portal/direct-debit/return"


class _Current:
    """Hands each request to the fake of the test now running: kassa's keys (``attempt-1``…)
    restart with each test's database and must not meet an earlier test's schedules."""

    def __init__(self) -> None:
        self.fake = FakeDebitsuccess()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app: ASGIApp = self.fake.app
        await app(scope, receive, send)


@pytest.fixture(scope="module")
def _server() -> Iterator[tuple[_Current, LiveServer]]:
    current = _Current()
    with serving(current) as server:
        yield current, server


@pytest.fixture
def fake(_server: tuple[_Current, LiveServer]) -> FakeDebitsuccess:
    current, _ = _server
    current.fake = FakeDebitsuccess(hang_seconds=HANG_SECONDS)
    return current.fake


@pytest.fixture
def short_timeout() -> Iterator[None]:
    """Calls give up after 1.5 s, below the fake's hang."""
    registry.configure("debitsuccess", timeout=1.5)
    yield
    registry.configure("debitsuccess")


@pytest.fixture
async def account_id(
    db: Database, fake: FakeDebitsuccess, _server: tuple[_Current, LiveServer]
) -> int:
    """The provider's Debitsuccess account against the fake."""
    async with db.transaction() as session:
        made = await create_account(
            session,
            admin_viewer(),
            AccountInput(
                name="Debitsuccess",
                processor="debitsuccess",
                credentials=CREDENTIALS,
                base_url=_server[1].url,
                minimums=[("USD", "1.00")],
                method_kinds=[MethodKind.DIRECT_DEBIT],
            ),
        )
    return made.id


@pytest.fixture
async def party(db: Database, account_id: int) -> Party:
    """A customer of a class billed through the gateway, charged on the due date and 3 days
    after it."""
    class_id = await customer_class(
        db,
        "Direct debit",
        card_charging=CardCharging.ON_DUE_DATE,
        attempt_days_after_due=[0, 3],
    )
    async with db.transaction() as session:
        await gateway_billing.bill_class_through(session, admin_viewer(), class_id, account_id)
    return await new_party(db, class_id=class_id, email="ada@example.test")


@pytest.fixture
async def party_browser(db: Database, party: Party, browser: Browser) -> Browser:
    """The browser signed in to the portal as :func:`party`."""
    email = await user_with_login(db, "direct@example.test", Role.CUSTOMER, customer_id=party.id)
    await browser.sign_in(email)
    return browser


async def save_settings(db: Database, account_id: int, settings: SettingsInput) -> None:
    async with db.transaction() as session:
        await gateway_billing.save_settings(session, admin_viewer(), account_id, settings)


async def start(db: Database, party: Party) -> FormStart:
    """The customer starts the set-up (on-boarded at the gateway first), in its own transaction."""
    async with db.transaction() as session:
        return await gateway_billing.start_enrollment(
            session, customer_viewer(party.id), party.id, RETURN_URL
        )


async def complete(db: Database, party: Party) -> PaymentMethod:
    """The customer is back from the gateway's form, in its own transaction."""
    async with db.transaction() as session:
        return await gateway_billing.complete_enrollment(
            session, customer_viewer(party.id), party.id
        )


async def onboard(db: Database, party: Party, number: str = "0212345678901") -> PaymentMethod:
    """Through the fake's hosted form, as the customer's browser would."""
    form = await start(db, party)
    async with httpx.AsyncClient() as client:
        page = await client.get(form.url)
        assert page.status_code == 200 and "accountNumber" in page.text
        back = await client.post(
            form.url, data={"accountHolder": "A Lovelace", "accountNumber": number}
        )
    assert back.status_code == 303
    assert back.headers["location"].startswith(RETURN_URL + "?status=Success")
    return await complete(db, party)


async def enrolled(db: Database, party: Party) -> GatewayEnrollment:
    """:func:`onboard` ``party``; its enrollment."""
    await onboard(db, party)
    enrollment: GatewayEnrollment
    [enrollment] = await rows(db, GatewayEnrollment)
    return enrollment


async def due_invoice(
    db: Database, party: Party, after: timedelta = timedelta(minutes=1), amount: int = 5000
) -> tuple[int, datetime]:
    """An invoice (out of turn, net 14) and the instant its first attempt falls due, with the
    clock moved on to ``after`` that instant (by default: just past the first attempt)."""
    invoice = await issue_invoice(db, party, amount)
    due_at = datetime.combine(invoice.due_date, datetime.min.time(), UTC) + timedelta(hours=9)
    await jobs.advance_clock(db, due_at + after)
    return invoice.id, due_at


async def status_of(db: Database, invoice_id: int) -> InvoiceStatus:
    async with db.session() as session:
        invoice = await session.get(Invoice, invoice_id)
    assert invoice is not None
    return invoice.status


async def rows(db: Database, model: Any, **where: object) -> list[Any]:
    async with db.session() as session:
        query = select(model).filter_by(**where).order_by(model.id)
        return list((await session.scalars(query)).all())


async def settings_of(db: Database, account_id: int) -> GatewaySettings | None:
    async with db.session() as session:
        return await session.get(GatewaySettings, account_id)


async def payments_in_ledger(db: Database) -> int:
    """How many payment transactions the ledger holds."""
    async with db.session() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.kind == TransactionKind.PAYMENT)
        )
    return found or 0


async def ledger_problems_in(db: Database) -> list[object]:
    async with db.session() as session:
        return await ledger_problems(session)


def class_billing(html: str) -> dict[str, str]:
    """Each customer class's billing form on the direct-debit page: the gateway it shows
    chosen ("" for none), by class id."""
    return {
        fields["classId"]: fields["processorAccountId"]
        for action, fields in parse(html).forms
        if action == "/admin/direct-debit/classes"
    }


async def test_a_full_cycle_from_on_boarding_to_a_settled_payment(
    db: Database, fake: FakeDebitsuccess, party: Party
) -> None:
    method = await onboard(db, party)
    assert (method.brand, method.last4, method.processor) == (
        "bank account",
        "8901",
        "debitsuccess",
    )
    [enrollment] = await rows(db, GatewayEnrollment)
    assert enrollment.status == "ACTIVE" and enrollment.account_reference.startswith("DEA")
    account = fake.account_by_reference(str(party.id))
    assert account is not None and account["accountReferenceNo"] == enrollment.account_reference

    invoice_id, due_at = await due_invoice(db, party)
    [schedule] = await rows(db, GatewaySchedule)
    assert (schedule.status, schedule.amount, schedule.external_identifier) == (
        "SUBMITTED",
        5000,
        "attempt-1",
    )
    [payment] = await rows(db, Payment, id=schedule.payment_id)
    assert (payment.method, payment.status, payment.next_check_at) == (
        PaymentChannel.DIRECT_DEBIT,
        PaymentStatus.PENDING,
        None,
    )
    assert [s["dueDate"] for s in fake.schedules.values()] == [schedule.due_date.isoformat()]

    await jobs.advance_clock(db, due_at + timedelta(days=2))  # Cleared: not yet paid
    assert await status_of(db, invoice_id) != InvoiceStatus.PAID
    await jobs.advance_clock(db, due_at + timedelta(days=5))  # Settled
    assert await status_of(db, invoice_id) == InvoiceStatus.PAID
    [payment] = await rows(db, Payment, id=schedule.payment_id)
    assert payment.status == PaymentStatus.COMPLETED
    history = [s.status for s in await rows(db, GatewayScheduleStatus)]
    assert history[-1] == "Settled" and "Cleared" in history
    [attempt] = [a for a in await rows(db, CollectionAttempt) if a.payment_id == payment.id]
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert await ledger_problems_in(db) == []
    settings = await settings_of(db, schedule.processor_account_id)
    assert (
        settings is not None
        and settings.poll_cursor is not None
        and settings.last_poll_error is None
    )
    assert await db_scalar(db, select(func.count()).select_from(GatewaySchedule)) == 1


async def db_scalar(db: Database, query: object) -> object:
    async with db.session() as session:
        return await session.scalar(query)  # type: ignore[call-overload]


async def test_cleared_counts_as_paid_when_the_operator_says_so(
    db: Database, fake: FakeDebitsuccess, party: Party, account_id: int
) -> None:
    await save_settings(db, account_id, SettingsInput(PaidOn.CLEARED, "0", "USD", "0"))
    await onboard(db, party)
    # Cleared, not Settled:
    invoice_id, due_at = await due_invoice(db, party, timedelta(days=2, hours=12))
    assert await status_of(db, invoice_id) == InvoiceStatus.PAID
    await jobs.advance_clock(db, due_at + timedelta(days=6))  # Settled changes nothing more
    assert await payments_in_ledger(db) == 1 and await ledger_problems_in(db) == []


async def test_a_payment_stop_flags_the_customer_and_stops_submissions_until_replaced(
    db: Database, fake: FakeDebitsuccess, party: Party
) -> None:
    await user_with_login(db, "boss@kassa.test", Role.ADMIN)
    enrollment = await enrolled(db, party)
    fake.stop(enrollment.gateway_account_id, "LostOrStolenCard")
    _, due_at = await due_invoice(db, party)
    [schedule] = await rows(db, GatewaySchedule)
    assert schedule.status == "REJECTED"
    [attempt] = [a for a in await rows(db, CollectionAttempt) if a.payment_id is not None]
    assert attempt.status == AttemptStatus.FAILED and "LostOrStolenCard" in (attempt.message or "")
    [enrollment] = await rows(db, GatewayEnrollment)
    assert enrollment.status == "STOPPED" and enrollment.stop_code == "lostorstolencard"
    mail = [m for m in await rows(db, OutboxMessage) if m.to == "boss@kassa.test"]
    assert len(mail) == 1 and "Direct debit stopped" in mail[0].subject

    # The retry three days on submits nothing: there is no method to debit.
    await jobs.advance_clock(db, due_at + timedelta(days=3, hours=1))
    assert len(fake.schedules) == 0 and len(await rows(db, GatewaySchedule)) == 1
    later = [a for a in await rows(db, CollectionAttempt) if a.id != attempt.id]
    assert [a.reason for a in later] == ["NO_PAYMENT_METHOD"]

    # A new method through the hosted form lifts the stop; the next invoice is debited.
    await onboard(db, party, number="0299999999001")
    [enrollment] = await rows(db, GatewayEnrollment)
    assert enrollment.status == "ACTIVE" and enrollment.stop_code is None
    await due_invoice(db, party, amount=1200)
    assert [s.status for s in await rows(db, GatewaySchedule)] == ["REJECTED", "SUBMITTED"]


async def test_a_failure_is_followed_by_kassas_own_retry(
    db: Database, fake: FakeDebitsuccess, party: Party
) -> None:
    enrollment = await enrolled(db, party)
    fake.plan(enrollment.gateway_account_id, "fail")
    # Failed on day 2:
    invoice_id, due_at = await due_invoice(db, party, timedelta(days=2, hours=12))
    first = (await rows(db, GatewaySchedule))[0]
    assert (first.status, first.error_code) == ("Failed", "InsufficientFunds")
    [failed] = [a for a in await rows(db, CollectionAttempt) if a.payment_id == first.payment_id]
    assert failed.status == AttemptStatus.FAILED and failed.decline_code == "InsufficientFunds"
    await jobs.advance_clock(db, due_at + timedelta(days=8))  # retry on day 3, settled on day 7
    schedules = await rows(db, GatewaySchedule)
    assert [s.status for s in schedules] == ["Failed", "Settled"]
    assert schedules[1].external_identifier != schedules[0].external_identifier
    assert await status_of(db, invoice_id) == InvoiceStatus.PAID
    assert await ledger_problems_in(db) == []


async def test_a_lost_answer_is_reconciled_by_the_identifier_without_a_second_schedule(
    db: Database, fake: FakeDebitsuccess, party: Party, short_timeout: None
) -> None:
    await onboard(db, party)
    fake.hang()  # the schedule is made, the answer comes too late
    invoice_id, due_at = await due_invoice(db, party)
    [schedule] = await rows(db, GatewaySchedule)
    assert schedule.status == "UNKNOWN"
    [payment] = await rows(db, Payment, id=schedule.payment_id)
    assert payment.status == PaymentStatus.UNKNOWN
    assert len(fake.schedules) == 1

    await jobs.advance_clock(db, due_at + timedelta(minutes=10))  # the janitor looks it up
    [schedule] = await rows(db, GatewaySchedule)
    assert schedule.status == "SUBMITTED" and schedule.schedule_id is not None
    assert len(fake.schedules) == 1
    assert fake.calls.count("POST oneOffSchedules") == 1
    await jobs.advance_clock(db, due_at + timedelta(days=5))
    assert await status_of(db, invoice_id) == InvoiceStatus.PAID
    assert len(fake.schedules) == 1


async def test_a_5xx_before_the_schedule_is_made_is_sent_again_under_the_same_key(
    db: Database, fake: FakeDebitsuccess, party: Party
) -> None:
    await onboard(db, party)
    fake.fail_next(503)
    _, due_at = await due_invoice(db, party)
    assert len(fake.schedules) == 0
    await jobs.advance_clock(db, due_at + timedelta(minutes=10))
    [made] = fake.schedules.values()
    assert made["externalScheduleIdentifier"] == "attempt-1"
    assert [s.status for s in await rows(db, GatewaySchedule)] == ["SUBMITTED"]


async def test_the_same_status_seen_in_three_polls_is_applied_once(
    db: Database, fake: FakeDebitsuccess, party: Party, account_id: int
) -> None:
    await onboard(db, party)
    _, due_at = await due_invoice(db, party)
    settled_at = due_at + timedelta(days=4, hours=1)
    for hours in (0, 1, 2):  # three polls whose windows all hold the Settled status
        async with db.transaction() as session:
            await _freeze(session, settled_at + timedelta(hours=hours))
        await gateway_billing.poll_account(db, account_id, settled_at + timedelta(hours=hours))
    [settled] = await rows(db, GatewayScheduleStatus, status="Settled")
    assert settled.times_seen == 3 and settled.outcome == "COMPLETED"
    assert await payments_in_ledger(db) == 1 and await ledger_problems_in(db) == []


async def _freeze(session: object, at: datetime) -> None:
    from billing import clock

    await clock.freeze(session, at)  # type: ignore[arg-type]


def test_poll_windows_are_at_most_30_days_and_overlap() -> None:
    found = gateway_billing.windows(date(2026, 1, 1), date(2026, 3, 20))
    assert all((end - start).days <= MAX_POLL_DAYS for start, end in found)
    assert found[0][0] == date(2026, 1, 1) - gateway_billing.OVERLAP
    assert found[-1][1] == date(2026, 3, 20)
    for (_, end), (start, _) in itertools.pairwise(found):
        assert start == end - gateway_billing.OVERLAP
    assert gateway_billing.windows(date(2026, 3, 20), date(2026, 3, 20)) == [
        (date(2026, 3, 18), date(2026, 3, 20))
    ]


async def test_a_failed_poll_keeps_the_cursor(
    db: Database, fake: FakeDebitsuccess, party: Party, account_id: int
) -> None:
    await onboard(db, party)
    _, due_at = await due_invoice(db, party, timedelta(hours=7))
    before = (await settings_of(db, account_id)).poll_cursor  # type: ignore[union-attr]
    fake.fail_next(503)
    report = await gateway_billing.poll_account(db, account_id, due_at + timedelta(days=3))
    assert report.error is not None and report.windows == 0
    after = await settings_of(db, account_id)
    assert after is not None and after.poll_cursor == before and after.last_poll_error


async def test_bad_settings_and_classes_are_refused(db: Database, account_id: int) -> None:
    cases = [
        (SettingsInput(PaidOn.SETTLED, "-1.00", "USD", "0"), "NEGATIVE_FEE"),
        (SettingsInput(PaidOn.SETTLED, "1.001", "USD", "0"), "TOO_MANY_DECIMALS"),
        (SettingsInput(PaidOn.SETTLED, "1.00", "USD", "101"), "OUT_OF_RANGE"),
        (SettingsInput(PaidOn.SETTLED, "1.00", "XXQ", "2"), "INVALID_CURRENCY"),
    ]
    for data, code in cases:
        with pytest.raises(UserError) as refused:
            await save_settings(db, account_id, data)
        assert refused.value.code == code, data
    async with db.transaction() as session:
        cards = await create_account(
            session,
            admin_viewer(),
            AccountInput(name="Cards", processor="simulator", minimums=[("USD", "0")],
                         method_kinds=[MethodKind.VISA]),
        )  # fmt: skip
    class_id = await customer_class(db, "Cards")
    async with db.transaction() as session:
        with pytest.raises(UserError) as refused:
            await gateway_billing.bill_class_through(session, admin_viewer(), class_id, cards.id)
    assert refused.value.code == "NOT_A_GATEWAY"
    party = await new_party(db)
    with pytest.raises(UserError) as refused:
        await start(db, party)
    assert refused.value.code == "NOT_GATEWAY_BILLED"


async def test_returning_before_the_form_was_filled_in_keeps_nothing(
    db: Database, party: Party
) -> None:
    await start(db, party)
    async with db.transaction() as session:  # committed: the refusal itself keeps nothing
        with pytest.raises(UserError) as refused:
            await gateway_billing.complete_enrollment(session, customer_viewer(party.id), party.id)
    assert refused.value.code == "NO_PAYMENT_METHOD_YET"
    assert await rows(db, PaymentMethod) == []


async def test_the_administrators_page_shows_the_schedule_history(
    db: Database, fake: FakeDebitsuccess, party: Party, admin: Browser
) -> None:
    await onboard(db, party)
    await due_invoice(db, party, timedelta(days=5))
    page = await admin.open("/admin/direct-debit")
    assert page.status_code == 200
    assert 'href="/admin/direct-debit"' in page.text  # in the navigation
    text = text_of(page.text, "customers-title") + page.text
    assert "attempt-1" in text and "Settled" in text and "Completed" in text
    assert "DEA" in text and "Polled up to" in text


@pytest.mark.parametrize("lost", ["POST customers", "POST accounts", "POST paymentTokens"])
async def test_on_boarding_again_after_a_lost_answer_makes_nothing_twice(
    db: Database, fake: FakeDebitsuccess, party: Party, short_timeout: None, lost: str
) -> None:
    """The gateway did the work but its answer came too late: kassa kept nothing, and the
    customer's second try finds the customer and account instead of being refused as a
    duplicate (or making a second customer)."""
    fake.hang(lost)
    with pytest.raises(UserError) as refused:
        await start(db, party)
    assert refused.value.code == "GATEWAY_UNAVAILABLE"
    assert "did not answer in time" in refused.value.message
    assert await rows(db, GatewayEnrollment) == []
    method = await onboard(db, party)
    assert (len(fake.customers), len(fake.accounts)) == (1, 1)
    account = fake.account_by_reference(str(party.id))
    [enrollment] = await rows(db, GatewayEnrollment)
    assert account is not None and enrollment.gateway_account_id == account["id"]
    assert method.token == account["id"]


async def test_a_gateway_refusal_on_boarding_reads_as_a_user_error(
    db: Database, fake: FakeDebitsuccess, party: Party
) -> None:
    fake.password = "changed at the gateway"
    with pytest.raises(UserError) as refused:
        await start(db, party)
    assert refused.value.code == "GATEWAY_REFUSED"
    assert "credentials" in refused.value.message


async def test_coming_back_without_a_new_method_after_a_payment_stop_keeps_it_stopped(
    db: Database, fake: FakeDebitsuccess, party: Party
) -> None:
    """The gateway still holds the refused method: it is not taken back as a usable one."""
    enrollment = await enrolled(db, party)
    fake.stop(enrollment.gateway_account_id, "AccountClosed")
    await start(db, party)
    with pytest.raises(UserError) as refused:
        await complete(db, party)
    assert refused.value.code == "NO_PAYMENT_METHOD_YET"


async def test_the_portal_shows_the_fees_then_sends_the_customer_to_the_form_and_back(
    db: Database, fake: FakeDebitsuccess, account_id: int, party_browser: Browser
) -> None:
    await save_settings(db, account_id, SettingsInput(PaidOn.SETTLED, "25", "USD", "1.5"))
    page = await party_browser.open("/portal/direct-debit")
    fees = text_of(page.text, "fees")
    assert "25.00 USD" in fees and "1.50 %" in fees
    assert fake.customers == {}  # nothing is made at the gateway before the customer agrees

    refused = await party_browser.submit("/portal/direct-debit", {})
    assert refused.status_code == 422 and "Tick the box" in refused.text
    assert fake.customers == {}

    leaving = await party_browser.submit("/portal/direct-debit", {"agree": "on"})
    [form_url] = re.findall(r'href="([^"]+/paynow/[0-9a-f]+)"', leaving.text)
    async with httpx.AsyncClient() as widget:
        back = await widget.post(
            form_url, data={"accountHolder": "A Lovelace", "accountNumber": "0212345678901"}
        )
    location = back.headers["location"]
    assert location.startswith("https://kassa.test/portal/direct-debit/return?status=Success")
    done = await party_browser.open(location.removeprefix("https://kassa.test"))
    assert done.status_code == 200
    assert "Direct debit is set up" in text_of(done.text, "set-up-done")
    assert "ending 8901" in text_of(done.text, "current")
    again = await party_browser.open(location.removeprefix("https://kassa.test"))  # a reload
    assert again.status_code == 200 and len(await rows(db, PaymentMethod)) == 1
    methods = await party_browser.open("/portal/payment-methods")
    assert "Bank account ending 8901" in methods.text and "by direct debit" in methods.text


async def test_the_portal_says_so_when_the_gateway_does_not_answer(
    db: Database, fake: FakeDebitsuccess, party_browser: Browser
) -> None:
    await party_browser.open("/portal/direct-debit")
    fake.fail_next(503)
    page = await party_browser.submit("/portal/direct-debit", {"agree": "on"})
    assert page.status_code == 422 and "did not answer in time" in page.text
    assert await rows(db, GatewayEnrollment) == []

    # Trying again works; coming back without filling the form in (its link expired, say)
    # reads clearly and keeps nothing.
    leaving = await party_browser.submit("/portal/direct-debit", {"agree": "on"})
    assert "/paynow/" in leaving.text
    back = await party_browser.open("/portal/direct-debit/return?status=Success")
    assert back.status_code == 422 and "holds no payment details for you yet" in back.text
    assert await rows(db, PaymentMethod) == []


async def test_administrators_set_the_gateway_and_its_classes_on_the_page(
    db: Database, account_id: int, admin: Browser
) -> None:
    class_id = await customer_class(db, "Fibre by direct debit")
    page = await admin.open("/admin/direct-debit")
    assert "No customer class is billed by direct debit yet." in page.text
    refused = await admin.submit(
        "/admin/direct-debit/settings",
        {"establishmentFee": "-5", "feeCurrency": "USD", "commissionPercent": "2"},
    )
    assert refused.status_code == 422
    assert "cannot be negative" in refused.text and 'aria-invalid="true"' in refused.text
    saved = await admin.submit(
        "/admin/direct-debit/settings",
        {"paidOn": "CLEARED", "establishmentFee": "19.90", "feeCurrency": "USD",
         "commissionPercent": "2.5"},
    )  # fmt: skip
    assert saved.status_code == 200
    assert text_of(saved.text, "notice") == "Debitsuccess's settings saved."
    row = await settings_of(db, account_id)
    assert row is not None and (row.paid_on, row.establishment_fee) == ("CLEARED", 1990)
    assert row.commission_basis_points == 250

    gid = encode_id("CustomerClass", class_id)
    gateway = encode_id("ProcessorAccount", account_id)
    fields = form_fields(saved.text, "/admin/direct-debit/classes")
    assert class_billing(saved.text) == {gid: ""}  # each class's form shows how it is billed
    billed = await admin.submit(
        "/admin/direct-debit/classes", {"classId": gid, "processorAccountId": gateway}
    )
    assert billed.status_code == 200 and "is now billed by direct debit" in billed.text
    assert "Fibre by direct debit: through Debitsuccess" in text_of(billed.text, "billed-classes")
    assert class_billing(billed.text) == {gid: gateway}
    assert class_billing((await admin.open("/admin/direct-debit")).text) == {gid: gateway}
    assert "csrf_token" in fields
    forged = await admin.http.post(
        "/admin/direct-debit/classes",
        data={"classId": encode_id("CustomerClass", class_id), "processorAccountId": ""},
    )
    assert forged.status_code == 403  # no CSRF token
    bad = await admin.submit("/admin/direct-debit/classes", {"classId": "not-an-id"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    assert class_billing(bad.text) == {gid: gateway}  # the listed class's form as it was
    stopped = await admin.submit(
        "/admin/direct-debit/classes", {"classId": gid, "processorAccountId": ""}
    )
    assert "is no longer billed by direct debit" in stopped.text
    assert class_billing(stopped.text) == {gid: ""}
