"""Skrill (:mod:`processors.skrill`) against its fake (:mod:`processors.fakes.skrill`) over real
HTTP on loopback: the redirect contract, then what is Skrill's own — the md5sig formula worked
by hand, a chargeback, a pending status, refusals, and no credential in logs or errors."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from billing.money import format_amount
from billing.payment_systems import (
    ForgedNotification,
    IncomingRequest,
    NotificationKind,
    ProcessorConfig,
    RedirectRequest,
    RedirectStart,
)
from billing.processing import ChargeOutcome, ProcessorError
from processors.fakes.skrill import (
    MERCHANT_EMAIL,
    MERCHANT_ID,
    MQI_PASSWORD,
    SECRET_WORD,
    FakeSkrill,
)
from processors.skrill import SkrillProcessor, md5sig, sha2sig
from tests.bitcoin_chain import LiveServer, serving
from tests.redirect_contract import Choice, RedirectContract
from tests.redirect_harness import Clock, FakeHarness, request_with

_STATUS = {
    NotificationKind.SUCCEEDED: "2",
    NotificationKind.FAILED: "-2",
    NotificationKind.REVERSED: "-3",
}
_CREDENTIALS = {
    "merchant_email": MERCHANT_EMAIL,
    "merchant_id": MERCHANT_ID,
    "secret_word": SECRET_WORD,
    "mqi_password": MQI_PASSWORD,
}


@pytest.fixture(scope="module")
def fake() -> FakeSkrill:
    return FakeSkrill(hang_seconds=3.0)


@pytest.fixture(scope="module")
def server(fake: FakeSkrill) -> Iterator[LiveServer]:
    with serving(fake.app) as live:
        yield live


def _processor(url: str, clock: Clock, **credentials: str) -> SkrillProcessor:
    config = ProcessorConfig(credentials={**_CREDENTIALS, **credentials}, base_url=url)
    return SkrillProcessor(config=config, timeout=1.5, clock=clock)


@dataclass
class SkrillHarness(FakeHarness[FakeSkrill, SkrillProcessor]):
    clock: Clock
    currency: str = "EUR"
    amount: int = 1250
    signs_notifications: bool = True

    def expire(self, start: RedirectStart) -> None:
        self.fake.expire(start.external_id)
        self.clock.move_to_expiry(start)

    def notification(
        self,
        start: RedirectStart,
        request: RedirectRequest,
        kind: NotificationKind,
        *,
        amount: int | None = None,
        event_id: str = "evt_1",
    ) -> IncomingRequest:
        """Skrill's status notification (its event id is its own: transaction and status)."""
        mb_amount = None if amount is None else format_amount(amount, request.currency)
        if start.external_id in self.fake.transactions:
            fields = self.fake.notification_fields(
                start.external_id, status=_STATUS[kind], mb_amount=mb_amount
            )
        else:  # not paid at the fake: what Skrill would send had it been
            fields = self.fake.signed(
                {
                    "merchant_id": MERCHANT_ID,
                    "transaction_id": request.idempotency_key,
                    "mb_transaction_id": "2999999999",
                    "mb_amount": mb_amount or format_amount(request.amount, request.currency),
                    "mb_currency": request.currency,
                    "status": _STATUS[kind],
                }
            )
        return _incoming(fields)

    def forged(self, notification: IncomingRequest) -> IncomingRequest:
        fields = dict(parse_qsl(notification.body.decode()))
        for name in ("md5sig", "sha2sig"):
            fields.pop(name)
        return _incoming(FakeSkrill(secret_word="someone else's").signed(fields))


def _incoming(fields: dict[str, str]) -> IncomingRequest:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return IncomingRequest("POST", "/callbacks/3", headers, urlencode(fields).encode())


@pytest.fixture
def harness(fake: FakeSkrill, server: LiveServer) -> SkrillHarness:
    clock = Clock()
    return SkrillHarness(fake, _processor(server.url, clock), clock)


class TestSkrillContract(RedirectContract):
    """The redirect contract; ``harness`` is the module's fixture."""


# --- Skrill's own ----------------------------------------------------------------------------


def test_md5sig_is_the_documented_formula_worked_by_hand() -> None:
    """merchant_id 123456, transaction_id A205220, secret word "skrill" (MD5
    60CEDE4A5AEE9A3827F212BA45F88C61), 39.60 EUR, status 2: the MD5 of
    "123456A205220" + "60CEDE4A5AEE9A3827F212BA45F88C61" + "39.60EUR2", upper-cased
    (computed with md5sum, not with the code under test)."""
    fields = {
        "merchant_id": "123456",
        "transaction_id": "A205220",
        "mb_amount": "39.60",
        "mb_currency": "EUR",
        "status": "2",
    }
    assert md5sig(fields, "skrill") == "15A241A4D0FE8B0A818344680D0ACB1F"
    assert sha2sig(fields, "skrill") == (
        "B5F01DDF1221694258A9A842C1154B9C5865612F3F517856C4D1C3A22C1883E9"
    )
    config = ProcessorConfig(
        credentials={**_CREDENTIALS, "merchant_id": "123456", "secret_word": "skrill"}
    )
    signed = {**fields, "mb_transaction_id": "1", "md5sig": "15A241A4D0FE8B0A818344680D0ACB1F"}
    notification = SkrillProcessor(config=config).parse_notification(_incoming(signed))
    assert (notification.kind, notification.amount, notification.currency) == (
        NotificationKind.SUCCEEDED,
        3960,
        "EUR",
    )
    assert notification.idempotency_key == "A205220"


