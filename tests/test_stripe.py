"""Stripe (:mod:`processors.stripe`) against its fake (:mod:`processors.fakes.stripe`) over real
HTTP on loopback: the processor contract, then what is Stripe's own — an Idempotency-Key on
every POST, webhook signatures (rolled secrets, the 5-minute tolerance), 3-D Secure completed
on the fake's page, one Customer per kassa customer, Stripe.js tokens, and no card number in
logs or errors."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from billing.errors import UserError
from billing.payment_systems import (
    ForgedNotification,
    IncomingRequest,
    Mode,
    NotificationKind,
    Payer,
    ProcessorConfig,
    ProfileProcessor,
)
from billing.processing import (
    CardDetails,
    CardToken,
    ChargeOutcome,
    ChargeRefused,
    ChargeRequest,
    ChargeResult,
    IdempotencyConflict,
    ProcessorError,
    ProcessorTimeout,
)
from processors.fakes.stripe import (
    HANG_CARD,
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    FakeStripe,
    signature_header,
)
from processors.stripe import StripeProcessor
from tests.bitcoin_chain import LiveServer, serving
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.processor_contract import Behaviour, ProcessorContract

_NUMBERS = {
    Behaviour.APPROVE: "4242424242424242",
    Behaviour.DECLINE: "4000000000000341",  # Stripe's "attaches, then declines" card
    Behaviour.INSUFFICIENT_FUNDS: "4000000000009995",
    Behaviour.TIMEOUT: HANG_CARD,
}
THREE_D_SECURE = "4000002760003184"
PUBLIC_URL = "http://kassa.test"
_EVENT_TYPES = {
    NotificationKind.SUCCEEDED: "payment_intent.succeeded",
    NotificationKind.FAILED: "payment_intent.payment_failed",
    NotificationKind.REFUNDED: "charge.refunded",
    NotificationKind.REVERSED: "charge.dispute.funds_withdrawn",
}


def _card(number: str = _NUMBERS[Behaviour.APPROVE]) -> CardDetails:
    return CardDetails(number, 12, 2034, "123", holder="Ada Lovelace")


def _config(url: str, **changes: Any) -> ProcessorConfig:
    credentials = {
        "secret_key": SECRET_KEY,
        "publishable_key": PUBLISHABLE_KEY,
        "webhook_secret": WEBHOOK_SECRET,
    }
    return ProcessorConfig(
        **{
            "credentials": credentials,
            "mode": Mode.TEST,
            "base_url": url,
            "account_id": 7,
            "public_url": PUBLIC_URL,
            **changes,
        }
    )


def _processor(url: str, **options: Any) -> StripeProcessor:
    """Quick timeouts: the fake's hang card must make a charge give up within a second."""
    return StripeProcessor(
        _config(url), timeout=1.5, max_retries=1, today=lambda: date(2026, 12, 3), **options
    )


def _request(token: CardToken, amount: int = 1250, **changes: Any) -> ChargeRequest:
    return ChargeRequest(
        token=token.token,
        amount=amount,
        currency="USD",
        idempotency_key=f"attempt-{uuid.uuid4().hex[:12]}",
        description="Invoice INV-1",
        **changes,
    )


@pytest.fixture(scope="module")
def fake() -> FakeStripe:
    return FakeStripe(hang_seconds=3.0)


@pytest.fixture(scope="module")
def server(fake: FakeStripe) -> Iterator[LiveServer]:
    with serving(fake.app) as live:
        yield live


@pytest.fixture
def processor(server: LiveServer) -> StripeProcessor:
    return _processor(server.url)


