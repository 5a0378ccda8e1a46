"""PayNearMe cash slips end to end (:mod:`billing.cash_slips`): the standing slip made once per
customer (concurrent first requests too), and a customer paying at a store through the fake
PayNearMe, whose signed GET callbacks reach kassa's ``/callbacks/{account}`` over real HTTP
(the app served on a loopback port): the authorization accepted, the confirmation credited
once (a resent one changes nothing), the reversal reversed with the ledger still healthy; a
closed or unknown customer's authorization refused; a forged callback 401 with nothing
written."""

from __future__ import annotations

import asyncio
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select, update

from app import create_app
from billing import cash_slips
from billing.db import Database
from billing.errors import UserError
from billing.models import (
    CashSlip,
    Customer,
    CustomerStatus,
    Invoice,
    InvoiceStatus,
    LedgerTransaction,
    Payment,
    PaymentChannel,
    PaymentStatus,
    TransactionKind,
)
from billing.payment_systems import Payer, ProcessorConfig
from billing.processor_accounts import AccountInput, create_account
from processors.fakes.paynearme import (
    CONFIRMATION,
    SECRET_KEY,
    SITE_IDENTIFIER,
    FakePayNearMe,
)
from processors.paynearme import PayNearMeProcessor
from resolvers.cash_slips import pdf_url
from settings import Settings
from tests.bitcoin_chain import LiveServer, serving
from tests.factories import (
    Party,
    admin_viewer,
    balance_of,
    customer_viewer,
    issue_invoice,
    ledger_problems,
    new_party,
)
from tests.graphql_support import table_contents

CREDENTIALS = {"site_identifier": SITE_IDENTIFIER, "secret_key": SECRET_KEY}


@pytest.fixture(scope="module")
def fake() -> FakePayNearMe:
    return FakePayNearMe()


@pytest.fixture(scope="module")
def paynearme(fake: FakePayNearMe) -> Iterator[LiveServer]:
    with serving(fake.app) as live:
        yield live


@pytest.fixture
def kassa(settings: Settings, db: Database) -> Iterator[LiveServer]:
    """The app on a loopback port (its own database connection, opened by its lifespan)."""
    with serving(create_app(settings)) as server:
        yield server


@pytest.fixture
async def account_id(
    db: Database, fake: FakePayNearMe, paynearme: LiveServer, kassa: LiveServer
) -> int:
    """The provider's PayNearMe account against the fake, whose callbacks go to kassa."""
    async with db.transaction() as session:
        made = await create_account(
            session,
            admin_viewer(),
            AccountInput(
                name="PayNearMe",
                processor="paynearme",
                credentials=CREDENTIALS,
                base_url=paynearme.url,
                minimums=[("USD", "0.01")],
            ),
        )
    fake.callback_url = f"{kassa.url}/callbacks/{made.id}"
    return made.id


async def slip_of(db: Database, party: Party) -> CashSlip:
    slip_id = await cash_slips.request_slip(db.transaction, customer_viewer(party.id), party.id)
    async with db.session() as session:
        found = await session.get(CashSlip, slip_id)
    assert found is not None
    return found


def accepted(reply: str) -> bool:
    answer = ET.fromstring(reply).find("{*}authorization/{*}accept_payment")
    return answer is not None and answer.text == "yes"


async def test_the_slip_is_made_once_per_customer_even_when_asked_twice_at_once(
    db: Database, fake: FakePayNearMe, account_id: int
) -> None:
    party = await new_party(db)
    orders_before = len(fake.orders)
    first, second = await asyncio.gather(
        cash_slips.request_slip(db.transaction, admin_viewer(), party.id),
        cash_slips.request_slip(db.transaction, customer_viewer(party.id), party.id),
    )
    again = await slip_of(db, party)
    assert first == second == again.id
    assert len(fake.orders) == orders_before + 1
    order = fake.orders[again.external_id]
    assert order["site_order_identifier"] == f"slip-{party.id}"
    assert again.payment_identifier == order["retailers"][0]["slip"]["full_encoding"]
    assert cash_slips.where_to_pay(again)[:2] == ["7-Eleven", "ACE Cash Express"]
    async with db.session() as session:
        assert len((await session.scalars(select(CashSlip))).all()) == 1


async def test_no_slip_without_a_paynearme_account_or_for_someone_else(db: Database) -> None:
    party, other = await new_party(db), await new_party(db)
    with pytest.raises(UserError) as caught:
        await cash_slips.request_slip(db.transaction, admin_viewer(), party.id)
    assert caught.value.code == "CASH_SLIPS_NOT_OFFERED"
    with pytest.raises(UserError):
        await cash_slips.request_slip(db.transaction, customer_viewer(other.id), party.id)


