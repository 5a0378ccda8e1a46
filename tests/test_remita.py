"""Remita (:mod:`processors.remita`) against its fake (:mod:`processors.fakes.remita`) over real
HTTP on loopback: the redirect contract, then what is Remita's own — the payer's phone and
e-mail and the 50 NGN minimum refused before anything is sent, the RRR's SHA-512 hash worked by
hand, a forged "paid" notification that the status query contradicts, and no credential in logs
or errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest

from billing.errors import UserError
from billing.payment_systems import (
    IncomingRequest,
    NotificationKind,
    Payer,
    ProcessorConfig,
    RedirectStart,
)
from billing.processing import ChargeOutcome, IdempotencyConflict, ProcessorError
from processors.fakes.remita import MERCHANT_ID, SERVICE_TYPE_ID, FakeRemita
from processors.remita import RemitaProcessor, sha512
from tests.bitcoin_chain import LiveServer, serving
from tests.redirect_contract import Choice, RedirectContract
from tests.redirect_harness import Clock, FakeHarness, request_with

#: A key no RRR or date can contain by chance, so the log check means something.
API_KEY = "kassa-remita-key-7f3a"


@pytest.fixture(scope="module")
def fake() -> FakeRemita:
    return FakeRemita(api_key=API_KEY, hang_seconds=3.0)


@pytest.fixture(scope="module")
def server(fake: FakeRemita) -> Iterator[LiveServer]:
    with serving(fake.app) as live:
        yield live


def _processor(url: str, clock: Clock, api_key: str = API_KEY) -> RemitaProcessor:
    credentials = {
        "merchant_id": MERCHANT_ID,
        "service_type_id": SERVICE_TYPE_ID,
        "api_key": api_key,
    }
    config = ProcessorConfig(credentials=credentials, base_url=url)
    return RemitaProcessor(config=config, timeout=1.5, clock=clock)


@dataclass
class RemitaHarness(FakeHarness[FakeRemita, RemitaProcessor]):
    clock: Clock
    currency: str = "NGN"
    amount: int = 10_000
    signs_notifications: bool = False

    def expire(self, start: RedirectStart) -> None:
        """kassa reads an RRR still unpaid at ``expires_at`` as expired: the clock moves there."""
        self.clock.move_to_expiry(start)

    def notification(self, start: RedirectStart, *_: object, **__: object) -> IncomingRequest:
        """Remita's notification names the RRR and nothing signed: ``kind`` and ``amount``
        cannot be expressed (anyone could claim them)."""
        return _incoming(self.fake.notification_body(start.external_id))

    def forged(self, notification: IncomingRequest) -> IncomingRequest:
        return notification  # unsigned: a forgery looks exactly the same


def _incoming(body: bytes) -> IncomingRequest:
    return IncomingRequest("POST", "/callbacks/3", {"content-type": "application/json"}, body)


@pytest.fixture
def harness(fake: FakeRemita, server: LiveServer) -> RemitaHarness:
    clock = Clock()
    return RemitaHarness(fake, _processor(server.url, clock), clock)


class TestRemitaContract(RedirectContract):
    """The redirect contract; ``harness`` is the module's fixture."""


# --- Remita's own ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"phone": None}, "PHONE_REQUIRED", "phone"),
        ({"phone": "  "}, "PHONE_REQUIRED", "phone"),
        ({"payer": Payer(7, "Ada Obi", None)}, "EMAIL_REQUIRED", "email"),
        ({"amount": 4_999}, "AMOUNT_BELOW_MINIMUM", "amount"),
        ({"currency": "USD"}, "CURRENCY_NOT_SUPPORTED", "currency"),
    ],
)
async def test_what_the_customer_must_fix_is_refused_before_anything_is_sent(
    harness: RemitaHarness, change: dict[str, object], code: str, field: str
) -> None:
    request = request_with(harness, **change)
    calls = len(harness.fake.calls)
    with pytest.raises(UserError) as refused:
        await harness.processor.start_redirect(request)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert len(harness.fake.calls) == calls


async def test_fifty_naira_is_enough(harness: RemitaHarness) -> None:
    start = await harness.processor.start_redirect(request_with(harness, amount=5_000))
    assert harness.fake.payments[start.external_id]["amount"] == "50.00"


