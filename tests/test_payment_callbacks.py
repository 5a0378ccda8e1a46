"""Payments through processor accounts and the callbacks their processors send, end to end
over the app's ``/callbacks/{account}`` with the simulator signing its notifications: a card
stored and charged through the routed account, a 3-D Secure charge left PENDING with its
address then settled by a notification, success, a duplicate applied once, a forged one
(401, nothing written), a wrong amount (flagged, not credited), a chargeback (REVERSED,
balance back, the invoice reopened, the ledger still healthy), an unknown account (404)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from billing import ledger, payments
from billing.card_charges import within
from billing.db import Database
from billing.errors import UserError
from billing.models import (
    Invoice,
    InvoiceStatus,
    LedgerTransaction,
    Payment,
    PaymentStatus,
    ProcessorNotification,
    TransactionKind,
)
from billing.payment_systems import IncomingRequest, MethodKind, NotificationKind
from billing.processor_accounts import AccountInput, create_account
from processors.simulator import notification_request
from tests.factories import (
    admin_viewer,
    balance_of,
    issue_invoice,
    new_party,
    store_card,
)
from tests.graphql_support import table_contents

pytest_plugins = ["tests.graphql_fixtures"]

SECRET = "whsec_simulated_for_tests"
THREE_D_SECURE = "4000002760003184"
FAKE_3DS = "http://simulator.test"


@pytest.fixture
async def account_id(db: Database) -> int:
    """The provider's simulator account (USD, minimum 1.00, cards), signing with SECRET."""
    async with db.transaction() as session:
        made = await create_account(
            session,
            admin_viewer(),
            AccountInput(
                name="Simulated cards",
                processor="simulator",
                credentials={"webhook_secret": SECRET},
                base_url=FAKE_3DS,
                minimums=[("USD", "1.00")],
                method_kinds=[MethodKind.VISA, MethodKind.MASTERCARD],
            ),
        )
    return made.id


async def post(http: httpx.AsyncClient, account: int, request: IncomingRequest) -> httpx.Response:
    return await http.post(f"/callbacks/{account}", content=request.body, headers=request.headers)


def callback(payment: Payment, kind: NotificationKind, **fields: Any) -> IncomingRequest:
    given: dict[str, Any] = {
        "event_id": "evt_1",
        "idempotency_key": payment.processor_key,
        "reference": payment.processor_reference,
        "amount": payment.amount,
        "currency": payment.currency,
        **fields,
    }
    return notification_request(SECRET, kind, **given)


async def pay(
    db: Database, customer_id: int, amount: int | None, invoice_id: int | None, key: str = "k"
) -> Payment:
    async with db.transaction() as session:
        return await payments.pay_with_payment_method(
            within(session), admin_viewer(), customer_id, amount, invoice_id, None, key
        )


async def current(db: Database, payment_id: int) -> Payment:
    async with db.session() as session:
        found = await session.get(Payment, payment_id)
    assert found is not None
    return found


async def test_a_card_is_stored_and_charged_through_the_routed_account(
    db: Database, account_id: int
) -> None:
    party = await new_party(db)
    card = await store_card(db, party)
    assert (card.processor, card.processor_account_id) == ("simulator", account_id)
    payment = await pay(db, party.id, 2500, None)
    assert (payment.status, payment.processor_account_id) == (PaymentStatus.COMPLETED, account_id)
    with pytest.raises(UserError) as caught:
        await pay(db, party.id, 99, None, "small")
    assert caught.value.code == "AMOUNT_BELOW_MINIMUM"


async def test_a_3ds_charge_waits_with_its_address_then_a_notification_settles_it(
    db: Database, http: httpx.AsyncClient, account_id: int
) -> None:
    party = await new_party(db)
    invoice = await issue_invoice(db, party, 4000)
    await store_card(db, party, THREE_D_SECURE)
    payment = await pay(db, party.id, None, invoice.id)
    assert payment.status == PaymentStatus.PENDING
    # The account's config reached the charge: its address is where the customer confirms.
    assert payment.action_url is not None and payment.action_url.startswith(f"{FAKE_3DS}/3ds/")
    async with db.session() as session:
        assert await balance_of(session, party.id) == 4000

    answer = await post(http, account_id, callback(payment, NotificationKind.SUCCEEDED))
    assert (answer.status_code, answer.json()) == (200, {"received": True})
    settled = await current(db, payment.id)
    assert settled.status == PaymentStatus.COMPLETED and settled.transaction_id is not None
    async with db.session() as session:
        assert await balance_of(session, party.id) == 0
        assert (await session.get(Invoice, invoice.id)).status == InvoiceStatus.PAID  # type: ignore[union-attr]


async def test_a_duplicate_is_acknowledged_and_applied_once(
    db: Database, http: httpx.AsyncClient, account_id: int
) -> None:
    party = await new_party(db)
    await store_card(db, party, THREE_D_SECURE)
    payment = await pay(db, party.id, 3000, None)
    request = callback(payment, NotificationKind.SUCCEEDED, event_id="evt_twice")
    for _ in range(2):
        assert (await post(http, account_id, request)).status_code == 200
    async with db.session() as session:
        assert await balance_of(session, party.id) == -3000
        kinds = (await session.scalars(select(LedgerTransaction.kind))).all()
        assert kinds.count(TransactionKind.PAYMENT) == 1
        notes = (await session.scalars(select(ProcessorNotification))).all()
    assert [(n.event_id, n.outcome, n.payment_id) for n in notes] == [
        ("evt_twice", "APPLIED", payment.id)
    ]


