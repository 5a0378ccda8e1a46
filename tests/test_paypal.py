"""PayPal (:mod:`processors.paypal`) against its fake (:mod:`processors.fakes.paypal`) over real
HTTP on loopback: the redirect contract, then what is PayPal's own — ``PayPal-Request-Id`` on
the create and the capture, the OAuth token reused until it expires, a capture of an order
nobody approved, amounts in each currency's PayPal decimals, webhooks verified by PayPal's
verification call (async and blocking), refunds, and no credential in logs or errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from billing.payment_systems import (
    ForgedNotification,
    IncomingRequest,
    Mode,
    NotificationKind,
    ProcessorConfig,
    RedirectRequest,
    RedirectStart,
)
from billing.processing import ChargeOutcome, ChargeRefused, ProcessorError, ProcessorTimeout
from processors.fakes.paypal import CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID, FakePayPal
from processors.paypal import PayPalProcessor, paypal_value
from tests.bitcoin_chain import LiveServer, serving
from tests.redirect_browser import Inbox
from tests.redirect_contract import Choice, RedirectContract
from tests.redirect_harness import FakeHarness, request_with

_EVENTS = {
    NotificationKind.SUCCEEDED: "PAYMENT.CAPTURE.COMPLETED",
    NotificationKind.FAILED: "PAYMENT.CAPTURE.DENIED",
    NotificationKind.REFUNDED: "PAYMENT.CAPTURE.REFUNDED",
    NotificationKind.REVERSED: "PAYMENT.CAPTURE.REVERSED",
}

#: Past the slowest honest answer on a busy test machine, well short of the fake's hang.
_TIMEOUT = 1.5


def _config(url: str, **credentials: str) -> ProcessorConfig:
    return ProcessorConfig(
        credentials={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "webhook_id": WEBHOOK_ID,
            **credentials,
        },
        mode=Mode.TEST,
        base_url=url,
        account_id=3,
    )


@pytest.fixture(scope="module")
def fake() -> FakePayPal:
    return FakePayPal(hang_seconds=4.0)


@pytest.fixture(scope="module")
def server(fake: FakePayPal) -> Iterator[LiveServer]:
    with serving(fake.app) as live:
        yield live


@pytest.fixture
def processor(server: LiveServer) -> PayPalProcessor:
    """A short timeout, so a hang gives up quickly, yet long enough for a loaded machine."""
    return PayPalProcessor(config=_config(server.url), timeout=_TIMEOUT)


@dataclass
class PayPalHarness(FakeHarness[FakePayPal, PayPalProcessor]):
    server_url: str
    currency: str = "USD"
    amount: int = 1250
    signs_notifications: bool = True

    def expire(self, start: RedirectStart) -> None:
        self.fake.expire(start.external_id)

    def notification(
        self,
        start: RedirectStart,
        request: RedirectRequest,
        kind: NotificationKind,
        *,
        amount: int | None = None,
        event_id: str = "evt_1",
    ) -> IncomingRequest:
        value = None if amount is None else paypal_value(amount, request.currency)
        event = self.fake.capture_event(
            start.external_id, _EVENTS[kind], amount=value, event_id=event_id
        )
        headers, body = self.fake.webhook(event, self.server_url)
        return IncomingRequest("POST", "/callbacks/3", headers, body)

    def forged(self, notification: IncomingRequest) -> IncomingRequest:
        headers = {**notification.headers, "paypal-transmission-sig": "Zm9yZ2VkIHNpZ25hdHVyZQ=="}
        return replace(notification, headers=headers)


@pytest.fixture
def harness(fake: FakePayPal, processor: PayPalProcessor, server: LiveServer) -> PayPalHarness:
    return PayPalHarness(fake, processor, server.url)


class TestPayPalContract(RedirectContract):
    """The redirect contract, with the module's ``harness``."""