@dataclass
class StripeHarness:
    fake: FakeStripe
    processor: StripeProcessor

    async def stored_method(self, behaviour: Behaviour) -> CardToken:
        return await self.processor.tokenize(_card(_NUMBERS[behaviour]))

    def signed_notification(
        self,
        kind: NotificationKind,
        request: ChargeRequest,
        result: ChargeResult,
        *,
        amount: int | None = None,
        event_id: str = "evt_1",
    ) -> IncomingRequest:
        """The event Stripe sends about ``result``'s PaymentIntent, from the fake's own
        objects (a chargeback is opened on the fake for it)."""
        assert result.processor_reference is not None
        intent = self.fake.payment_intents[result.processor_reference]
        obj: dict[str, Any]
        if kind is NotificationKind.REVERSED:
            obj = self.fake.dispute(intent["id"])
        elif kind is NotificationKind.REFUNDED:
            obj = dict(self.fake.charges[intent["latest_charge"]])
        else:
            obj = dict(intent)
        if amount is not None:
            field = {NotificationKind.REFUNDED: "amount_refunded"}.get(kind, "amount")
            obj.update({field: amount, "amount_received": amount})
        event = self.fake.event(_EVENT_TYPES[kind], obj, event_id=event_id)
        return _incoming(*self.fake.signed(event))

    def forged(self, request: IncomingRequest) -> IncomingRequest:
        stamp = request.headers["stripe-signature"].split(",")[0]
        wrong = signature_header(request.body, "whsec_someone_else", int(stamp[2:]))
        return replace(request, headers={**request.headers, "stripe-signature": wrong})


async def _http(method: str, url: str, **options: Any) -> httpx.Response:
    """A request as a browser (or Stripe.js) makes it, outside the processor."""
    async with httpx.AsyncClient() as client:
        return await client.request(method, url, **options)


def _incoming(body: bytes, signature: str) -> IncomingRequest:
    headers = {"stripe-signature": signature, "content-type": "application/json"}
    return IncomingRequest("POST", "/callbacks/7", headers, body)


class TestStripeContract(ProcessorContract):
    @pytest.fixture
    async def harness(self, fake: FakeStripe, processor: StripeProcessor) -> StripeHarness:
        return StripeHarness(fake, processor)


# --- requests --------------------------------------------------------------------------------


async def test_every_post_carries_an_idempotency_key_and_a_charge_its_own(
    fake: FakeStripe, processor: StripeProcessor
) -> None:
    seen = len(fake.requests)
    token = await processor.tokenize_for(_card(), Payer(101, "Ada", "ada@example.com"))
    request = _request(token)
    charged = await processor.charge(request)
    assert charged.processor_reference is not None
    await processor.refund(charged.processor_reference, 100, "refund-101")
    posts = [r for r in fake.requests[seen:] if r.method == "POST"]
    assert {r.path for r in posts} >= {
        "/v1/customers",
        "/v1/payment_methods",
        "/v1/payment_intents",
        "/v1/refunds",
    }
    assert all(r.idempotency_key for r in posts)
    charge_keys = [r.idempotency_key for r in posts if r.path == "/v1/payment_intents"]
    assert charge_keys == [request.idempotency_key]
    assert [r.idempotency_key for r in posts if r.path == "/v1/refunds"] == ["refund-101"]


async def test_a_charge_is_an_off_session_payment_intent_with_the_key_in_its_metadata(
    fake: FakeStripe, processor: StripeProcessor
) -> None:
    request = _request(await processor.tokenize(_card()), amount=1999)
    result = await processor.charge(request)
    intent = fake.payment_intents[str(result.processor_reference)]
    assert (intent["amount"], intent["currency"], intent["status"]) == (1999, "usd", "succeeded")
    assert intent["metadata"] == {"kassa_key": request.idempotency_key}
    assert (result.amount, result.currency) == (1999, "USD")


async def test_the_same_key_for_another_amount_is_a_conflict(processor: StripeProcessor) -> None:
    request = _request(await processor.tokenize(_card()))
    await processor.charge(request)
    with pytest.raises(IdempotencyConflict):
        await processor.charge(replace(request, amount=request.amount + 1))


async def test_a_token_stripe_does_not_know_is_refused(processor: StripeProcessor) -> None:
    with pytest.raises(ChargeRefused) as refused:
        await processor.charge(
            _request(replace(await processor.tokenize(_card()), token="cus_1/pm_1"))
        )
    assert refused.value.code == "RESOURCE_MISSING"
    with pytest.raises(ChargeRefused) as malformed:
        await processor.charge(_request(replace(await processor.tokenize(_card()), token="tok_1")))
    assert malformed.value.code == "INVALID_TOKEN"


async def test_a_refund_beyond_what_is_left_is_refused_as_a_result(
    processor: StripeProcessor,
) -> None:
    charged = await processor.charge(_request(await processor.tokenize(_card()), amount=1000))
    assert charged.processor_reference is not None
    assert (await processor.refund(charged.processor_reference, 600, "re-a")).succeeded
    again = await processor.refund(charged.processor_reference, 600, "re-a")
    assert again.succeeded  # the same key: replayed, not refunded twice
    refused = await processor.refund(charged.processor_reference, 600, "re-b")
    assert not refused.succeeded and "greater than unrefunded" in refused.message


