"""PayNearMe (:mod:`processors.paynearme`) against its fake (:mod:`processors.fakes.paynearme`)
over real HTTP on loopback: the signature worked as PayNearMe's documentation works it, the
standing order behind a slip (once per reference), the three callbacks verified and read, the
XML answers, a customer paying at a store through to a local receiver, and no secret in logs or
errors."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing.errors import UserError
from billing.payment_systems import (
    ForgedNotification,
    IncomingRequest,
    Mode,
    Notification,
    NotificationKind,
    Payer,
    ProcessorConfig,
    Slip,
)
from billing.processing import ProcessorError, ProcessorTimeout
from processors.fakes.paynearme import (
    AUTHORIZATION,
    CONFIRMATION,
    RETAILERS,
    REVERSAL,
    SECRET_KEY,
    SITE_IDENTIFIER,
    FakePayNearMe,
)
from processors.paynearme import XML_NAMESPACE, PayNearMeProcessor, signature
from tests.bitcoin_chain import LiveServer, serving

_CREDENTIALS = {"site_identifier": SITE_IDENTIFIER, "secret_key": SECRET_KEY}
_T = f"{{{XML_NAMESPACE}}}"
PAYER = Payer(customer_id=42, name="Ada Lovelace", email="ada@example.test")


@pytest.fixture(scope="module")
def fake() -> FakePayNearMe:
    return FakePayNearMe(hang_seconds=1.5)


@pytest.fixture(scope="module")
def server(fake: FakePayNearMe) -> Iterator[LiveServer]:
    with serving(fake.app) as live:
        yield live


def _processor(
    url: str,
    *,
    mode: Mode = Mode.TEST,
    credentials: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> PayNearMeProcessor:
    """The processor against the fake at ``url``, with ``credentials`` replacing the fake's;
    ``timeout`` is short (below the fake's ``hang_seconds``) only where a test hangs the fake,
    so a loaded machine does not time out the others."""
    config = ProcessorConfig(
        credentials={**_CREDENTIALS, **(credentials or {})}, base_url=url, mode=mode, account_id=3
    )
    return PayNearMeProcessor(config=config, timeout=timeout)


@pytest.fixture
def processor(server: LiveServer) -> PayNearMeProcessor:
    return _processor(server.url)


_references = iter(range(1, 10_000))


def _reference() -> str:
    return f"slip-{next(_references)}"


def _incoming(params: dict[str, str], kind: str | None, method: str = "GET") -> IncomingRequest:
    """The callback as kassa receives it on ``/callbacks/3?pnm_callback=kind``: parameters in
    the query string (GET) or as a form body (POST)."""
    marker = {} if kind is None else {"pnm_callback": kind}
    if method == "GET":
        return IncomingRequest("GET", "/callbacks/3", {}, b"", {**params, **marker})
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return IncomingRequest("POST", "/callbacks/3", headers, urlencode(params).encode(), marker)


async def _order(fake: FakePayNearMe, processor: PayNearMeProcessor) -> tuple[Slip, dict[str, Any]]:
    slip = await processor.create_slip(PAYER, "USD", _reference())
    return slip, fake.orders[slip.external_id]


# --- the signature ----------------------------------------------------------------------------


def test_the_signature_is_the_documented_hmac_over_the_sorted_parameters() -> None:
    """PayNearMe's Authentication page: these create_order parameters, sorted and
    concatenated, under the secret key ab7b539ea1317cca67c63c552, sign as 65c694f4…."""
    params = {
        "site_identifier": "S2155373459",
        "timestamp": "1636142061",
        "version": "3.0",
        "signature": "",
        "order_amount": "500",
        "order_currency": "USD",
        "site_customer_identifier": "11223344",
        "order_type": "any",
        "order_is_standing": "true",
    }
    assert signature(params, "ab7b539ea1317cca67c63c552") == (
        "65c694f4b632187aa02fc4144cdd374373307f0a200448c9e53f2e47d84b3b82"
    )


# --- slips -----------------------------------------------------------------------------------


async def test_a_slip_is_a_standing_any_amount_order_for_the_customer(
    fake: FakePayNearMe, processor: PayNearMeProcessor
) -> None:
    reference = _reference()
    slip = await processor.create_slip(PAYER, "usd", reference)
    order = fake.orders[slip.external_id]
    assert (order["order_type"], order["order_is_standing"], order["order_currency"]) == (
        "any",
        True,
        "USD",
    )
    assert order["site_order_identifier"] == reference
    assert order["customer"]["site_customer_identifier"] == "42"
    assert order["customer"]["pnm_customer_addressee"] == PAYER.name
    assert slip.payment_identifier == order["retailers"][0]["slip"]["full_encoding"]
    assert slip.external_id == str(order["pnm_order_identifier"])
    assert slip.where_to_pay == RETAILERS
    assert slip.slip_url is not None
    async with httpx.AsyncClient() as client:
        page = await client.get(slip.slip_url)
    assert page.status_code == 200 and slip.payment_identifier in page.text


async def test_asking_again_for_a_reference_returns_the_same_order(
    fake: FakePayNearMe, processor: PayNearMeProcessor
) -> None:
    reference = _reference()
    first = await processor.create_slip(PAYER, "USD", reference)
    before = len(fake.orders)
    again = await processor.create_slip(PAYER, "USD", reference)
    assert again == first and len(fake.orders) == before
    other = await processor.create_slip(PAYER, "USD", _reference())
    assert other.external_id != first.external_id


async def test_two_racing_requests_for_one_reference_make_one_order(
    fake: FakePayNearMe, processor: PayNearMeProcessor
) -> None:
    reference = _reference()
    slips = await asyncio.gather(
        *(processor.create_slip(PAYER, "USD", reference) for _ in range(3))
    )
    assert len({slip.external_id for slip in slips}) == 1
    assert [o for o in fake.orders.values() if o["site_order_identifier"] == reference] != []
    assert sum(o["site_order_identifier"] == reference for o in fake.orders.values()) == 1


async def test_only_usd_is_taken_and_nothing_is_asked_otherwise(
    fake: FakePayNearMe, processor: PayNearMeProcessor
) -> None:
    calls = len(fake.calls)
    with pytest.raises(UserError) as refused:
        await processor.create_slip(PAYER, "EUR", _reference())
    assert refused.value.code == "UNSUPPORTED_CURRENCY" and len(fake.calls) == calls


@pytest.mark.parametrize("wrong", [{"secret_key": "not-it"}, {"site_identifier": "S1"}])
async def test_wrong_credentials_are_the_accounts_configuration_error(
    server: LiveServer, wrong: dict[str, str]
) -> None:
    with pytest.raises(ProcessorError) as refused:
        await _processor(server.url, credentials=wrong).create_slip(PAYER, "USD", _reference())
    assert refused.value.code == "PROCESSOR_AUTHENTICATION"


async def test_a_live_account_talks_to_paynearme_over_https_only(
    fake: FakePayNearMe, server: LiveServer
) -> None:
    calls = len(fake.calls)
    with pytest.raises(ProcessorError) as refused:
        await _processor(server.url, mode=Mode.LIVE).create_slip(PAYER, "USD", _reference())
    assert refused.value.code == "INSECURE_URL" and len(fake.calls) == calls


async def test_no_answer_in_time_is_a_timeout(fake: FakePayNearMe, server: LiveServer) -> None:
    fake.hang()
    with pytest.raises(ProcessorTimeout):
        await _processor(server.url, timeout=0.5).create_slip(PAYER, "USD", _reference())


# --- callbacks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("callback", "kind"),
    [
        (AUTHORIZATION, NotificationKind.AUTHORIZATION),
        (CONFIRMATION, NotificationKind.SUCCEEDED),
        (REVERSAL, NotificationKind.REVERSED),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_each_signed_callback_reads_as_its_kind(
    fake: FakePayNearMe,
    processor: PayNearMeProcessor,
    callback: str,
    kind: NotificationKind,
    method: str,
) -> None:
    _, order = await _order(fake, processor)
    params = fake.callback_params(callback, order, "700000000001", "12.50")
    notification = processor.parse_notification(_incoming(params, callback, method))
    assert notification.kind == kind
    assert (notification.amount, notification.currency) == (1250, "USD")
    assert notification.processor_reference == "700000000001"
    assert notification.idempotency_key == order["site_order_identifier"]


async def test_a_json_body_is_read_like_a_query(
    fake: FakePayNearMe, processor: PayNearMeProcessor
) -> None:
    _, order = await _order(fake, processor)
    params = fake.callback_params(CONFIRMATION, order, "700000000002", "3.05")
    request = IncomingRequest(
        "POST",
        "/callbacks/3",
        {"content-type": "application/json"},
        json.dumps(params).encode(),
        {"pnm_callback": CONFIRMATION},
    )
    notification = processor.parse_notification(request)
    assert (notification.kind, notification.amount) == (NotificationKind.SUCCEEDED, 305)


async def test_a_resent_confirmation_is_the_same_event(
    fake: FakePayNearMe, processor: PayNearMeProcessor
) -> None:
    _, order = await _order(fake, processor)
    first = fake.callback_params(CONFIRMATION, order, "700000000003", "10.00")
    resent = fake.callback_params(
        CONFIRMATION, order, "700000000003", "10.00", timestamp=time.time() + 1
    )
    one = processor.parse_notification(_incoming(first, CONFIRMATION))
    two = processor.parse_notification(_incoming(resent, CONFIRMATION))
    assert one.event_id == two.event_id
    asked = fake.callback_params(AUTHORIZATION, order, "700000000003", "10.00")
    assert processor.parse_notification(_incoming(asked, AUTHORIZATION)).event_id != one.event_id
    reversed_ = fake.callback_params(REVERSAL, order, "700000000003", "10.00")
    assert processor.parse_notification(_incoming(reversed_, REVERSAL)).event_id != one.event_id


async def test_forged_tampered_stale_or_foreign_callbacks_are_refused(
    fake: FakePayNearMe, processor: PayNearMeProcessor
) -> None:
    _, order = await _order(fake, processor)
    good = fake.callback_params(CONFIRMATION, order, "700000000004", "10.00")
    other_secret = FakePayNearMe(secret_key="someone else's")
    other_site = FakePayNearMe(site_identifier="S0000000002")
    refused = [
        other_secret.callback_params(CONFIRMATION, order, "700000000004", "10.00"),
        {**good, "payment_amount": "1000.00"},  # changed after signing
        {k: v for k, v in good.items() if k != "signature"},
        {**good, "signature": "ünïcödé"},
        fake.callback_params(
            CONFIRMATION, order, "700000000004", "10.00", timestamp=time.time() - 301
        ),
        fake.callback_params(
            CONFIRMATION, order, "700000000004", "10.00", timestamp=time.time() + 301
        ),
        other_site.callback_params(CONFIRMATION, order, "700000000004", "10.00"),
    ]
    for params in refused:
        with pytest.raises(ForgedNotification):
            processor.parse_notification(_incoming(params, CONFIRMATION))
    both = _incoming(good, CONFIRMATION, "POST")
    twice = IncomingRequest(
        both.method, both.path, both.headers, both.body, {**both.query, "payment_amount": "1.00"}
    )
    with pytest.raises(ForgedNotification):
        processor.parse_notification(twice)


async def test_a_callback_url_without_its_type_is_not_guessed(
    fake: FakePayNearMe, processor: PayNearMeProcessor
) -> None:
    _, order = await _order(fake, processor)
    params = fake.callback_params(CONFIRMATION, order, "700000000005", "10.00")
    with pytest.raises(ProcessorError) as unreadable:
        processor.parse_notification(_incoming(params, None))
    assert unreadable.value.code == "MALFORMED_NOTIFICATION"


@pytest.mark.parametrize("amount", ["0.00", "-5.00", "1.005", "ten"])
async def test_a_signed_callback_without_a_positive_amount_is_unreadable(
    fake: FakePayNearMe, processor: PayNearMeProcessor, amount: str
) -> None:
    _, order = await _order(fake, processor)
    params = fake.callback_params(CONFIRMATION, order, "700000000011", amount)
    with pytest.raises(ProcessorError) as unreadable:
        processor.parse_notification(_incoming(params, CONFIRMATION))
    assert unreadable.value.code == "MALFORMED_NOTIFICATION"


async def test_a_declined_confirmation_and_a_test_callback_in_live_credit_nothing(
    fake: FakePayNearMe, processor: PayNearMeProcessor, server: LiveServer
) -> None:
    _, order = await _order(fake, processor)
    declined = fake.callback_params(CONFIRMATION, order, "700000000006", "10.00", status="decline")
    assert (
        processor.parse_notification(_incoming(declined, CONFIRMATION)).kind
        == NotificationKind.IGNORED
    )
    test = fake.callback_params(CONFIRMATION, order, "700000000007", "10.00")
    test = {**test, "test": "true"}
    test["signature"] = signature(test, SECRET_KEY)
    live = _processor(server.url, mode=Mode.LIVE)
    assert live.parse_notification(_incoming(test, CONFIRMATION)).kind == NotificationKind.IGNORED
    assert (
        processor.parse_notification(_incoming(test, CONFIRMATION)).kind
        == NotificationKind.SUCCEEDED
    )


# --- answers ---------------------------------------------------------------------------------


async def _authorization(
    fake: FakePayNearMe, processor: PayNearMeProcessor
) -> tuple[Notification, dict[str, Any]]:
    _, order = await _order(fake, processor)
    params = fake.callback_params(AUTHORIZATION, order, "700000000008", "20.00")
    return processor.parse_notification(_incoming(params, AUTHORIZATION)), order


async def test_accepting_an_authorization_answers_the_documented_xml(
    fake: FakePayNearMe, processor: PayNearMeProcessor
) -> None:
    notification, order = await _authorization(fake, processor)
    reply = processor.answer_authorization(notification, True)
    assert (reply.status, reply.content_type) == (200, "application/xml")
    root = ET.fromstring(reply.body)
    assert root.tag == f"{_T}payment_authorization_response"
    assert root.attrib["version"] == "3.0"
    authorization = root.find(f"{_T}authorization")
    assert authorization is not None
    assert authorization.findtext(f"{_T}pnm_order_identifier") == str(order["pnm_order_identifier"])
    assert authorization.findtext(f"{_T}accept_payment") == "yes"
    assert authorization.findtext(f"{_T}receipt")


async def test_declining_an_authorization_says_no_and_why_on_the_receipt(
    fake: FakePayNearMe, processor: PayNearMeProcessor
) -> None:
    notification, order = await _authorization(fake, processor)
    reply = processor.answer_authorization(notification, False, "This account is closed.")
    authorization = ET.fromstring(reply.body).find(f"{_T}authorization")
    assert authorization is not None
    assert authorization.findtext(f"{_T}accept_payment") == "no"
    assert authorization.findtext(f"{_T}receipt") == "This account is closed."
    assert authorization.findtext(f"{_T}pnm_order_identifier") == str(order["pnm_order_identifier"])
    # an authorization only acknowledged (never decided) is declined, not taken on a guess
    undecided = ET.fromstring(processor.acknowledge(notification).body)
    assert undecided.findtext(f"{_T}authorization/{_T}accept_payment") == "no"


@pytest.mark.parametrize("callback", [CONFIRMATION, REVERSAL])
async def test_confirmations_and_reversals_are_acknowledged_with_the_order_echoed(
    fake: FakePayNearMe, processor: PayNearMeProcessor, callback: str
) -> None:
    _, order = await _order(fake, processor)
    params = fake.callback_params(callback, order, "700000000009", "20.00")
    reply = processor.acknowledge(processor.parse_notification(_incoming(params, callback)))
    assert (reply.status, reply.content_type) == (200, "application/xml")
    root = ET.fromstring(reply.body)
    assert root.tag == f"{_T}payment_confirmation_response"
    assert root.findtext(f"{_T}confirmation/{_T}pnm_order_identifier") == str(
        order["pnm_order_identifier"]
    )
    assert root.findtext(f"{_T}confirmation/{_T}pnm_payment_identifier") == "700000000009"


# --- a customer at the store -----------------------------------------------------------------


@dataclass
class Receiver:
    """A tiny site that verifies PayNearMe's callbacks with the processor and accepts (or
    declines) what it is asked."""

    processor: PayNearMeProcessor
    accept: bool = True
    received: list[Notification] = field(default_factory=list)

    async def callback(self, request: Request) -> Response:
        incoming = IncomingRequest(
            request.method,
            request.url.path,
            {k.lower(): v for k, v in request.headers.items()},
            await request.body(),
            dict(request.query_params),
        )
        try:
            notification = self.processor.parse_notification(incoming)
        except ForgedNotification:
            return Response("forged", 401)
        self.received.append(notification)
        if notification.kind is NotificationKind.AUTHORIZATION:
            reply = self.processor.answer_authorization(notification, self.accept, "Not today.")
        else:
            reply = self.processor.acknowledge(notification)
        return Response(reply.body, reply.status, media_type=reply.content_type)


@pytest.fixture
def receiver(processor: PayNearMeProcessor) -> Iterator[tuple[Receiver, str]]:
    site = Receiver(processor)
    app = Starlette(routes=[Route("/callbacks/1", site.callback, methods=["GET", "POST"])])
    with serving(app) as live:
        yield site, f"{live.url}/callbacks/1"


async def test_paying_at_a_store_is_authorized_confirmed_and_reversed(
    fake: FakePayNearMe,
    processor: PayNearMeProcessor,
    server: LiveServer,
    receiver: tuple[Receiver, str],
) -> None:
    site, url = receiver
    slip = await processor.create_slip(PAYER, "USD", _reference())
    async with httpx.AsyncClient(timeout=10) as client:
        paid = await client.post(
            f"{server.url}/_fake/pay",
            data={"order": slip.payment_identifier, "amount": "25.00", "callback_url": url},
        )
        assert paid.status_code == 200 and paid.json()["accepted"] is True
        payment_id = paid.json()["pnm_payment_identifier"]
        assert [n.kind for n in site.received] == [
            NotificationKind.AUTHORIZATION,
            NotificationKind.SUCCEEDED,
        ]
        assert all(n.amount == 2500 and n.processor_reference == payment_id for n in site.received)
        assert fake.deliveries[-1].status == 200
        assert fake.payments[payment_id]["status"] == "approved"
        reversed_ = await client.post(
            f"{server.url}/_fake/reverse",
            data={"pnm_payment_identifier": payment_id, "callback_url": url},
        )
    assert reversed_.json() == {"status": 200}
    assert site.received[-1].kind == NotificationKind.REVERSED
    assert site.received[-1].processor_reference == payment_id


async def test_a_declined_payment_is_not_taken_nor_confirmed(
    fake: FakePayNearMe, processor: PayNearMeProcessor, receiver: tuple[Receiver, str]
) -> None:
    site, url = receiver
    site.accept = False
    slip = await processor.create_slip(PAYER, "USD", _reference())
    outcome = await fake.pay_at_store(slip.external_id, "5.00", callback_url=url)
    assert outcome["accepted"] is False
    assert [n.kind for n in site.received] == [NotificationKind.AUTHORIZATION]
    assert outcome["pnm_payment_identifier"] not in fake.payments


async def test_secrets_never_reach_logs_or_errors(
    fake: FakePayNearMe,
    processor: PayNearMeProcessor,
    server: LiveServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    with pytest.raises(ProcessorError) as refused:
        await _processor(server.url, credentials={"secret_key": "wrong-secret"}).create_slip(
            PAYER, "USD", _reference()
        )
    messages.append(f"{refused.value.code} {refused.value.message}")
    fake.hang()
    with pytest.raises(ProcessorTimeout) as timed_out:
        await _processor(server.url, timeout=0.5).create_slip(PAYER, "USD", _reference())
    messages.append(timed_out.value.message)
    _, order = await _order(fake, processor)
    forged = FakePayNearMe(secret_key="wrong-secret").callback_params(
        CONFIRMATION, order, "700000000010", "1.00"
    )
    with pytest.raises(ForgedNotification) as forged_error:
        processor.parse_notification(_incoming(forged, CONFIRMATION))
    messages.append(forged_error.value.message)
    text = caplog.text + " ".join(messages) + repr(processor._config)
    for secret in (SECRET_KEY, "wrong-secret"):
        assert secret not in text