async def _paid(harness: PayPalHarness, **changes: Any) -> tuple[RedirectRequest, RedirectStart]:
    """A payment approved on the fake's page and captured by the processor."""
    request = request_with(harness, **changes)
    start = await harness.processor.start_redirect(request)
    query = await harness.pay(start, Choice.APPROVE)
    result = await harness.processor.complete_return(start, query)
    assert result.status == ChargeOutcome.SUCCEEDED
    return request, start


# --- requests --------------------------------------------------------------------------------


async def test_the_create_and_the_capture_carry_their_own_paypal_request_ids(
    harness: PayPalHarness,
) -> None:
    seen = len(harness.fake.requests)
    request, start = await _paid(harness)
    posts = [r for r in harness.fake.requests[seen:] if r.method == "POST"]
    assert [(r.path, r.request_id) for r in posts] == [
        ("/v2/checkout/orders", request.idempotency_key),
        (f"/v2/checkout/orders/{start.external_id}/capture", f"{request.idempotency_key}-capture"),
    ]


async def test_a_second_start_under_the_same_key_is_the_same_order(harness: PayPalHarness) -> None:
    request = request_with(harness)
    first = await harness.processor.start_redirect(request)
    again = await harness.processor.start_redirect(request)
    assert again.external_id == first.external_id
    assert len([o for o in harness.fake.orders.values()
                if o["purchase_units"][0]["custom_id"] == request.idempotency_key]) == 1  # fmt: skip


async def test_coming_back_twice_captures_once(harness: PayPalHarness) -> None:
    _, start = await _paid(harness)
    again = await harness.processor.complete_return(start, {"token": start.external_id})
    assert again.status == ChargeOutcome.SUCCEEDED
    order = harness.fake.orders[start.external_id]
    assert len(order["purchase_units"][0]["payments"]["captures"]) == 1


async def test_the_order_names_the_key_and_both_return_addresses(harness: PayPalHarness) -> None:
    request = request_with(harness)
    start = await harness.processor.start_redirect(request)
    order = harness.fake.orders[start.external_id]
    unit = order["purchase_units"][0]
    assert order["intent"] == "CAPTURE"
    assert (unit["custom_id"], unit["invoice_id"]) == (request.idempotency_key,) * 2
    assert (order["_return_url"], order["_cancel_url"]) == (request.return_url, request.cancel_url)
    assert start.url == f"{harness.server_url}/checkoutnow?token={start.external_id}"


# --- the access token ------------------------------------------------------------------------


async def test_the_access_token_is_shared_and_reused_until_it_expires() -> None:
    """Processors are made per request, so two of them share one token until it expires."""
    fake = FakePayPal()
    now = [1000.0]
    with serving(fake.app) as server:

        def processor() -> PayPalProcessor:
            return PayPalProcessor(config=_config(server.url), timeout=2.0, clock=lambda: now[0])

        harness = PayPalHarness(fake, processor(), server.url)
        start = await harness.processor.start_redirect(request_with(harness))
        await processor().redirect_status(start)
        await processor().start_redirect(request_with(harness))
        assert len(fake.tokens) == 1
        assert len({r.authorization for r in fake.requests}) == 1
        now[0] += fake.token_lifetime  # past expires_in: a new token before the next call
        await processor().redirect_status(start)
        assert len(fake.tokens) == 2
        assert fake.requests[-1].authorization != fake.requests[0].authorization


async def test_a_token_paypal_stopped_taking_is_replaced_once(
    fake: FakePayPal, processor: PayPalProcessor, harness: PayPalHarness
) -> None:
    start = await processor.start_redirect(request_with(harness))
    fake.tokens.clear()  # revoked at PayPal before its expiry
    status = await processor.redirect_status(start)
    assert status.status == ChargeOutcome.UNKNOWN
    assert len(fake.tokens) == 1


# --- capture ---------------------------------------------------------------------------------