async def test_a_wrong_secret_key_is_refused(fake: FakeStripe, server: LiveServer) -> None:
    config = _config(server.url, credentials={"secret_key": "sk_test_wrong"})
    processor = StripeProcessor(config, timeout=1.5, max_retries=0)
    with pytest.raises(ChargeRefused) as refused:
        await processor.charge(
            ChargeRequest("cus_x/pm_x", 100, "USD", idempotency_key=f"k-{uuid.uuid4()}")
        )
    assert refused.value.code == "PROCESSOR_AUTHENTICATION"
    answer = await _http(
        "POST", f"{server.url}/v1/customers", headers={"Authorization": "Bearer sk_test_wrong"}
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert "sk_test_wrong" not in answer.json()["error"]["message"]


async def test_a_key_of_the_other_mode_or_a_live_one_over_http_is_not_used(
    server: LiveServer,
) -> None:
    config = _config(server.url, credentials={"secret_key": "sk_live_abc"})
    with pytest.raises(ProcessorError) as mismatch:
        await StripeProcessor(config).lookup("attempt-1")
    assert mismatch.value.code == "MODE_MISMATCH"
    live = _config(server.url, mode=Mode.LIVE, credentials={"secret_key": "sk_live_abc"})
    with pytest.raises(ProcessorError) as insecure:
        await StripeProcessor(live).lookup("attempt-1")
    assert insecure.value.code == "INSECURE_URL"


# --- customers and Stripe.js -----------------------------------------------------------------


async def test_a_customer_is_made_once_and_reused_for_the_next_card(
    fake: FakeStripe, processor: StripeProcessor
) -> None:
    payer = Payer(202, "Grace Hopper", "grace@example.com")
    first = await processor.tokenize_for(_card(), payer)
    second = await processor.tokenize_for(_card("5555555555554444"), payer)
    other = await processor.tokenize_for(_card(), Payer(203, "Alan", None))
    customer = first.token.split("/")[0]
    assert second.token.split("/")[0] == customer != other.token.split("/")[0]
    assert first.token != second.token
    assert (second.brand, second.last4, second.exp_month, second.exp_year) == (
        "mastercard",
        "4444",
        12,
        2034,
    )
    made = [c for c in fake.customers.values() if c["metadata"].get("kassa_customer_id") == "202"]
    assert [c["id"] for c in made] == [customer]
    assert (made[0]["name"], made[0]["email"]) == ("Grace Hopper", "grace@example.com")
    assert isinstance(processor, ProfileProcessor)


async def test_a_card_tokenized_by_stripe_js_is_adopted_and_charged(
    server: LiveServer, processor: StripeProcessor
) -> None:
    browser = processor.client_tokenization()
    assert browser.script_url == "https://js.stripe.com/v3/"
    assert browser.public_settings == {"publishable_key": PUBLISHABLE_KEY}
    # What Stripe.js posts from the browser: the publishable key, never the secret one.
    made = await _http(
        "POST",
        f"{server.url}/v1/payment_methods",
        data={
            "type": "card",
            "card[number]": "4242424242424242",
            "card[exp_month]": "9",
            "card[exp_year]": "2031",
            "card[cvc]": "314",
            "key": browser.public_settings["publishable_key"],
        },
    )
    assert made.status_code == 200, made.text
    payer = Payer(303, "Ada", None)
    token = await processor.adopt_client_token(made.json()["id"], payer)
    assert (token.brand, token.last4, token.exp_month, token.exp_year) == ("visa", "4242", 9, 2031)
    assert (await processor.charge(_request(token))).status == ChargeOutcome.SUCCEEDED
    with pytest.raises(UserError) as taken:
        await processor.adopt_client_token(made.json()["id"], Payer(304, "Mallory", None))
    assert taken.value.code == "INVALID_PAYMENT_METHOD"
    with pytest.raises(UserError):
        await processor.adopt_client_token("cus_not_a_method", payer)


async def test_the_publishable_key_cannot_charge(server: LiveServer) -> None:
    answer = await _http(
        "POST",
        f"{server.url}/v1/payment_intents",
        data={"amount": "100", "currency": "usd"},
        headers={"Authorization": f"Bearer {PUBLISHABLE_KEY}"},
    )
    assert answer.status_code == 401


async def test_stripe_js_url_is_a_setting(server: LiveServer) -> None:
    processor = _processor(server.url, stripe_js_url=f"{server.url}/v3/")
    assert processor.client_tokenization().script_url == f"{server.url}/v3/"


# --- 3-D Secure ------------------------------------------------------------------------------


async def test_off_session_authentication_is_completed_by_the_customer_and_then_found(
    fake: FakeStripe, processor: StripeProcessor
) -> None:
    request = _request(await processor.tokenize(_card(THREE_D_SECURE)), amount=3100)
    result = await processor.charge(request)
    assert result.status == ChargeOutcome.ACTION_REQUIRED
    assert result.action_url and result.processor_reference
    assert await processor.charge(request) == result  # a replay asks for the same page
    waiting = await processor.lookup(request.idempotency_key)
    assert waiting is not None and waiting.status == ChargeOutcome.ACTION_REQUIRED
    # The off-session failure Stripe reports is not a failure kassa acts on.
    failed = next(
        e
        for e in fake.events
        if e["type"] == "payment_intent.payment_failed"
        and e["data"]["object"]["id"] == result.processor_reference
    )
    assert processor.parse_notification(_incoming(*fake.signed(failed))).kind == (
        NotificationKind.IGNORED
    )

    page = await _http("GET", result.action_url)
    assert page.status_code == 303
    assert page.headers["location"].startswith(f"{PUBLIC_URL}/portal/payments?")
    assert "redirect_status=succeeded" in page.headers["location"]
    found = await processor.lookup(request.idempotency_key)
    assert found is not None
    assert (found.status, found.amount, found.processor_reference) == (
        ChargeOutcome.SUCCEEDED,
        3100,
        result.processor_reference,
    )
    succeeded = fake.events[-1]
    assert succeeded["type"] == "payment_intent.succeeded"
    notification = processor.parse_notification(_incoming(*fake.signed(succeeded)))
    assert (notification.kind, notification.idempotency_key, notification.amount) == (
        NotificationKind.SUCCEEDED,
        request.idempotency_key,
        3100,
    )


async def test_on_session_authentication_redirects_and_can_fail(
    fake: FakeStripe, processor: StripeProcessor
) -> None:
    request = _request(await processor.tokenize(_card(THREE_D_SECURE)), on_session=True)
    result = await processor.charge(request)
    assert result.status == ChargeOutcome.ACTION_REQUIRED and result.action_url
    intent = fake.payment_intents[str(result.processor_reference)]
    assert intent["next_action"]["redirect_to_url"]["return_url"] == f"{PUBLIC_URL}/portal/payments"
    assert (await _http("GET", f"{result.action_url}?result=fail")).status_code == 303
    found = await processor.lookup(request.idempotency_key)
    assert found is not None and found.status == ChargeOutcome.DECLINED
    assert found.decline_code == "payment_intent_authentication_failure"
    failed = processor.parse_notification(_incoming(*fake.signed(fake.events[-1])))
    assert failed.kind == NotificationKind.FAILED


# --- webhooks --------------------------------------------------------------------------------


def _event(kind: str = "payment_intent.succeeded") -> bytes:
    obj = {"id": "pi_1", "amount": 500, "amount_received": 500, "currency": "eur"}
    return json.dumps(
        {"id": "evt_9", "type": kind, "data": {"object": {**obj, "metadata": {"kassa_key": "k"}}}}
    ).encode()


def test_a_signature_older_than_five_minutes_is_refused(server: LiveServer) -> None:
    signed_at = 1_800_000_000
    body = _event()
    callback = _incoming(body, signature_header(body, WEBHOOK_SECRET, signed_at))
    fresh = _processor(server.url, clock=lambda: signed_at + 299)
    assert fresh.parse_notification(callback).amount == 500
    late = _processor(server.url, clock=lambda: signed_at + 301)
    with pytest.raises(ForgedNotification, match="too old"):
        late.parse_notification(callback)


def test_any_of_several_signatures_may_verify_while_a_secret_is_rolled(
    processor: StripeProcessor,
) -> None:
    body, now = _event(), int(time.time())
    rolled = signature_header(body, "whsec_old", now, also=[WEBHOOK_SECRET])
    assert processor.parse_notification(_incoming(body, rolled)).event_id == "evt_9"
    with pytest.raises(ForgedNotification):
        processor.parse_notification(_incoming(body, signature_header(body, "whsec_old", now)))


@pytest.mark.parametrize(
    "signature",
    ["", "t=abc,v1=00", "v1=00", f"t={int(time.time())}", f"t={int(time.time())},v0=00"],
    # Fixed ids: pytest-xdist's workers must collect the same names, not each its own time.
    ids=["empty", "bad-time", "no-time", "time-only", "v0-only"],
)
def test_a_missing_or_malformed_signature_is_forged_before_the_body_is_read(
    processor: StripeProcessor, signature: str
) -> None:
    with pytest.raises(ForgedNotification):
        processor.parse_notification(_incoming(b"not json at all", signature))


@pytest.mark.parametrize("body", [b"[]", b"{}", b'{"id": "evt_1", "type": "x", "data": []}'])
def test_a_signed_body_that_is_not_an_event_is_malformed(
    processor: StripeProcessor, body: bytes
) -> None:
    callback = _incoming(body, signature_header(body, WEBHOOK_SECRET, int(time.time())))
    with pytest.raises(ProcessorError) as malformed:
        processor.parse_notification(callback)
    assert malformed.value.code == "MALFORMED_NOTIFICATION"


def test_a_changed_body_does_not_verify(processor: StripeProcessor) -> None:
    body, now = _event(), int(time.time())
    signature = signature_header(body, WEBHOOK_SECRET, now)
    tampered = body.replace(b"500", b"900")
    with pytest.raises(ForgedNotification):
        processor.parse_notification(_incoming(tampered, signature))
    # and the HMAC is over "t.body", not the body alone
    bare = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    with pytest.raises(ForgedNotification):
        processor.parse_notification(_incoming(body, f"t={now},v1={bare}"))


async def test_refunds_chargebacks_and_declines_are_read_from_their_events(
    fake: FakeStripe, processor: StripeProcessor
) -> None:
    charged = await processor.charge(_request(await processor.tokenize(_card()), amount=2500))
    reference = str(charged.processor_reference)
    await processor.refund(reference, 700, f"re-{uuid.uuid4()}")
    fake.dispute(reference)
    about = [e for e in fake.events if reference in json.dumps(e["data"]["object"])]
    read = {e["type"]: processor.parse_notification(_incoming(*fake.signed(e))) for e in about}
    refunded = read["charge.refunded"]
    assert (refunded.kind, refunded.amount, refunded.processor_reference) == (
        NotificationKind.REFUNDED,
        700,
        reference,
    )
    assert read["charge.dispute.created"].kind == NotificationKind.IGNORED
    reversed_ = read["charge.dispute.funds_withdrawn"]
    assert (reversed_.kind, reversed_.amount, reversed_.currency) == (
        NotificationKind.REVERSED,
        2500,
        "USD",
    )
    assert read["payment_intent.created"].kind == NotificationKind.IGNORED

    declined = await processor.charge(
        _request(await processor.tokenize(_card(_NUMBERS[Behaviour.INSUFFICIENT_FUNDS])))
    )
    failed = next(
        e
        for e in fake.events
        if e["type"] == "payment_intent.payment_failed"
        and e["data"]["object"]["id"] == declined.processor_reference
    )
    notification = processor.parse_notification(_incoming(*fake.signed(failed)))
    assert (notification.kind, notification.decline_code) == (
        NotificationKind.FAILED,
        "insufficient_funds",
    )


async def test_a_generic_decline_reads_card_declined(processor: StripeProcessor) -> None:
    result = await processor.charge(
        _request(await processor.tokenize(_card(_NUMBERS[Behaviour.DECLINE])))
    )
    assert (result.status, result.decline_code) == (ChargeOutcome.DECLINED, "card_declined")
    assert result.processor_reference and result.message == "Your card was declined."


async def test_the_fake_delivers_signed_events_to_the_webhook_url(server: LiveServer) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    received: list[IncomingRequest] = []

    async def callback(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        received.append(IncomingRequest("POST", request.url.path, headers, await request.body()))
        return Response(status_code=200)

    with serving(Starlette(routes=[Route("/callbacks/7", callback, methods=["POST"])])) as hook:
        own = FakeStripe(webhook_url=f"{hook.url}/callbacks/7")
        with serving(own.app) as stripe:
            processor = _processor(stripe.url)
            request = _request(await processor.tokenize(_card()), amount=640)
            await processor.charge(request)
            for _ in range(100):
                if any(b"payment_intent.succeeded" in r.body for r in received):
                    break
                await asyncio.sleep(0.02)
    delivered = next(r for r in received if b"payment_intent.succeeded" in r.body)
    notification = processor.parse_notification(delivered)
    assert (notification.idempotency_key, notification.amount) == (request.idempotency_key, 640)


# --- no card data ----------------------------------------------------------------------------


async def test_no_card_number_in_logs_or_errors(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    number = "4242424242424242"
    caplog.set_level(logging.DEBUG)
    processor = _processor(server.url)
    token = await processor.tokenize_for(_card(number), Payer(404, "Ada", None))
    await processor.charge(_request(token))
    errors: list[BaseException] = []
    with pytest.raises(UserError) as invalid:
        await processor.tokenize(_card("4242424242424241"))
    errors.append(invalid.value)
    with pytest.raises(ProcessorTimeout) as unreachable:
        await _processor(_nothing_listening()).tokenize(_card(number))
    errors.append(unreachable.value)
    assert caplog.records  # the calls were logged (by kassa and httpx) …
    for text in [caplog.text, *(f"{e!s} {e!r} {e.__cause__!r}" for e in errors)]:
        assert number not in text  # … without the number
        assert "4242424242424241" not in text
    assert token.last4 == "4242" and number not in token.token


def _nothing_listening() -> str:
    """A loopback address nothing listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- Stripe.js in a browser ------------------------------------------------------------------

_CHECKOUT = """<!doctype html><html><body>
<form id="pay"><div id="card"></div><button>Save card</button></form>
<script src="{script}"></script>
<script>
  const stripe = Stripe("{key}");
  const card = stripe.elements().create("card");
  card.mount("#card");
  document.getElementById("pay").addEventListener("submit", async (event) => {{
    event.preventDefault();
    const answer = await stripe.createPaymentMethod({{type: "card", card,
      billing_details: {{name: "Ada"}}}});
    document.body.dataset.result = answer.error ? "error:" + answer.error.code
                                                : answer.paymentMethod.id;
  }});
</script></body></html>"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
async def test_the_fake_stripe_js_tokenizes_in_a_browser_page_of_another_origin(
    server: LiveServer,
) -> None:
    """A shop page (its own origin) loads the fake's Stripe.js, which posts the card straight
    to the fake; kassa gets only the PaymentMethod id and adopts it."""
    from playwright.async_api import async_playwright
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    processor = _processor(server.url, stripe_js_url=f"{server.url}/v3/")
    browser_side = processor.client_tokenization()
    page_html = _CHECKOUT.format(
        script=browser_side.script_url, key=browser_side.public_settings["publishable_key"]
    )

    async def checkout(_: object) -> HTMLResponse:
        return HTMLResponse(page_html)

    with serving(Starlette(routes=[Route("/checkout", checkout)])) as shop:
        async with async_playwright() as playwright:
            chromium = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                page = await chromium.new_page()
                page.set_default_timeout(5000)
                await page.goto(f"{shop.url}/checkout")
                await page.get_by_label("Card number").fill("4000 0000 0000 9995")
                await page.get_by_label("Expiry (MM/YY)").fill("11/33")
                await page.get_by_label("Security code").fill("123")
                await page.get_by_role("button", name="Save card").click()
                await page.wait_for_function("document.body.dataset.result !== undefined")
                made = await page.evaluate("document.body.dataset.result")
                await page.get_by_label("Card number").fill("4000 0000 0000 0001")
                await page.get_by_role("button", name="Save card").click()
                await page.wait_for_function("document.body.dataset.result.startsWith('error')")
                refused = await page.evaluate("document.body.dataset.result")
            finally:
                await chromium.close()
    assert made.startswith("pm_") and refused == "error:incorrect_number"
    token = await processor.adopt_client_token(made, Payer(505, "Ada", None))
    assert (token.last4, token.exp_month, token.exp_year) == ("9995", 11, 2033)
    declined = await processor.charge(_request(token))
    assert declined.decline_code == "insufficient_funds"


async def test_the_fake_mounted_under_a_prefix_links_its_pages_under_it() -> None:
    """As the demo serves it (beside kassa, under a path): the API and the 3-D Secure page."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    with serving(Starlette(routes=[Mount("/_fake/stripe", FakeStripe().app)])) as site:
        processor = _processor(f"{site.url}/_fake/stripe")
        request = _request(await processor.tokenize(_card(THREE_D_SECURE)))
        result = await processor.charge(request)
        assert str(result.action_url).startswith(f"{site.url}/_fake/stripe/_fake/3ds/pi_")
        assert (await _http("GET", str(result.action_url))).status_code == 303
        found = await processor.lookup(request.idempotency_key)
    assert found is not None and found.status == ChargeOutcome.SUCCEEDED


async def test_a_confirm_without_return_url_needs_card_as_its_method_type(
    server: LiveServer, processor: StripeProcessor
) -> None:
    """Why every charge names ``payment_method_types[0]=card``: otherwise Stripe (and the
    fake) want a return_url even off-session."""
    token = await processor.tokenize(_card())
    customer, method = token.token.split("/")
    form = {"amount": "100", "currency": "usd", "customer": customer, "payment_method": method}
    headers = {"Authorization": f"Bearer {SECRET_KEY}"}
    bare = await _http(
        "POST",
        f"{server.url}/v1/payment_intents",
        data={**form, "confirm": "true", "off_session": "true"},
        headers={**headers, "Idempotency-Key": f"k-{uuid.uuid4()}"},
    )
    assert bare.status_code == 400 and bare.json()["error"]["param"] == "return_url"


async def test_unavailable_answers_are_retried_under_the_same_key_then_time_out(
    fake: FakeStripe, server: LiveServer
) -> None:
    """A proxy that answers 503 to the first ``failures`` POSTs, then passes them on."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    failures = {"left": 0}
    keys: list[str | None] = []

    async def flaky(request: Request) -> Response:
        if request.method == "POST":
            keys.append(request.headers.get("idempotency-key"))
            if failures["left"] > 0:
                failures["left"] -= 1
                return Response(b'{"error": {"type": "api_error"}}', 503)
        async with httpx.AsyncClient(base_url=server.url) as client:
            answer = await client.request(
                request.method,
                request.url.path,
                params=request.query_params,
                content=await request.body(),
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            )
        return Response(answer.content, answer.status_code, media_type="application/json")

    proxy = Starlette(routes=[Route("/{path:path}", flaky, methods=["GET", "POST"])])
    with serving(proxy) as site:
        processor = _processor(site.url)
        token = await processor.tokenize(_card())
        keys.clear()
        failures["left"] = 1
        request = _request(token)
        assert (await processor.charge(request)).status == ChargeOutcome.SUCCEEDED
        assert keys == [request.idempotency_key] * 2  # the 503, then the same request again
        failures["left"] = 10
        with pytest.raises(ProcessorTimeout):
            await processor.charge(_request(token))


async def test_the_fake_keeps_its_account_in_a_state_file_across_restarts(tmp_path: Path) -> None:
    """As the demo needs it: cards stored by ``kassa demo`` are charged by ``kassa serve``."""
    state = str(tmp_path / "stripe.json")
    with serving(FakeStripe(state_file=state).app) as first:
        processor = _processor(first.url)
        token = await processor.tokenize_for(_card(), Payer(606, "Ada", None))
        request = _request(token, amount=4200)
        charged = await processor.charge(request)
    with serving(FakeStripe(state_file=state).app) as second:
        processor = _processor(second.url)
        assert await processor.charge(request) == charged  # the saved answer, replayed
        found = await processor.lookup(request.idempotency_key)
        assert found is not None and found.amount == 4200
        again = await processor.tokenize_for(_card("5555555555554444"), Payer(606, "Ada", None))
        assert again.token.split("/")[0] == token.token.split("/")[0]
        assert (await processor.charge(_request(token))).status == ChargeOutcome.SUCCEEDED


async def test_without_a_public_url_an_off_session_authentication_is_a_decline(
    server: LiveServer,
) -> None:
    """No address to send the customer back to, so no authentication page to offer."""
    processor = StripeProcessor(_config(server.url, public_url=None), timeout=1.5)
    result = await processor.charge(_request(await processor.tokenize(_card(THREE_D_SECURE))))
    assert (result.status, result.decline_code, result.action_url) == (
        ChargeOutcome.DECLINED,
        "authentication_required",
        None,
    )
