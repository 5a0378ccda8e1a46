"""Paying on a redirect system's page (:mod:`billing.redirect_payments`), end to end against
the systems' fakes over real HTTP: PayPal (signed webhooks, capture on return), Payarena and
Remita (unsigned callbacks that count only through a status query).  The return is never
believed by itself; every answer is booked once; an abandoned redirect expires; what the
customer must fix (Remita's phone and e-mail, its 50 NGN minimum) is refused before anything
is written or sent; an account the customer's routing does not offer is not found."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from billing import clock, invoices, ledger, redirect_payments
from billing.card_charges import within
from billing.db import Database
from billing.errors import UserError
from billing.models import (
    Invoice,
    InvoiceStatus,
    LedgerTransaction,
    Payment,
    PaymentChannel,
    PaymentStatus,
    ProcessorNotification,
)
from processors.fakes import payarena as payarena_fake
from processors.fakes import paypal as paypal_fake
from processors.fakes import remita as remita_fake
from processors.fakes import skrill as skrill_fake
from tests.bitcoin_chain import LiveServer
from tests.factories import (
    DAY_BEFORE_T0,
    Party,
    admin_viewer,
    balance_of,
    customer_viewer,
    issue_invoice,
    make_charge_at,
    make_reseller,
    new_party,
)
from tests.redirect_browser import press
from tests.redirect_fixtures import RedirectSystem, make_redirect_account

pytest_plugins = ["tests.graphql_fixtures", "tests.redirect_fixtures"]


async def _naira_party(db: Database, **fields: str | None) -> Party:
    given = {"email": "ada@example.test", "phone": "+2348012345678", **fields}
    return await new_party(db, currency="NGN", **given)


async def start(
    db: Database,
    party: Party,
    account_id: int,
    amount: int | None,
    invoice_id: int | None = None,
    key: str = "k1",
) -> redirect_payments.Started:
    async with db.transaction() as session:
        return await redirect_payments.start(
            within(session),
            customer_viewer(party.id),
            party.id,
            account_id,
            amount,
            invoice_id,
            key,
        )


async def come_back(db: Database, party: Party, payment_id: int, query: dict[str, str]) -> Payment:
    async with db.transaction() as session:
        return await redirect_payments.returned(
            within(session), customer_viewer(party.id), payment_id, query
        )


async def current(db: Database, payment_id: int) -> Payment:
    async with db.session() as session:
        found = await session.get(Payment, payment_id)
    assert found is not None
    return found


async def count(db: Database, model: type[Payment] | type[ProcessorNotification]) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def post(http: httpx.AsyncClient, account: int, headers: dict[str, str], body: bytes) -> int:
    answer = await http.post(f"/callbacks/{account}", content=body, headers=headers)
    return answer.status_code


async def test_paypal_round_trip_pays_the_invoice(
    db: Database, paypal_account: int, paypal: paypal_fake.FakePayPal
) -> None:
    party = await new_party(db)
    invoice = await issue_invoice(db, party, 4000)
    started = await start(db, party, paypal_account, None, invoice.id)
    payment, redirect = started.payment, started.redirect
    assert redirect is not None and payment.status == PaymentStatus.PENDING
    assert (payment.method, payment.amount, payment.invoice_id) == (
        PaymentChannel.REDIRECT,
        4000,
        invoice.id,
    )
    assert (payment.processor_key, payment.processor_reference, payment.action_url) == (
        f"payment-{payment.id}",
        redirect.external_id,
        redirect.url,
    )
    assert payment.expires_at is not None  # PayPal names none: kassa's default lifetime

    query = await press(redirect.url, "approve")
    paid = await come_back(db, party, payment.id, query)
    assert paid.status == PaymentStatus.COMPLETED and paid.transaction_id is not None
    async with db.session() as session:
        assert await balance_of(session, party.id) == 0
        assert (await session.get(Invoice, invoice.id)).status == InvoiceStatus.PAID  # type: ignore[union-attr]
        txn = await session.get(LedgerTransaction, paid.transaction_id)
        assert txn is not None and txn.description == "Online payment (Paypal)"
    # Reloading the return page changes nothing and asks nothing.
    again = await come_back(db, party, payment.id, query)
    assert (again.status, again.transaction_id) == (PaymentStatus.COMPLETED, paid.transaction_id)


async def test_coming_back_without_paying_leaves_the_payment_pending(
    db: Database, paypal_account: int
) -> None:
    party = await new_party(db)
    started = await start(db, party, paypal_account, 2500)
    assert started.redirect is not None
    token = started.redirect.external_id
    back = await come_back(db, party, started.payment.id, {"token": token, "PayerID": "X"})
    assert back.status == PaymentStatus.PENDING
    async with db.session() as session:
        assert await balance_of(session, party.id) == 0


async def test_a_replay_returns_the_same_payment_and_page(
    db: Database, paypal_account: int
) -> None:
    party = await new_party(db)
    first = await start(db, party, paypal_account, 2500)
    second = await start(db, party, paypal_account, 2500)
    assert second.payment.id == first.payment.id
    assert second.redirect is not None and first.redirect is not None
    assert second.redirect.external_id == first.redirect.external_id
    with pytest.raises(UserError) as reused:
        await start(db, party, paypal_account, 2600)
    assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"


async def test_a_payment_canceled_on_the_systems_page_fails_at_once(
    db: Database, redirect_system: RedirectSystem
) -> None:
    """Canceling on the system's page settles the payment when the customer comes back (the
    system asked, server to server, says it was not made), not at its expiry; nothing moves."""
    naira = redirect_system.currency == "NGN"
    party = await (_naira_party(db) if naira else new_party(db))
    started = await start(db, party, redirect_system.account_id, 150_000 if naira else 2500)
    assert started.redirect is not None
    query = await press(started.redirect.url, "cancel", started.redirect.form_fields)
    for _ in range(2):  # a reload shows the same and asks nothing
        back = await come_back(db, party, started.payment.id, query)
        assert (back.status, back.decline_code) == (PaymentStatus.FAILED, "canceled")
        assert back.transaction_id is None
    async with db.session() as session:
        assert await balance_of(session, party.id) == 0


async def test_a_signed_notification_pays_once(
    db: Database,
    http: httpx.AsyncClient,
    paypal_account: int,
    paypal: paypal_fake.FakePayPal,
    paypal_server: LiveServer,
) -> None:
    """The customer approved and closed the tab: PayPal's webhook (named by the payment's key)
    pays it; the same webhook again is acknowledged and changes nothing."""
    party = await new_party(db)
    started = await start(db, party, paypal_account, 3000)
    assert started.redirect is not None
    await press(started.redirect.url, "approve")
    # The capture is PayPal's, made as the return would have made it.
    async with db.session() as session:
        processor, redirect = await redirect_payments._asking(session, started.payment)
    assert (await processor.complete_return(redirect, {})).status.value == "SUCCEEDED"
    event = paypal.capture_event(
        redirect.external_id, "PAYMENT.CAPTURE.COMPLETED", event_id="WH-REDIRECT-1"
    )
    headers, body = paypal.webhook(event, paypal_server.url)
    assert await post(http, paypal_account, headers, body) == 200
    assert await post(http, paypal_account, headers, body) == 200
    paid = await current(db, started.payment.id)
    assert paid.status == PaymentStatus.COMPLETED
    async with db.session() as session:
        assert await balance_of(session, party.id) == -3000
        outcomes = list(await session.scalars(select(ProcessorNotification.outcome)))
    assert outcomes == ["APPLIED"]


async def test_payarena_callback_counts_only_through_the_status_query(
    db: Database,
    http: httpx.AsyncClient,
    payarena_account: int,
    payarena: payarena_fake.FakePayarena,
) -> None:
    party = await _naira_party(db)
    started = await start(db, party, payarena_account, 150_000)
    assert started.redirect is not None
    # A callback before the customer paid: Payarena says pending, nothing is written.
    headers, body = payarena.callback(started.redirect.external_id)
    assert await post(http, payarena_account, headers, body) == 200
    assert (await current(db, started.payment.id)).status == PaymentStatus.PENDING
    assert await count(db, ProcessorNotification) == 0

    await press(started.redirect.url, "approve")
    headers, body = payarena.callback(started.redirect.external_id)
    assert await post(http, payarena_account, headers, body) == 200
    assert (await current(db, started.payment.id)).status == PaymentStatus.COMPLETED
    assert await post(http, payarena_account, headers, body) == 200  # resent: once
    async with db.session() as session:
        assert await balance_of(session, party.id) == -150_000


async def test_remita_callback_counts_only_through_the_status_query(
    db: Database,
    http: httpx.AsyncClient,
    remita_account: int,
    remita: remita_fake.FakeRemita,
) -> None:
    party = await _naira_party(db)
    started = await start(db, party, remita_account, 9000)
    redirect = started.redirect
    assert redirect is not None and redirect.form_fields is not None
    body = remita.notification_body(redirect.external_id)
    headers = {"content-type": "application/json"}
    assert await post(http, remita_account, headers, body) == 200
    assert (await current(db, started.payment.id)).status == PaymentStatus.PENDING

    query = await press(redirect.url, "approve", redirect.form_fields)
    assert await post(http, remita_account, headers, body) == 200
    assert (await current(db, started.payment.id)).status == PaymentStatus.COMPLETED
    # The customer's return afterwards shows the same outcome and books nothing more.
    back = await come_back(db, party, started.payment.id, query)
    assert back.status == PaymentStatus.COMPLETED
    async with db.session() as session:
        assert await balance_of(session, party.id) == -9000


@pytest.mark.parametrize(
    ("fields", "code"),
    [({"phone": None}, "PHONE_REQUIRED"), ({"email": None}, "EMAIL_REQUIRED")],
)
async def test_remita_without_phone_or_email_is_refused_before_anything(
    db: Database,
    remita_account: int,
    remita: remita_fake.FakeRemita,
    fields: dict[str, str | None],
    code: str,
) -> None:
    party = await _naira_party(db, **fields)
    calls = len(remita.calls)
    with pytest.raises(UserError) as refused:
        await start(db, party, remita_account, 10_000)
    assert refused.value.code == code
    assert (await count(db, Payment), len(remita.calls)) == (0, calls)


async def test_remita_below_fifty_naira_is_refused_before_anything(
    db: Database, remita_account: int, remita: remita_fake.FakeRemita
) -> None:
    party = await _naira_party(db)
    calls = len(remita.calls)
    with pytest.raises(UserError) as refused:
        await start(db, party, remita_account, 4_999)
    assert refused.value.code == "AMOUNT_BELOW_MINIMUM"
    assert (await count(db, Payment), len(remita.calls)) == (0, calls)
    started = await start(db, party, remita_account, 5_000, key="k2")
    assert started.payment.status == PaymentStatus.PENDING


async def test_an_account_routing_does_not_offer_is_not_found(
    db: Database, paypal_server: LiveServer, paypal_account: int
) -> None:
    """A reseller's PayPal is not for the provider's customers (and a customer cannot start a
    payment for another customer at all)."""
    async with db.transaction() as session:
        reseller = await make_reseller(session)
    theirs = await make_redirect_account(
        db,
        "paypal",
        paypal_server.url,
        {"client_id": "c", "client_secret": "s", "webhook_id": "w"},
        [("USD", "1.00")],
        reseller.id,
    )
    party = await new_party(db)
    with pytest.raises(UserError) as refused:
        await start(db, party, theirs, 2500)
    assert refused.value.code == "NOT_FOUND"
    other = await new_party(db)
    with pytest.raises(Exception) as forbidden:
        async with db.transaction() as session:
            await redirect_payments.start(
                within(session),
                customer_viewer(other.id),
                party.id,
                paypal_account,
                2500,
                None,
                "x",
            )
    assert type(forbidden.value).__name__ in ("Forbidden", "NotFound")
    assert await count(db, Payment) == 0


async def test_abandoned_redirects_expire_unless_the_system_says_paid(
    db: Database, payarena_account: int, payarena: payarena_fake.FakePayarena
) -> None:
    party = await _naira_party(db)
    abandoned = await start(db, party, payarena_account, 150_000, key="a")
    paid_elsewhere = await start(db, party, payarena_account, 120_000, key="b")
    assert abandoned.redirect is not None and paid_elsewhere.redirect is not None
    payarena.expire(abandoned.redirect.external_id)
    await press(paid_elsewhere.redirect.url, "approve")  # and never came back
    async with db.session() as session:
        now = await clock.now(session)
    early = await redirect_payments.run_expiry(db, now)
    assert early.asked == 0
    report = await redirect_payments.run_expiry(db, now + timedelta(hours=2))
    assert (report.asked, report.paid, report.expired) == (2, 1, 1)
    gone = await current(db, abandoned.payment.id)
    assert (gone.status, gone.decline_code) == (PaymentStatus.FAILED, "expired")
    assert (await current(db, paid_elsewhere.payment.id)).status == PaymentStatus.COMPLETED
    again = await redirect_payments.run_expiry(db, now + timedelta(hours=3))
    assert again.asked == 0
    async with db.session() as session:
        assert await balance_of(session, party.id) == -120_000


async def _expire_all(db: Database) -> None:
    """Run the expiry job past every deadline (the systems say nothing was paid yet)."""
    async with db.session() as session:
        deadline = await session.scalar(select(func.max(Payment.expires_at)))
    assert deadline is not None
    report = await redirect_payments.run_expiry(db, deadline + timedelta(minutes=1))
    assert report.expired >= 1 and report.paid == 0


async def test_money_confirmed_after_expiry_is_credited_not_lost(
    db: Database,
    http: httpx.AsyncClient,
    remita_account: int,
    remita: remita_fake.FakeRemita,
) -> None:
    """The customer pays the RRR after kassa's deadline and after paying the invoice another
    way: Remita's (unsigned) notification, confirmed by its status, credits the late money to
    the balance — once — and the ledger stays balanced."""
    party = await _naira_party(db)
    async with db.transaction() as session:
        await make_charge_at(session, party.account, 9000, DAY_BEFORE_T0, currency="NGN")
        invoice = await invoices.close_period_out_of_turn(session, admin_viewer(), party.id)
    late = await start(db, party, remita_account, None, invoice.id, key="late")
    assert late.redirect is not None and late.redirect.form_fields is not None
    await _expire_all(db)
    assert (await current(db, late.payment.id)).decline_code == "expired"
    other = await start(db, party, remita_account, None, invoice.id, key="other")
    assert other.redirect is not None
    query = await press(other.redirect.url, "approve", other.redirect.form_fields)
    assert (await come_back(db, party, other.payment.id, query)).status == PaymentStatus.COMPLETED

    await press(late.redirect.url, "approve", late.redirect.form_fields)
    body = remita.notification_body(late.redirect.external_id)
    headers = {"content-type": "application/json"}
    for _ in range(2):  # resent: credited once
        assert await post(http, remita_account, headers, body) == 200
    credited = await current(db, late.payment.id)
    assert credited.status == PaymentStatus.COMPLETED and credited.transaction_id is not None
    assert "after it had expired" in (credited.message or "")
    async with db.session() as session:
        assert await balance_of(session, party.id) == -9000  # the invoice was paid: credit
        assert (await session.get(Invoice, invoice.id)).status == InvoiceStatus.PAID  # type: ignore[union-attr]
        assert await ledger.verify_balances(session) == []


async def test_a_signed_confirmation_after_a_cancel_is_credited_and_a_wrong_amount_flagged(
    db: Database,
    http: httpx.AsyncClient,
    skrill_account: int,
    skrill: skrill_fake.FakeSkrill,
) -> None:
    """Skrill confirms (signed) a payment kassa had marked canceled: credited; a confirmation
    of another given-up payment for another amount is flagged and credits nothing."""
    party = await new_party(db)
    paid_later = await start(db, party, skrill_account, 2500, key="a")
    wrong = await start(db, party, skrill_account, 1500, key="b")
    for started in (paid_later, wrong):
        assert started.redirect is not None
        query = await press(started.redirect.url, "cancel")
        assert (await come_back(db, party, started.payment.id, query)).decline_code == "canceled"
        await press(started.redirect.url, "approve")  # back in the other tab, and paid
    headers = {"content-type": "application/x-www-form-urlencoded"}
    key = wrong.payment.processor_key or ""
    confirmations = [
        skrill.notification_fields(paid_later.payment.processor_key or ""),
        skrill.notification_fields(key, mb_amount="20.00"),
    ]
    for fields in confirmations:
        assert await post(http, skrill_account, headers, urlencode(fields).encode()) == 200
    assert (await current(db, paid_later.payment.id)).status == PaymentStatus.COMPLETED
    flagged = await current(db, wrong.payment.id)
    assert flagged.status == PaymentStatus.FAILED and flagged.flagged_reason
    async with db.session() as session:
        assert await balance_of(session, party.id) == -2500