async def test_a_capture_of_an_order_nobody_approved_is_not_a_success(
    harness: PayPalHarness,
) -> None:
    start = await harness.processor.start_redirect(request_with(harness))
    seen = len(harness.fake.requests)
    result = await harness.processor.complete_return(
        start, {"token": start.external_id, "PayerID": "ATTACKER"}
    )
    assert result.status == ChargeOutcome.UNKNOWN
    captures = [r for r in harness.fake.requests[seen:] if r.path.endswith("/capture")]
    assert captures == []  # nothing to capture before the payer approves
    assert harness.fake.orders[start.external_id]["status"] == "PAYER_ACTION_REQUIRED"


async def test_an_early_return_does_not_stop_the_capture_after_approval(
    harness: PayPalHarness,
) -> None:
    start = await harness.processor.start_redirect(request_with(harness))
    early = await harness.processor.complete_return(start, {"token": start.external_id})
    assert early.status == ChargeOutcome.UNKNOWN
    query = await harness.pay(start, Choice.APPROVE)
    result = await harness.processor.complete_return(start, query)
    assert result.status == ChargeOutcome.SUCCEEDED


async def test_the_declining_test_buyer_is_declined_with_paypals_issue(
    harness: PayPalHarness,
) -> None:
    start = await harness.processor.start_redirect(request_with(harness))
    query = await harness.pay(start, Choice.DECLINE)
    assert query["token"] == start.external_id and query["PayerID"]
    result = await harness.processor.complete_return(start, query)
    assert (result.status, result.decline_code) == (ChargeOutcome.DECLINED, "instrument_declined")


async def test_a_captured_payment_reports_the_capture_and_its_amount(
    harness: PayPalHarness,
) -> None:
    _, start = await _paid(harness, amount=4321)
    status = await harness.processor.redirect_status(start)
    capture = harness.fake.orders[start.external_id]["purchase_units"][0]["payments"]["captures"][0]
    assert (status.status, status.processor_reference) == (ChargeOutcome.SUCCEEDED, capture["id"])
    assert (status.amount, status.currency) == (4321, "USD")


async def test_an_expired_order_is_declined_as_expired(harness: PayPalHarness) -> None:
    start = await harness.processor.start_redirect(request_with(harness))
    harness.expire(start)
    result = await harness.processor.complete_return(start, {"token": start.external_id})
    assert (result.status, result.decline_code) == (ChargeOutcome.DECLINED, "expired")


async def test_a_hang_is_a_timeout(harness: PayPalHarness) -> None:
    start = await harness.processor.start_redirect(request_with(harness))
    harness.hang()
    with pytest.raises(ProcessorTimeout):
        await harness.processor.redirect_status(start)


# --- amounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "minor", "value"),
    [("USD", 1250, "12.50"), ("USD", 5, "0.05"), ("JPY", 1500, "1500"), ("HUF", 150000, "1500"),
     ("KWD", 12345, "12.345")],
)  # fmt: skip
def test_amounts_are_decimal_strings_in_paypals_decimals(
    currency: str, minor: int, value: str
) -> None:
    assert paypal_value(minor, currency) == value


def test_a_fraction_of_a_forint_is_refused() -> None:
    with pytest.raises(ChargeRefused):
        paypal_value(150050, "HUF")


@pytest.mark.parametrize(
    ("currency", "amount", "value"), [("JPY", 1500, "1500"), ("USD", 1999, "19.99")]
)
async def test_an_order_in_each_currency_is_paid_in_full(
    harness: PayPalHarness, currency: str, amount: int, value: str
) -> None:
    _, start = await _paid(harness, currency=currency, amount=amount)
    unit = harness.fake.orders[start.external_id]["purchase_units"][0]
    assert unit["amount"] == {"currency_code": currency, "value": value}
    status = await harness.processor.redirect_status(start)
    assert (status.amount, status.currency) == (amount, currency)


# --- webhooks --------------------------------------------------------------------------------