async def test_a_forged_callback_gets_401_and_writes_nothing(
    db: Database, http: httpx.AsyncClient, account_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    party = await new_party(db)
    await store_card(db, party, THREE_D_SECURE)
    payment = await pay(db, party.id, 3000, None)
    genuine = callback(payment, NotificationKind.SUCCEEDED)
    forged = notification_request(
        "not-the-secret",
        NotificationKind.SUCCEEDED,
        event_id="evt_1",
        idempotency_key=payment.processor_key,
        amount=3000,
        currency="USD",
    )
    unsigned = IncomingRequest("POST", "/", {"content-type": "application/json"}, genuine.body)
    stale = notification_request(
        SECRET,
        NotificationKind.SUCCEEDED,
        event_id="evt_1",
        idempotency_key=payment.processor_key,
        timestamp=1_000_000_000,
    )
    before = await table_contents(db)
    with caplog.at_level(logging.INFO):
        for request in (forged, unsigned, stale):
            assert (await post(http, account_id, request)).status_code == 401
    assert await table_contents(db) == before
    assert genuine.body.decode() not in caplog.text
    assert str(payment.processor_key) not in caplog.text


async def test_a_wrong_amount_is_flagged_and_never_credited(
    db: Database, http: httpx.AsyncClient, account_id: int
) -> None:
    party = await new_party(db)
    await store_card(db, party, THREE_D_SECURE)
    payment = await pay(db, party.id, 3000, None)
    for event, fields in (("evt_amount", {"amount": 30}), ("evt_cur", {"currency": "EUR"})):
        request = callback(payment, NotificationKind.SUCCEEDED, event_id=event, **fields)
        assert (await post(http, account_id, request)).status_code == 200
    flagged = await current(db, payment.id)
    assert flagged.status == PaymentStatus.PENDING
    assert flagged.flagged_reason is not None and "EUR" in flagged.flagged_reason
    async with db.session() as session:
        assert await balance_of(session, party.id) == 0
        outcomes = (await session.scalars(select(ProcessorNotification.outcome))).all()
    assert sorted(outcomes) == ["FLAGGED", "FLAGGED"]


async def test_a_chargeback_reverses_the_credit_and_reopens_the_invoice(
    db: Database, http: httpx.AsyncClient, account_id: int
) -> None:
    party = await new_party(db)
    invoice = await issue_invoice(db, party, 4000)
    await store_card(db, party)
    payment = await pay(db, party.id, None, invoice.id)
    assert payment.status == PaymentStatus.COMPLETED
    request = callback(payment, NotificationKind.REVERSED, event_id="evt_dispute")
    assert (await post(http, account_id, request)).status_code == 200
    assert (await post(http, account_id, request)).status_code == 200
    reversed_ = await current(db, payment.id)
    assert reversed_.status == PaymentStatus.REVERSED
    async with db.session() as session:
        assert await balance_of(session, party.id) == 4000
        reopened = await session.get(Invoice, invoice.id)
        assert reopened is not None and reopened.status != InvoiceStatus.PAID
        kinds = (await session.scalars(select(LedgerTransaction.kind))).all()
        assert kinds.count(TransactionKind.REVERSAL) == 1
        assert await ledger.verify_balances(session) == []
        assert await ledger.unbalanced_transactions(session) == []
    # A failure notice after the fact changes nothing.
    late = callback(payment, NotificationKind.FAILED, event_id="evt_late")
    assert (await post(http, account_id, late)).status_code == 200
    assert (await current(db, payment.id)).status == PaymentStatus.REVERSED


async def test_a_failure_notice_fails_a_pending_payment(
    db: Database, http: httpx.AsyncClient, account_id: int
) -> None:
    party = await new_party(db)
    await store_card(db, party, THREE_D_SECURE)
    payment = await pay(db, party.id, 3000, None)
    request = callback(payment, NotificationKind.FAILED, event_id="evt_failed")
    assert (await post(http, account_id, request)).status_code == 200
    failed = await current(db, payment.id)
    assert failed.status == PaymentStatus.FAILED and failed.transaction_id is None


async def test_an_unknown_account_is_404_and_another_accounts_payment_is_not_touched(
    db: Database, http: httpx.AsyncClient, account_id: int
) -> None:
    party = await new_party(db)
    await store_card(db, party, THREE_D_SECURE)
    payment = await pay(db, party.id, 3000, None)
    request = callback(payment, NotificationKind.SUCCEEDED)
    assert (await post(http, account_id + 1000, request)).status_code == 404
    async with db.transaction() as session:
        other = await create_account(
            session,
            admin_viewer(),
            AccountInput(
                name="Other",
                processor="simulator",
                credentials={"webhook_secret": SECRET},
                minimums=[("EUR", "0")],
                method_kinds=[MethodKind.VISA],
            ),
        )
    assert (await post(http, other.id, request)).status_code == 200
    assert (await current(db, payment.id)).status == PaymentStatus.PENDING