async def test_a_chargeback_is_a_reversal(harness: SkrillHarness, server: LiveServer) -> None:
    request = request_with(harness)
    start = await harness.processor.start_redirect(request)
    await harness.pay(start, Choice.APPROVE)
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            f"{server.url}/_fake/chargeback", data={"transaction_id": start.external_id}
        )
    assert reply.status_code == 200
    notification = harness.processor.parse_notification(_incoming(harness.fake.notifications[-1]))
    assert notification.kind == NotificationKind.REVERSED
    assert (notification.amount, notification.currency) == (request.amount, request.currency)
    status = await harness.processor.redirect_status(start)
    assert (status.status, status.decline_code) == (ChargeOutcome.DECLINED, "chargeback")


async def test_a_pending_payment_is_neither_paid_nor_failed(harness: SkrillHarness) -> None:
    request = request_with(harness)
    start = await harness.processor.start_redirect(request)
    pending = harness.notification(start, request, NotificationKind.SUCCEEDED)
    fields = dict(parse_qsl(pending.body.decode()))
    fields.update(status="0")
    for name in ("md5sig", "sha2sig"):
        fields.pop(name)
    notification = harness.processor.parse_notification(_incoming(harness.fake.signed(fields)))
    assert notification.kind == NotificationKind.IGNORED


async def test_a_decline_names_skrills_reason_and_each_status_is_its_own_event(
    harness: SkrillHarness,
) -> None:
    request = request_with(harness)
    start = await harness.processor.start_redirect(request)
    query = await harness.pay(start, Choice.DECLINE)
    assert query == {"transaction_id": request.idempotency_key}  # no msid on a failure
    result = await harness.processor.complete_return(start, query)
    assert (result.status, result.decline_code) == (ChargeOutcome.DECLINED, "skrill_01")
    failed = harness.processor.parse_notification(_incoming(harness.fake.notifications[-1]))
    assert failed.kind == NotificationKind.FAILED and failed.decline_code == "skrill_01"
    other = harness.notification(start, request, NotificationKind.SUCCEEDED)
    assert harness.processor.parse_notification(other).event_id != failed.event_id


async def test_a_canceled_session_stays_open_until_it_expires(harness: SkrillHarness) -> None:
    start = await harness.processor.start_redirect(request_with(harness))
    query = await harness.pay(start, Choice.CANCEL)
    result = await harness.processor.complete_return(start, query)
    assert result.status == ChargeOutcome.UNKNOWN  # a cancel return proves nothing either
    assert start.expires_at == harness.clock.now + timedelta(minutes=15)
    harness.clock.now = start.expires_at
    expired = await harness.processor.redirect_status(start)
    assert (expired.status, expired.decline_code) == (ChargeOutcome.DECLINED, "expired")


async def test_the_session_is_prepared_with_a_decimal_amount_and_kassas_addresses(
    harness: SkrillHarness,
) -> None:
    request = request_with(harness, amount=100_005)
    start = await harness.processor.start_redirect(request)
    sid = dict(parse_qsl(urlsplit(start.url).query))["sid"]
    session = harness.fake.sessions[sid]
    assert (session["amount"], session["currency"]) == ("1000.05", "EUR")
    assert session["transaction_id"] == start.external_id == request.idempotency_key
    assert session["status_url"] == request.notify_url
    assert (session["return_url"], session["cancel_url"]) == (
        request.return_url,
        request.cancel_url,
    )


async def test_a_paid_transaction_cannot_be_prepared_again(harness: SkrillHarness) -> None:
    request = request_with(harness)
    start = await harness.processor.start_redirect(request)
    await harness.pay(start, Choice.APPROVE)
    with pytest.raises(ProcessorError) as refused:
        await harness.processor.start_redirect(request)
    assert refused.value.code == "SKRILL_REFUSED"


async def test_a_notification_for_another_merchant_is_refused(harness: SkrillHarness) -> None:
    request = request_with(harness)
    start = await harness.processor.start_redirect(request)
    fields = dict(
        parse_qsl(harness.notification(start, request, NotificationKind.SUCCEEDED).body.decode())
    )
    fields.update(merchant_id="1")
    for name in ("md5sig", "sha2sig"):
        fields.pop(name)
    with pytest.raises(ForgedNotification):
        harness.processor.parse_notification(_incoming(harness.fake.signed(fields)))


async def test_credentials_never_reach_logs_or_errors(
    harness: SkrillHarness, server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    wrong = _processor(server.url, harness.clock, merchant_email="nobody@kassa.test")
    wrong_mqi = _processor(server.url, harness.clock, mqi_password="not-it")
    start = await harness.processor.start_redirect(request_with(harness))
    for call in (
        lambda: wrong.start_redirect(request_with(harness)),
        lambda: wrong_mqi.redirect_status(start),
    ):
        with pytest.raises(ProcessorError) as failed:
            await call()
        errors.append(f"{failed.value.code} {failed.value.message}")
    assert "PROCESSOR_AUTHENTICATION" in errors[1]
    harness.hang()
    with pytest.raises(ProcessorError) as timed_out:
        await harness.processor.start_redirect(request_with(harness))
    errors.append(f"{timed_out.value.code} {timed_out.value.message}")
    text = caplog.text + " ".join(errors) + repr(harness.processor._config)
    for secret in (SECRET_WORD, MQI_PASSWORD, "not-it"):
        assert secret not in text
        assert hashlib.md5(secret.encode()).hexdigest() not in text.lower()
