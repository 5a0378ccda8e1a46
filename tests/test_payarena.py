"""Payarena (:mod:`processors.payarena`) against its fake (:mod:`processors.fakes.payarena`) over
real HTTP on loopback: the redirect contract (Payarena signs nothing, so its callbacks only
ask kassa to look), then what is Payarena's own — naira from kobo with the numeric currency
code, NGN only, the status deciding every outcome, and no secret key in logs or errors."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from billing.errors import UserError
from billing.payment_systems import (
    IncomingRequest,
    Mode,
    NotificationKind,
    ProcessorConfig,
    RedirectStart,
)
from billing.processing import ChargeOutcome, ChargeRefused, ProcessorError, ProcessorTimeout
from processors import payarena
from processors.fakes.payarena import MERCHANT_ID, SECRET_KEY, FakePayarena
from processors.payarena import PayarenaProcessor
from tests.bitcoin_chain import LiveServer, serving
from tests.redirect_browser import Inbox
from tests.redirect_contract import Choice, RedirectContract
from tests.redirect_harness import FakeHarness, request_with

#: Past the slowest honest answer on a busy test machine, well short of the fake's hang.
_TIMEOUT = 1.5


def _config(url: str, **credentials: str) -> ProcessorConfig:
    return ProcessorConfig(
        credentials={"merchant_id": MERCHANT_ID, "secret_key": SECRET_KEY, **credentials},
        mode=Mode.TEST,
        base_url=url,
        account_id=4,
    )


@pytest.fixture(scope="module")
def fake() -> FakePayarena:
    return FakePayarena(hang_seconds=4.0)


@pytest.fixture(scope="module")
def server(fake: FakePayarena) -> Iterator[LiveServer]:
    with serving(fake.app) as live:
        yield live


@dataclass
class PayarenaHarness(FakeHarness[FakePayarena, PayarenaProcessor]):
    currency: str = "NGN"
    amount: int = 150_000  # ₦1,500.00
    signs_notifications: bool = False

    def expire(self, start: RedirectStart) -> None:
        self.fake.expire(start.external_id)

    def notification(self, start: RedirectStart, *_: object, **__: object) -> IncomingRequest:
        """Payarena's callback names the transaction and nothing else worth trusting: the
        payment's request, ``kind`` and ``amount`` cannot be expressed."""
        headers, body = self.fake.callback(start.external_id)
        return IncomingRequest("POST", "/callbacks/4", headers, body)

    def forged(self, notification: IncomingRequest) -> IncomingRequest:
        """Nothing to forge: an unsigned callback is the same whoever sends it."""
        return notification


@pytest.fixture
def harness(fake: FakePayarena, server: LiveServer) -> PayarenaHarness:
    """A short timeout, so a hang gives up quickly, yet long enough for a loaded machine."""
    return PayarenaHarness(fake, PayarenaProcessor(config=_config(server.url), timeout=_TIMEOUT))


class TestPayarenaContract(RedirectContract):
    """The redirect contract, with the module's ``harness``."""


async def test_the_transaction_is_created_in_naira_with_the_numeric_currency(
    harness: PayarenaHarness,
) -> None:
    request = request_with(harness, amount=123_456)
    start = await harness.processor.start_redirect(request)
    transaction = harness.fake.transactions[start.external_id]
    assert (transaction["Amount"], transaction["Currency"]) == ("1234.56", "566")
    assert transaction["_description"].endswith(f"^REF:{request.idempotency_key}")
    assert transaction["_return_url"] == request.return_url
    assert start.url.endswith(f"/{start.external_id}") and start.form_fields is None


async def test_only_naira_is_taken_and_nothing_is_sent_for_another_currency(
    harness: PayarenaHarness,
) -> None:
    before = len(harness.fake.transactions)
    with pytest.raises(UserError) as refused:
        await harness.processor.start_redirect(request_with(harness, currency="USD"))
    assert refused.value.code == "UNSUPPORTED_CURRENCY"
    assert len(harness.fake.transactions) == before


@pytest.mark.parametrize(
    ("choice", "code"), [(Choice.CANCEL, "canceled"), (Choice.DECLINE, "declined")]
)
async def test_a_cancel_or_decline_reads_from_the_status(
    harness: PayarenaHarness, choice: Choice, code: str
) -> None:
    start = await harness.processor.start_redirect(request_with(harness))
    query = await harness.pay(start, choice)
    assert query["trxId"] == start.external_id  # posted back to the one return address
    # The post-back is unsigned: what it says is not read, the status is.
    result = await harness.processor.complete_return(
        start, {**query, "status": "APPROVED", "approved": "true"}
    )
    assert (result.status, result.decline_code) == (ChargeOutcome.DECLINED, code)


async def test_a_callback_only_asks_and_the_status_answers(harness: PayarenaHarness) -> None:
    request = request_with(harness)
    start = await harness.processor.start_redirect(request)
    callback = harness.notification(start, request, NotificationKind.SUCCEEDED)
    notification = harness.processor.parse_notification(callback)
    assert (notification.kind, notification.processor_reference) == (
        NotificationKind.CHECK_STATUS,
        start.external_id,
    )
    assert notification.amount is None
    assert (await harness.processor.redirect_status(start)).status == ChargeOutcome.UNKNOWN
    await harness.pay(start, Choice.APPROVE)
    paid = await harness.processor.redirect_status(start)
    assert (paid.status, paid.amount, paid.currency) == (ChargeOutcome.SUCCEEDED, 150_000, "NGN")