async def test_the_async_verification_accepts_paypals_and_refuses_a_forgery(
    harness: PayPalHarness,
) -> None:
    request, start = await _paid(harness)
    callback = harness.notification(start, request, NotificationKind.SUCCEEDED, event_id="WH-9")
    notification = await harness.processor.verify_notification(callback)
    assert (notification.event_id, notification.kind) == ("WH-9", NotificationKind.SUCCEEDED)
    assert (notification.idempotency_key, notification.amount) == (request.idempotency_key, 1250)
    with pytest.raises(ForgedNotification):
        await harness.processor.verify_notification(harness.forged(callback))


async def test_an_event_signed_for_another_webhook_or_altered_is_refused(
    harness: PayPalHarness, server: LiveServer
) -> None:
    request, start = await _paid(harness)
    callback = harness.notification(start, request, NotificationKind.SUCCEEDED)
    altered = replace(callback, body=callback.body.replace(b'"12.50"', b'"1.25"'))
    with pytest.raises(ForgedNotification):
        harness.processor.parse_notification(altered)
    elsewhere = PayPalProcessor(config=_config(server.url, webhook_id="OTHERWEBHOOK1"))
    with pytest.raises(ForgedNotification):
        elsewhere.parse_notification(callback)
    unsigned = replace(callback, headers={"content-type": "application/json"})
    with pytest.raises(ForgedNotification):
        harness.processor.parse_notification(unsigned)


@pytest.mark.parametrize(
    "kind", [NotificationKind.FAILED, NotificationKind.REFUNDED, NotificationKind.REVERSED]
)
async def test_capture_events_map_to_their_kinds_and_name_the_capture(
    harness: PayPalHarness, kind: NotificationKind
) -> None:
    request, start = await _paid(harness)
    capture = harness.fake.orders[start.external_id]["purchase_units"][0]["payments"]["captures"][0]
    notification = harness.processor.parse_notification(
        harness.notification(start, request, kind, event_id=f"WH-{kind}")
    )
    assert notification.kind == kind
    assert (notification.processor_reference, notification.idempotency_key) == (
        capture["id"],
        request.idempotency_key,
    )


async def test_an_event_kassa_does_not_track_is_ignored(harness: PayPalHarness) -> None:
    event = harness.fake.event("CHECKOUT.ORDER.APPROVED", {"id": "5O1"}, event_id="WH-x")
    headers, body = harness.fake.webhook(event, harness.server_url)
    notification = harness.processor.parse_notification(
        IncomingRequest("POST", "/callbacks/3", headers, body)
    )
    assert notification.kind == NotificationKind.IGNORED


# --- refunds ---------------------------------------------------------------------------------


async def test_a_partial_refund_then_one_beyond_what_is_left(harness: PayPalHarness) -> None:
    _, start = await _paid(harness, amount=1000)
    captured = await harness.processor.redirect_status(start)
    assert captured.processor_reference is not None
    first = await harness.processor.refund(captured.processor_reference, 600, "refund-a")
    again = await harness.processor.refund(captured.processor_reference, 600, "refund-a")
    assert (
        first.succeeded
        and again.succeeded
        and again.processor_reference == first.processor_reference
    )
    refused = await harness.processor.refund(captured.processor_reference, 600, "refund-b")
    assert not refused.succeeded and "not yet been refunded" in refused.message


# --- secrets ---------------------------------------------------------------------------------


