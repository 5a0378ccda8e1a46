"""The Authorize.Net adapter against its local fake, over real HTTP on loopback: the processor
contract, then what is Authorize.Net's own — CIM profiles reused on E00039, e-checks, the
merchant reference within ``refId``'s 20 characters, bad credentials, held transactions,
voids before settlement, Accept.js tokens, and no card number anywhere it could leak."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing.errors import UserError
from billing.money import format_amount
from billing.payment_systems import (
    BankAccountDetails,
    Capability,
    IncomingRequest,
    MethodKind,
    Mode,
    NotificationKind,
    NotifiedProcessor,
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
)
from processors.authorize_net import (
    PRODUCTION_URL,
    REF_ID_MAX,
    SANDBOX_URL,
    AuthorizeNetProcessor,
    merchant_reference,
    refund_reference,
)
from processors.fakes.authorize_net import FakeAuthorizeNet, signature
from tests.bitcoin_chain import LiveServer, serving
from tests.processor_contract import Behaviour, ProcessorContract

TODAY = date(2026, 12, 3)
#: A sandbox test card (approves) and the fake's own numbers for other outcomes.
CARDS = {
    Behaviour.APPROVE: "4111111111111111",
    Behaviour.DECLINE: "4000000000000002",
    Behaviour.INSUFFICIENT_FUNDS: "4000000000009995",
    Behaviour.TIMEOUT: "4000000000000119",
}
HELD_CARD = "4000000000000259"
CHROMIUM = "/usr/bin/chromium"
#: A real ABA routing number with a valid check digit (Wells Fargo's, in sandbox examples).
ROUTING = "121042882"
EVENTS = {
    NotificationKind.SUCCEEDED: "net.authorize.payment.authcapture.created",
    NotificationKind.FAILED: "net.authorize.payment.fraud.declined",
    NotificationKind.REFUNDED: "net.authorize.payment.refund.created",
    NotificationKind.REVERSED: "net.authorize.payment.void.created",
}
_payers = itertools.count(1000)


@dataclass
class Gateway:
    fake: FakeAuthorizeNet
    server: LiveServer

    def config(self, **credentials: str) -> ProcessorConfig:
        return ProcessorConfig(
            credentials={
                "api_login_id": self.fake.login,
                "transaction_key": self.fake.transaction_key,
                "signature_key": self.fake.signature_key,
                "client_key": self.fake.client_key,
                "accept_js_url": f"{self.server.url}/v1/Accept.js",
                **credentials,
            },
            mode=Mode.TEST,
            base_url=f"{self.server.url}/xml/v1/request.api",
            account_id=7,
        )

    def processor(self, **credentials: str) -> AuthorizeNetProcessor:
        return AuthorizeNetProcessor(
            config=self.config(**credentials), timeout=1.5, today=lambda: TODAY
        )


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    fake = FakeAuthorizeNet(hang_seconds=3.0)
    with serving(fake.app) as server:
        yield Gateway(fake, server)


def card(number: str = CARDS[Behaviour.APPROVE], cvc: str = "123") -> CardDetails:
    return CardDetails(number, 12, 2030, cvc, holder="Ada Lovelace")


def payer() -> Payer:
    return Payer(next(_payers), "Ada Lovelace", "ada@example.com")


def request(token: CardToken, amount: int, key: str, currency: str = "USD") -> ChargeRequest:
    return ChargeRequest(token.token, amount, currency, key, description="Invoice INV-1")


_keys = itertools.count(1)


def key() -> str:
    return f"anet-{next(_keys)}-{id(_keys) % 10_000}"


@dataclass
class AuthorizeNetHarness:
    gateway: Gateway
    processor: AuthorizeNetProcessor = field(init=False)

    def __post_init__(self) -> None:
        self.processor = self.gateway.processor()

    async def stored_method(self, behaviour: Behaviour) -> CardToken:
        return await self.processor.tokenize(card(CARDS[behaviour]))

    def signed_notification(
        self,
        kind: NotificationKind,
        request: ChargeRequest,
        result: ChargeResult,
        *,
        amount: int | None = None,
        event_id: str = "evt_1",
    ) -> IncomingRequest:
        assert result.processor_reference is not None
        body, headers = self.gateway.fake.webhook(
            result.processor_reference,
            EVENTS[kind],
            notification_id=event_id,
            amount=None if amount is None else Decimal(format_amount(amount, "USD")),
            # A chargeback-like void is made outside kassa: it carries no kassa reference.
            merchant_reference="" if kind == NotificationKind.REVERSED else None,
        )
        return IncomingRequest("POST", "/callbacks/7", headers, body)

    def forged(self, request: IncomingRequest) -> IncomingRequest:
        headers = {**request.headers, "x-anet-signature": signature("not-the-key", request.body)}
        return IncomingRequest(request.method, request.path, headers, request.body)


class TestAuthorizeNetContract(ProcessorContract):
    @pytest.fixture
    async def harness(self, gateway: Gateway) -> AuthorizeNetHarness:
        return AuthorizeNetHarness(gateway)


# --- Authorize.Net's own -----------------------------------------------------------------


def test_declares_what_it_does_and_implements_the_protocols(gateway: Gateway) -> None:
    processor = gateway.processor()
    assert processor.name == "authorize_net"
    assert {Capability.TOKEN_CHARGE, Capability.BANK_ACCOUNT, Capability.REFUND} <= (
        processor.capabilities
    )
    assert MethodKind.ECHECK in processor.method_kinds
    assert MethodKind.MAESTRO not in processor.method_kinds
    assert isinstance(processor, NotifiedProcessor)
    assert isinstance(processor, ProfileProcessor)


def test_the_endpoint_follows_the_mode_unless_overridden() -> None:
    sandbox = AuthorizeNetProcessor(config=ProcessorConfig(mode=Mode.TEST))
    live = AuthorizeNetProcessor(config=ProcessorConfig(mode=Mode.LIVE))
    assert sandbox.endpoint == SANDBOX_URL
    assert live.endpoint == PRODUCTION_URL
    assert live.client_tokenization().script_url == "https://js.authorize.net/v1/Accept.js"
    assert sandbox.client_tokenization().script_url == "https://jstest.authorize.net/v1/Accept.js"


async def test_a_payer_keeps_one_customer_profile_reused_on_e00039(gateway: Gateway) -> None:
    processor = gateway.processor()
    ada = payer()
    first = await processor.tokenize_for(card(), ada)
    second = await processor.tokenize_for(card("5424000000000015"), ada)
    again = await processor.tokenize_for(card(), ada)
    profile = first.token.split("/")[0]
    assert second.token.split("/")[0] == profile
    assert first.token != second.token
    # The same card stored again is the same payment profile (E00039 names it).
    assert again.token == first.token
    owners = [
        p for p in gateway.fake.profiles.values() if p.merchant_customer_id == str(ada.customer_id)
    ]
    assert len(owners) == 1 and len(owners[0].payment_profiles) == 2
    assert (first.brand, first.last4, second.brand) == ("visa", "1111", "mastercard")


async def test_an_echeck_is_stored_and_charged(gateway: Gateway) -> None:
    processor = gateway.processor()
    account = BankAccountDetails(ROUTING, "000123456789", "Ada Lovelace", "checking")
    stored = await processor.store_bank_account(account, payer())
    assert (stored.brand, stored.last4, stored.exp_month, stored.exp_year) == (
        "echeck",
        "6789",
        0,
        0,
    )
    approved = await processor.charge(request(stored, 5000, key()))
    assert approved.status == ChargeOutcome.SUCCEEDED
    # The sandbox declines e-checks over 100.00.
    declined = await processor.charge(request(stored, 15000, key()))
    assert (declined.status, declined.decline_code) == (ChargeOutcome.DECLINED, "card_declined")
    kept = gateway.fake.profiles[stored.token.split("/")[0]].payment_profiles
    assert all("000123456789" not in repr(p) for p in kept.values())


@pytest.mark.parametrize(
    ("account", "code"),
    [
        (BankAccountDetails("121042883", "123456789", "Ada"), "INVALID_ROUTING_NUMBER"),
        (BankAccountDetails(ROUTING, "12ab", "Ada"), "INVALID_ACCOUNT_NUMBER"),
        (BankAccountDetails(ROUTING, "123456789", "Ada", "brokerage"), "INVALID_ACCOUNT_TYPE"),
        (BankAccountDetails(ROUTING, "123456789", "  "), "INVALID_HOLDER"),
    ],
)
async def test_a_bad_bank_account_is_refused_before_any_call(
    gateway: Gateway, account: BankAccountDetails, code: str
) -> None:
    sent = len(gateway.fake.requests)
    with pytest.raises(UserError) as refused:
        await gateway.processor().store_bank_account(account, payer())
    assert refused.value.code == code
    assert len(gateway.fake.requests) == sent


async def test_bad_credentials_are_a_clear_error_without_the_secret(gateway: Gateway) -> None:
    processor = gateway.processor(transaction_key="wrong-key-s3cret")
    with pytest.raises(ProcessorError) as failed:
        await processor.tokenize(card())
    assert failed.value.code == "AUTHENTICATION_FAILED"
    assert "E00007" in failed.value.message
    assert "wrong-key-s3cret" not in str(failed.value)
    assert gateway.fake.login not in str(failed.value)


async def test_a_missing_credential_names_it(gateway: Gateway) -> None:
    processor = AuthorizeNetProcessor(
        config=ProcessorConfig(base_url=gateway.config().base_url), today=lambda: TODAY
    )
    with pytest.raises(ProcessorError) as failed:
        await processor.tokenize(card())
    assert failed.value.code == "MISSING_CREDENTIAL"


async def test_no_card_number_in_logs_or_errors(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    processor = gateway.processor()
    number = "4007000000027"
    token = await processor.tokenize_for(card(number, cvc="987"), payer())
    await processor.charge(request(token, 1000, key()))
    # A 19-digit number passes kassa's checks but not the gateway's schema, whose error
    # message echoes the value: the adapter must not pass it on.
    long_number = "4000000000000000006"
    with pytest.raises(ProcessorError) as refused:
        await processor.tokenize(card(long_number))
    with pytest.raises(UserError) as invalid:
        await processor.tokenize(card("4111111111111112"))
    texts = [record.getMessage() for record in caplog.records]
    texts += [str(refused.value), refused.value.message, str(invalid.value)]
    for secret in (number, long_number, "4111111111111112", "cardCode"):
        assert not any(secret in text for text in texts), secret
    assert refused.value.code == "AUTHORIZE_NET_E00003"


async def test_the_merchant_reference_fits_ref_id_and_keeps_the_key(gateway: Gateway) -> None:
    long_key = "collection-attempt-" + "9" * 40 + f"-{next(_keys)}"
    reference = merchant_reference(long_key)
    assert len(reference) <= REF_ID_MAX
    assert reference == merchant_reference(long_key)
    assert merchant_reference("attempt-12") == "attempt-12"
    assert len(refund_reference(long_key)) <= REF_ID_MAX
    assert refund_reference("attempt-12") != merchant_reference("attempt-12")
    processor = gateway.processor()
    token = await processor.tokenize(card())
    result = await processor.charge(request(token, 4200, long_key))
    assert result.status == ChargeOutcome.SUCCEEDED
    assert result.processor_reference is not None
    stored = gateway.fake.transactions[result.processor_reference]
    assert (stored.ref_id, stored.invoice_number) == (reference, reference)
    assert long_key in stored.description
    found = await processor.lookup(long_key)
    assert found is not None and found.processor_reference == result.processor_reference


async def test_a_key_reused_for_another_amount_conflicts(gateway: Gateway) -> None:
    processor = gateway.processor()
    token = await processor.tokenize(card())
    same = key()
    await processor.charge(request(token, 1000, same))
    with pytest.raises(IdempotencyConflict):
        await processor.charge(request(token, 2000, same))


async def test_a_token_authorize_net_does_not_know_is_refused(gateway: Gateway) -> None:
    processor = gateway.processor()
    for token in ("999999/999999", "pm_not_ours"):
        with pytest.raises(ChargeRefused) as refused:
            await processor.charge(ChargeRequest(token, 1000, "USD", key()))
        assert refused.value.code == "INVALID_TOKEN"


async def test_another_currency_is_refused_before_any_call(gateway: Gateway) -> None:
    processor = gateway.processor()
    token = await processor.tokenize(card())
    sent = len(gateway.fake.requests)
    with pytest.raises(ChargeRefused) as refused:
        await processor.charge(request(token, 1000, key(), currency="EUR"))
    assert refused.value.code == "CURRENCY_NOT_SUPPORTED"
    assert len(gateway.fake.requests) == sent
    euro = gateway.processor(currency="EUR")
    assert (await euro.charge(request(token, 1000, key(), currency="EUR"))).currency == "EUR"


async def test_a_held_charge_stays_unknown_until_the_fraud_decision(gateway: Gateway) -> None:
    processor = gateway.processor()
    token = await processor.tokenize(card(HELD_CARD))
    charge_key = key()
    held = await processor.charge(request(token, 3000, charge_key))
    assert held.status == ChargeOutcome.UNKNOWN and held.processor_reference
    found = await processor.lookup(charge_key)
    assert found is not None and found.status == ChargeOutcome.UNKNOWN
    gateway.fake.review(held.processor_reference, approve=True)
    body, headers = gateway.fake.webhook(
        held.processor_reference, "net.authorize.payment.fraud.approved", notification_id="n-1"
    )
    approved = processor.parse_notification(IncomingRequest("POST", "/callbacks/7", headers, body))
    assert approved.kind == NotificationKind.SUCCEEDED
    assert (approved.idempotency_key, approved.amount, approved.currency) == (
        charge_key,
        3000,
        "USD",
    )


async def test_an_unsettled_charge_is_voided_whole_never_in_part(gateway: Gateway) -> None:
    gateway.fake.auto_settle = False
    try:
        processor = gateway.processor()
        token = await processor.tokenize(card())
        charged = await processor.charge(request(token, 2000, key()))
        assert charged.processor_reference is not None
        part = await processor.refund(charged.processor_reference, 500, key())
        assert not part.succeeded and "settled" in part.message
        refund_key = key()
        whole = await processor.refund(charged.processor_reference, 2000, refund_key)
        assert whole.succeeded
        assert gateway.fake.transactions[charged.processor_reference].status == "voided"
        assert (await processor.refund(charged.processor_reference, 2000, refund_key)).succeeded
        assert not (await processor.refund(charged.processor_reference, 500, key())).succeeded
        # kassa's own void comes back as REFUNDED; one made elsewhere is a reversal.
        ours, headers = gateway.fake.webhook(
            charged.processor_reference,
            "net.authorize.payment.void.created",
            merchant_reference=refund_reference(refund_key),
        )
        parsed = processor.parse_notification(IncomingRequest("POST", "/", headers, ours))
        assert parsed.kind == NotificationKind.REFUNDED
    finally:
        gateway.fake.auto_settle = True
        gateway.fake.settle()


async def test_a_refund_replayed_refunds_once_and_never_beyond_the_charge(gateway: Gateway) -> None:
    processor = gateway.processor()
    token = await processor.tokenize(card())
    charged = await processor.charge(request(token, 2000, key()))
    assert charged.processor_reference is not None
    refund_key = key()
    first = await processor.refund(charged.processor_reference, 1500, refund_key)
    again = await processor.refund(charged.processor_reference, 1500, refund_key)
    assert first.succeeded and again.processor_reference == first.processor_reference
    assert gateway.fake.transactions[charged.processor_reference].refunded == Decimal("15.00")
    too_much = await processor.refund(charged.processor_reference, 1000, key())
    assert not too_much.succeeded
    with pytest.raises(IdempotencyConflict):
        await processor.refund(charged.processor_reference, 100, refund_key)


async def test_a_webhook_is_verified_before_it_is_read(gateway: Gateway) -> None:
    processor = gateway.processor()
    garbage = b"not json at all"
    headers = {"x-anet-signature": signature(gateway.fake.signature_key, garbage).lower()}
    with pytest.raises(ProcessorError) as malformed:
        processor.parse_notification(IncomingRequest("POST", "/", headers, garbage))
    assert malformed.value.code == "MALFORMED_NOTIFICATION"  # verified (lower-case hex too)
    for forged in ({}, {"x-anet-signature": "sha512="}, {"x-anet-signature": "sha512=ÄÖ"}):
        with pytest.raises(ProcessorError) as refused:
            processor.parse_notification(IncomingRequest("POST", "/", forged, garbage))
        assert refused.value.code == "FORGED_NOTIFICATION"


async def test_other_events_are_acknowledged_and_ignored(gateway: Gateway) -> None:
    processor = gateway.processor()
    body = (
        b'{"notificationId":"n-9","eventType":"net.authorize.customer.created",'
        b'"payload":{"entityName":"customerProfile","id":"1"}}'
    )
    headers = {"x-anet-signature": signature(gateway.fake.signature_key, body)}
    notification = processor.parse_notification(IncomingRequest("POST", "/", headers, body))
    assert (notification.kind, notification.event_id) == (NotificationKind.IGNORED, "n-9")
    reply = processor.acknowledge(notification)
    assert (reply.status, reply.body) == (200, b"")


async def test_a_card_tokenized_by_accept_js_is_adopted(gateway: Gateway) -> None:
    processor = gateway.processor()
    settings = processor.client_tokenization()
    assert settings.script_url == f"{gateway.server.url}/v1/Accept.js"
    assert settings.public_settings["clientKey"] == gateway.fake.client_key
    async with httpx.AsyncClient() as browser:
        script = await browser.get(settings.script_url)
        assert "dispatchData" in script.text
        # What Accept.dispatchData posts from the browser: the card never reaches kassa.
        answer = await browser.post(
            gateway.config().base_url or "",
            json={
                "securePaymentContainerRequest": {
                    "merchantAuthentication": {
                        "name": settings.public_settings["apiLoginID"],
                        "clientKey": settings.public_settings["clientKey"],
                    },
                    "data": {
                        "type": "TOKEN",
                        "id": "1",
                        "token": {
                            "cardNumber": "6011000000000012",
                            "expirationDate": "1130",
                            "cardCode": "123",
                        },
                    },
                }
            },
        )
    assert answer.content.startswith("\ufeff".encode())
    opaque = json.dumps(json.loads(answer.content.decode("utf-8-sig"))["opaqueData"])
    token = await processor.adopt_client_token(opaque, payer())
    assert (token.brand, token.last4, token.exp_month, token.exp_year) == (
        "discover",
        "0012",
        11,
        2030,
    )
    charged = await processor.charge(request(token, 999, key()))
    assert charged.status == ChargeOutcome.SUCCEEDED
    with pytest.raises(ProcessorError):
        await processor.adopt_client_token(opaque, payer())  # a one-time token


async def test_a_lookup_without_the_transaction_details_api_is_an_error_not_none(
    gateway: Gateway,
) -> None:
    gateway.fake.transaction_details_api = False
    try:
        with pytest.raises(ProcessorError) as denied:
            await gateway.processor().lookup(key())
        assert denied.value.code == "ACCESS_DENIED"
        assert "Transaction Details API" in denied.value.message
    finally:
        gateway.fake.transaction_details_api = True


async def test_the_fake_delivers_a_signed_webhook_the_adapter_accepts(gateway: Gateway) -> None:
    received: list[IncomingRequest] = []

    async def callback(incoming: Request) -> Response:
        headers = {name.lower(): value for name, value in incoming.headers.items()}
        received.append(IncomingRequest("POST", incoming.url.path, headers, await incoming.body()))
        return Response(status_code=200)

    processor = gateway.processor()
    token = await processor.tokenize(card())
    charge_key = key()
    charged = await processor.charge(request(token, 1234, charge_key))
    receiver = Starlette(routes=[Route("/callbacks/7", callback, methods=["POST"])])
    with serving(receiver) as kassa:
        async with httpx.AsyncClient() as client:
            sent = await client.post(
                f"{gateway.server.url}/_fake/webhook",
                json={
                    "transId": charged.processor_reference,
                    "eventType": "net.authorize.payment.authcapture.created",
                    "url": f"{kassa.url}/callbacks/7",
                },
            )
    assert sent.json() == {"status": 200}
    notification = processor.parse_notification(received[0])
    assert notification.kind == NotificationKind.SUCCEEDED
    assert (notification.idempotency_key, notification.amount) == (charge_key, 1234)


#: A merchant's card form in miniature, served from another origin than the gateway's: it
#: loads Accept.js and hands the card to it, as the portal's form does.
_CARD_FORM = """<!doctype html><title>Pay</title><script src="%s"></script>
<script>
window.tokenize = (number) => new Promise((resolve) => Accept.dispatchData({
  authData: {apiLoginID: "%s", clientKey: "%s"},
  cardData: {cardNumber: number, month: "11", year: "2030", cardCode: "123"}
}, resolve));
</script>"""


async def test_accept_js_tokenizes_in_a_real_browser_from_another_origin(
    gateway: Gateway,
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("no /usr/bin/chromium")
    processor = gateway.processor()
    settings = processor.client_tokenization()
    form = _CARD_FORM % (
        settings.script_url,
        settings.public_settings["apiLoginID"],
        settings.public_settings["clientKey"],
    )

    async def page(_: Request) -> Response:
        return Response(form, media_type="text/html")

    with serving(Starlette(routes=[Route("/pay", page)])) as merchant:
        async with playwright_api.async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
            )
            try:
                tab = await browser.new_page()
                await tab.goto(f"{merchant.url}/pay")
                answer = await tab.evaluate("tokenize('5424000000000015')")
            finally:
                await browser.close()
    assert answer["messages"]["resultCode"] == "Ok"
    token = await processor.adopt_client_token(json.dumps(answer["opaqueData"]), payer())
    assert (token.brand, token.last4, token.exp_month, token.exp_year) == (
        "mastercard",
        "0015",
        11,
        2030,
    )


async def test_a_charge_sent_again_after_a_lost_answer_is_not_made_twice(
    gateway: Gateway,
) -> None:
    processor = gateway.processor()
    token = await processor.tokenize(card(CARDS[Behaviour.TIMEOUT]))
    lost = request(token, 2500, key())
    with pytest.raises(ProcessorError):
        await processor.charge(lost)
    again = await processor.charge(lost)
    assert again.status == ChargeOutcome.SUCCEEDED
    reference = merchant_reference(lost.idempotency_key)
    made = [t for t in gateway.fake.transactions.values() if t.invoice_number == reference]
    assert [t.trans_id for t in made] == [again.processor_reference]


async def test_two_racing_charges_under_one_key_make_one_charge(gateway: Gateway) -> None:
    processor = gateway.processor()
    token = await processor.tokenize(card())
    racing = request(token, 3100, key())
    first, second = await asyncio.gather(processor.charge(racing), processor.charge(racing))
    assert first.processor_reference == second.processor_reference
    reference = merchant_reference(racing.idempotency_key)
    made = [t for t in gateway.fake.transactions.values() if t.invoice_number == reference]
    assert len(made) == 1