async def test_the_rrr_is_asked_for_with_the_documented_hash(
    harness: RemitaHarness, server: LiveServer
) -> None:
    """SHA-512 of merchantId + serviceTypeId + orderId + amount + apiKey, the expected value
    computed with sha512sum, not with the code under test."""
    assert sha512(MERCHANT_ID, SERVICE_TYPE_ID, "payment-42", "100.00", API_KEY) == (
        "8208515e394dc93dc4c8f3058e938b13c1cd450008fd87c6f6d5d41b1b468bb5"
        "2770519ab2b790cbe19e662b3432c15b84b0a4d63542ce99a0ec08b96c38b94e"
    )
    request = request_with(harness, idempotency_key="payment-42", amount=10_000)
    start = await harness.processor.start_redirect(request)
    assert harness.fake.calls[-1].authorized  # the fake computed the same token itself
    payment = harness.fake.payments[start.external_id]
    assert (payment["orderId"], payment["amount"]) == ("payment-42", "100.00")
    assert start.form_fields == {
        "merchantId": MERCHANT_ID,
        "hash": sha512(MERCHANT_ID, start.external_id, API_KEY),
        "rrr": start.external_id,
        "responseurl": request.return_url,
    }
    wrong = _processor(server.url, harness.clock, api_key="not-the-key")
    with pytest.raises(ProcessorError) as refused:
        await wrong.start_redirect(replace(request, idempotency_key="payment-43"))
    assert refused.value.code == "REMITA_QUERY_FAILED"
    assert not harness.fake.calls[-1].authorized


async def test_a_second_start_reuses_the_rrr_of_the_first(harness: RemitaHarness) -> None:
    """Remita's order status finds the RRR made under the payment's key (as after a start
    whose answer was lost), so one payment never becomes two RRRs."""
    request = request_with(harness)
    first = await harness.processor.start_redirect(request)
    again = await harness.processor.start_redirect(request)
    assert again.external_id == first.external_id
    orders = [p for p in harness.fake.payments.values() if p["orderId"] == request.idempotency_key]
    assert len(orders) == 1
    with pytest.raises(IdempotencyConflict):
        await harness.processor.start_redirect(replace(request, amount=request.amount + 100))


async def test_a_forged_paid_notification_does_not_count(harness: RemitaHarness) -> None:
    """Anyone can post "this RRR was paid": the notification only makes kassa ask, and
    Remita's answer is that it was not."""
    start = await harness.processor.start_redirect(request_with(harness))
    forged = _incoming(harness.fake.notification_body(start.external_id, amount="100.00"))
    notification = harness.processor.parse_notification(forged)
    assert notification.kind == NotificationKind.CHECK_STATUS
    assert notification.amount is None and notification.processor_reference == start.external_id
    status = await harness.processor.redirect_status(start)
    assert status.status == ChargeOutcome.UNKNOWN


async def test_a_paid_rrr_is_notified_and_confirmed_by_the_status(harness: RemitaHarness) -> None:
    request = request_with(harness)
    start = await harness.processor.start_redirect(request)
    query = await harness.pay(start, Choice.APPROVE)
    assert query["RRR"] == start.external_id and query["orderID"] == request.idempotency_key
    notification = harness.processor.parse_notification(_incoming(harness.fake.notifications[-1]))
    assert notification.processor_reference == start.external_id
    status = await harness.processor.redirect_status(start)
    assert (status.status, status.processor_reference, status.amount) == (
        ChargeOutcome.SUCCEEDED,
        start.external_id,
        request.amount,
    )
    harness.clock.now = datetime(2027, 1, 1, tzinfo=UTC)  # paid stays paid after the lifetime
    assert (await harness.processor.redirect_status(start)).status == ChargeOutcome.SUCCEEDED


async def test_an_aborted_payment_is_canceled(harness: RemitaHarness) -> None:
    start = await harness.processor.start_redirect(request_with(harness))
    result = await harness.processor.complete_return(start, await harness.pay(start, Choice.CANCEL))
    assert (result.status, result.decline_code) == (ChargeOutcome.DECLINED, "canceled")


async def test_a_notification_without_an_rrr_is_malformed(harness: RemitaHarness) -> None:
    with pytest.raises(ProcessorError) as malformed:
        harness.processor.parse_notification(_incoming(b'[{"amount": "100.00"}]'))
    assert malformed.value.code == "MALFORMED_NOTIFICATION"


async def test_a_wrong_api_key_never_reads_as_a_declined_payment(
    harness: RemitaHarness, server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A status query Remita refuses raises; and neither the key nor anything else secret
    reaches the logs or the errors."""
    caplog.set_level(logging.DEBUG)
    start = await harness.processor.start_redirect(request_with(harness))
    wrong = _processor(server.url, harness.clock, api_key="not-the-key")
    errors: list[str] = []
    with pytest.raises(ProcessorError) as failed:
        await wrong.redirect_status(start)
    assert failed.value.code == "REMITA_QUERY_FAILED"
    errors.append(failed.value.message)
    harness.hang()
    with pytest.raises(ProcessorError) as timed_out:
        await harness.processor.start_redirect(request_with(harness))
    errors.append(timed_out.value.message)
    text = caplog.text + " ".join(errors) + repr(harness.processor._config)
    assert API_KEY not in text and "not-the-key" not in text