def test_a_json_callback_names_the_transaction_too(harness: PayarenaHarness) -> None:
    body = json.dumps({"TransactionId": "70011"}).encode()
    request = IncomingRequest("POST", "/callbacks/4", {"content-type": "application/json"}, body)
    assert harness.processor.parse_notification(request).processor_reference == "70011"
    with pytest.raises(ProcessorError):
        harness.processor.parse_notification(replace(request, body=b"{}"))


async def test_a_transaction_payarena_does_not_know_has_expired(
    harness: PayarenaHarness,
) -> None:
    result = await harness.processor.redirect_status(RedirectStart("http://x/1", "999999"))
    assert (result.status, result.decline_code) == (ChargeOutcome.DECLINED, "expired")


async def test_a_status_query_that_hangs_is_a_timeout(harness: PayarenaHarness) -> None:
    start = await harness.processor.start_redirect(request_with(harness))
    harness.hang()
    with pytest.raises(ProcessorTimeout):
        await harness.processor.complete_return(start, {"trxId": start.external_id})


async def test_no_secret_key_in_logs_or_errors(
    fake: FakePayarena, server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = PayarenaProcessor(config=_config(server.url, secret_key="sekrit-wrong-key"))
    harness = PayarenaHarness(fake, wrong)
    with pytest.raises(ChargeRefused) as refused:
        await wrong.start_redirect(request_with(harness))
    assert refused.value.code == "PROCESSOR_AUTHENTICATION"
    right = PayarenaHarness(fake, PayarenaProcessor(config=_config(server.url), timeout=_TIMEOUT))
    await right.processor.start_redirect(request_with(right))
    fake.hang()
    with pytest.raises(ProcessorTimeout) as timeout:
        await right.processor.start_redirect(request_with(right))
    assert caplog.records
    for text in [caplog.text, *(f"{e!s} {e!r}" for e in (refused.value, timeout.value))]:
        assert "sekrit-wrong-key" not in text and SECRET_KEY not in text


def test_the_processor_declares_a_redirect_without_refunds() -> None:
    processor = PayarenaProcessor(config=_config("http://127.0.0.1:9"))
    assert processor.name == "payarena" and processor.method_kinds == frozenset()
    assert {c.value for c in processor.capabilities} == {"REDIRECT", "NOTIFICATIONS", "STATUS_POLL"}


async def test_the_callback_after_payment_asks_kassa_to_look() -> None:
    inbox = Inbox()
    with serving(inbox.app) as receiver:
        fake = FakePayarena(callback_url=f"{receiver.url}/callbacks/4")
        with serving(fake.app) as server:
            harness = PayarenaHarness(fake, PayarenaProcessor(config=_config(server.url)))
            start = await harness.processor.start_redirect(request_with(harness))
            await harness.pay(start, Choice.APPROVE)
            for _ in range(100):
                if inbox.received:
                    break
                await asyncio.sleep(0.02)
            notification = harness.processor.parse_notification(inbox.received[0])
            assert notification.kind == NotificationKind.CHECK_STATUS
            assert notification.processor_reference == start.external_id
            paid = await harness.processor.redirect_status(start)
    assert paid.status == ChargeOutcome.SUCCEEDED


async def test_a_live_account_is_reached_over_https_only(
    fake: FakePayarena, server: LiveServer
) -> None:
    live = PayarenaProcessor(config=replace(_config(server.url), mode=Mode.LIVE))
    before = len(fake.transactions)
    with pytest.raises(ProcessorError) as refused:
        await live.start_redirect(request_with(PayarenaHarness(fake, live)))
    assert refused.value.code == "INSECURE_URL"
    assert len(fake.transactions) == before


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("Approved", ChargeOutcome.SUCCEEDED),
        ("Approved Successful", ChargeOutcome.SUCCEEDED),
        ("APPROVED", ChargeOutcome.SUCCEEDED),
        ("Initiated", ChargeOutcome.UNKNOWN),
        ("Cancelled", ChargeOutcome.DECLINED),
        ("Declined", ChargeOutcome.DECLINED),
    ],
)
def test_the_guides_statuses(status: str, outcome: ChargeOutcome) -> None:
    """Table 2.0 of Unified Payments' guide: an abandoned transaction stays Initiated."""
    answer = {"Order Id": "1", "Amount": "1500.00", "Currency": "566", "Status": status}
    assert payarena._status_result("1", answer).status == outcome


async def test_a_long_description_keeps_kassas_reference_within_150_characters(
    harness: PayarenaHarness,
) -> None:
    request = request_with(harness, description="Invoice " + "x" * 300)
    start = await harness.processor.start_redirect(request)
    description = harness.fake.transactions[start.external_id]["_description"]
    assert len(description) == 150 and description.endswith(f"^REF:{request.idempotency_key}")