async def test_paying_at_a_store_credits_once_and_a_reversal_takes_it_back(
    db: Database, fake: FakePayNearMe, account_id: int
) -> None:
    party = await new_party(db)
    invoice = await issue_invoice(db, party, 4000)
    slip = await slip_of(db, party)

    paid = await fake.pay_at_store(slip.payment_identifier, "40.00")
    assert paid["accepted"] is True and paid["confirmation_status"] == 200
    asked, confirmed = fake.deliveries[-2:]
    assert accepted(asked.reply) and "payment_confirmation_response" in confirmed.reply
    payment_id = paid["pnm_payment_identifier"]
    async with db.session() as session:
        [payment] = (await session.scalars(select(Payment))).all()
        assert (payment.method, payment.status, payment.amount) == (
            PaymentChannel.PAYNEARME,
            PaymentStatus.COMPLETED,
            4000,
        )
        assert payment.processor_key == f"paynearme:{account_id}:{payment_id}"
        assert await balance_of(session, party.id) == 0
        assert (await session.get(Invoice, invoice.id)).status == InvoiceStatus.PAID  # type: ignore[union-attr]

    # PayNearMe resends a confirmation until it is answered: the second one changes nothing.
    async with httpx.AsyncClient() as client:
        resent = await client.get(
            f"{fake.callback_url}?pnm_callback={CONFIRMATION}&{urlencode(confirmed.params)}"
        )
    assert resent.status_code == 200 and payment_id in resent.text
    async with db.session() as session:
        assert len((await session.scalars(select(Payment))).all()) == 1
        kinds = (await session.scalars(select(LedgerTransaction.kind))).all()
        assert kinds.count(TransactionKind.PAYMENT) == 1

    reversal = await fake.reverse(payment_id)
    assert reversal.status == 200 and "payment_confirmation_response" in reversal.reply
    async with db.session() as session:
        reversed_payment = await session.get(Payment, payment.id, populate_existing=True)
        assert reversed_payment is not None
        assert reversed_payment.status == PaymentStatus.REVERSED
        assert await balance_of(session, party.id) == 4000
        assert (await session.get(Invoice, invoice.id)).status != InvoiceStatus.PAID  # type: ignore[union-attr]
        assert await ledger_problems(session) == []


async def test_a_closed_or_unknown_customer_is_refused_at_the_register(
    db: Database, fake: FakePayNearMe, paynearme: LiveServer, account_id: int
) -> None:
    party = await new_party(db)
    slip = await slip_of(db, party)
    async with db.session() as session:
        assert await cash_slips.offered(session, customer_viewer(party.id), party.id)
    async with db.transaction() as session:
        await session.execute(
            update(Customer).where(Customer.id == party.id).values(status=CustomerStatus.CLOSED)
        )
    refused = await fake.pay_at_store(slip.payment_identifier, "10.00")
    assert refused["accepted"] is False
    assert "closed" in fake.deliveries[-1].reply
    async with db.session() as session:  # nor does the portal offer the slip any more
        assert not await cash_slips.offered(session, admin_viewer(), party.id)

    # An order kassa never made (another site's reference on the same PayNearMe site).
    stranger = PayNearMeProcessor(
        config=ProcessorConfig(credentials=CREDENTIALS, base_url=paynearme.url)
    )
    order = await stranger.create_slip(Payer(999_999, "Nobody"), "USD", "slip-999999")
    refused = await fake.pay_at_store(order.payment_identifier, "10.00")
    assert refused["accepted"] is False
    assert "Unknown account" in fake.deliveries[-1].reply
    async with db.session() as session:
        assert (await session.scalars(select(Payment))).all() == []


async def test_a_forged_callback_gets_401_and_writes_nothing(
    db: Database, fake: FakePayNearMe, account_id: int
) -> None:
    party = await new_party(db)
    slip = await slip_of(db, party)
    order = fake.orders[slip.external_id]
    params = fake.callback_params(CONFIRMATION, order, "555000111", "25.00")
    params["payment_amount"] = "2500.00"  # changed after signing
    before = await table_contents(db)
    async with httpx.AsyncClient() as client:
        answer = await client.get(
            f"{fake.callback_url}?pnm_callback={CONFIRMATION}&{urlencode(params)}"
        )
    assert answer.status_code == 401
    assert await table_contents(db) == before


async def test_the_pdf_behind_the_signed_link_scans_to_the_slip_s_identifier(
    db: Database, settings: Settings, kassa: LiveServer, account_id: int, tmp_path: Path
) -> None:
    party = await new_party(db)
    slip = await slip_of(db, party)
    async with httpx.AsyncClient(base_url=kassa.url) as client:
        answer = await client.get(urlsplit(pdf_url(settings, party.id)).path)
        tampered = await client.get(urlsplit(pdf_url(settings, party.id)).path[:-6] + "x.pdf")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    assert tampered.status_code == 404
    (tmp_path / "slip.pdf").write_bytes(answer.content)
    await asyncio.to_thread(
        subprocess.run,
        ["pdftoppm", "-png", "-r", "150", str(tmp_path / "slip.pdf"), str(tmp_path / "page")],
        check=True,
    )
    [page] = tmp_path.glob("page*.png")
    codes = zxingcpp.read_barcodes(Image.open(page))
    assert [(code.text, code.format) for code in codes] == [
        (slip.payment_identifier, zxingcpp.BarcodeFormat.Code128)
    ]