async def test_no_credential_or_token_in_logs_or_errors(
    fake: FakePayPal, server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[ProcessorError] = []
    wrong = PayPalProcessor(config=_config(server.url, client_secret="sekrit-wrong-value"))
    harness = PayPalHarness(fake, wrong, server.url)
    with pytest.raises(ChargeRefused) as refused:
        await wrong.start_redirect(request_with(harness))
    assert refused.value.code == "PROCESSOR_AUTHENTICATION"
    errors.append(refused.value)
    right = PayPalProcessor(config=_config(server.url), timeout=_TIMEOUT)
    harness = PayPalHarness(fake, right, server.url)
    start = await right.start_redirect(request_with(harness))
    fake.hang()
    with pytest.raises(ProcessorTimeout) as timeout:
        await right.redirect_status(start)
    errors.append(timeout.value)
    tokens = list(fake.tokens)
    assert caplog.records
    for text in [caplog.text, *(f"{e!s} {e!r} {e.message}" for e in errors)]:
        for secret in ("sekrit-wrong-value", CLIENT_SECRET, *tokens):
            assert secret not in text
    assert CLIENT_SECRET not in repr(_config(server.url))


async def test_the_fake_wants_a_token_and_basic_credentials(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/v2/checkout/orders/5O1")).status_code == 401
        token = await client.post(
            "/v1/oauth2/token", auth=(CLIENT_ID, "wrong"), data={"grant_type": "client_credentials"}
        )
        assert token.status_code == 401
        assert "wrong" not in token.text


def test_the_processor_declares_a_redirect_wallet() -> None:
    processor = PayPalProcessor(config=_config("http://127.0.0.1:9"))
    assert processor.name == "paypal" and processor.method_kinds == frozenset()
    assert {c.value for c in processor.capabilities} == {
        "REDIRECT", "NOTIFICATIONS", "STATUS_POLL", "REFUND",
    }  # fmt: skip


async def test_a_capture_is_announced_by_a_webhook_the_processor_accepts() -> None:
    inbox = Inbox()
    with serving(inbox.app) as receiver:
        fake = FakePayPal(webhook_url=f"{receiver.url}/callbacks/3")
        with serving(fake.app) as server:
            harness = PayPalHarness(fake, PayPalProcessor(config=_config(server.url)), server.url)
            request, _ = await _paid(harness)
            for _ in range(100):
                if inbox.received:
                    break
                await asyncio.sleep(0.02)
            notification = await harness.processor.verify_notification(inbox.received[0])
    assert fake.deliveries == [200]
    assert notification.kind == NotificationKind.SUCCEEDED
    assert (notification.idempotency_key, notification.amount) == (request.idempotency_key, 1250)


async def test_a_live_account_is_reached_over_https_only(
    fake: FakePayPal, server: LiveServer
) -> None:
    live = PayPalProcessor(config=replace(_config(server.url), mode=Mode.LIVE))
    seen, tokens = len(fake.requests), len(fake.tokens)
    with pytest.raises(ProcessorError) as refused:
        await live.start_redirect(request_with(PayPalHarness(fake, live, server.url)))
    assert refused.value.code == "INSECURE_URL"
    assert (len(fake.requests), len(fake.tokens)) == (seen, tokens)


async def test_an_order_approved_by_a_customer_who_never_came_back_is_captured_by_the_status(
    harness: PayPalHarness,
) -> None:
    request = request_with(harness)
    start = await harness.processor.start_redirect(request)
    await harness.pay(start, Choice.APPROVE)  # … and the tab is closed before the return
    status = await harness.processor.redirect_status(start)
    assert (status.status, status.amount) == (ChargeOutcome.SUCCEEDED, request.amount)
    again = await harness.processor.complete_return(start, {"token": start.external_id})
    assert again == status
    captures = [r for r in harness.fake.requests if r.path.endswith(f"{start.external_id}/capture")]
    assert [r.request_id for r in captures] == [f"{request.idempotency_key}-capture"]


async def test_the_declining_buyer_stays_declined_on_reconciliation(
    harness: PayPalHarness,
) -> None:
    start = await harness.processor.start_redirect(request_with(harness))
    await harness.pay(start, Choice.DECLINE)
    status = await harness.processor.redirect_status(start)
    assert (status.status, status.decline_code) == (ChargeOutcome.DECLINED, "instrument_declined")
