"""External payment modules: the reference module (``examples/payment_module.py``), served
over real HTTP, passes the processor contract through :mod:`processors.external_module`; and
the protocol of ``docs/payment-modules.md`` holds — unsigned, stale or misdirected messages
are refused both ways, a pending charge settles by a signed callback, and the document's
signature example and curl blocks run as written.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

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
    ProcessorConfig,
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
from examples import payment_module
from examples.payment_module import PaymentModule
from processors.external_module import ExternalModuleProcessor, signature, signature_problem
from tests.bitcoin_chain import LiveServer, serving
from tests.processor_contract import Behaviour, ProcessorContract

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "payment-modules.md"
SECRET = "test-shared-secret-0123456789abcdef"
ACCOUNT_ID = 7
#: The reference module's test numbers (Stripe's, which the simulator follows too).
_NUMBERS = {
    Behaviour.APPROVE: "4242424242424242",
    Behaviour.DECLINE: "4000000000000002",
    Behaviour.INSUFFICIENT_FUNDS: "4000000000009995",
    Behaviour.TIMEOUT: "4000000000000119",
}
PENDING_CARD = "4000000000003220"


def _card(number: str) -> CardDetails:
    return CardDetails(number=number, exp_month=12, exp_year=2099, cvc="123")


@dataclass
class Kassa:
    """kassa's side of a callback, as ``/callbacks/{account}`` does it: verify with the
    processor, keep the notification, answer what the processor says."""

    processor: ExternalModuleProcessor | None = None
    notifications: list[Notification] = field(default_factory=list)

    async def callback(self, request: Request) -> Response:
        assert self.processor is not None
        incoming = IncomingRequest(
            request.method, request.url.path, dict(request.headers), await request.body()
        )
        try:
            notification = self.processor.parse_notification(incoming)
        except ForgedNotification:
            return Response(status_code=401)
        self.notifications.append(notification)
        reply = self.processor.acknowledge(notification)
        return Response(reply.body, reply.status, media_type=reply.content_type)


@pytest.fixture
def module() -> Iterator[tuple[PaymentModule, LiveServer]]:
    reference = PaymentModule(SECRET, hang_seconds=2.5)
    with serving(reference.app) as server:
        yield reference, server


@pytest.fixture
def kassa() -> Iterator[tuple[Kassa, LiveServer]]:
    receiver = Kassa()
    app = Starlette(routes=[Route("/callbacks/{account}", receiver.callback, methods=["POST"])])
    with serving(app) as server:
        yield receiver, server


def _processor(base_url: str, public_url: str | None = None) -> ExternalModuleProcessor:
    config = ProcessorConfig(
        credentials={"shared_secret": SECRET},
        base_url=base_url,
        account_id=ACCOUNT_ID,
        public_url=public_url,
    )
    # Short, so the hanging card's test is quick (the module hangs for 2.5 s), yet long
    # enough for a loaded machine's ordinary calls.
    return ExternalModuleProcessor(config=config, timeout=1.5)


@pytest.fixture
def processor(
    module: tuple[PaymentModule, LiveServer], kassa: tuple[Kassa, LiveServer]
) -> ExternalModuleProcessor:
    made = _processor(module[1].url, public_url=kassa[1].url)
    kassa[0].processor = made
    return made


@dataclass
class ModuleHarness:
    """The contract's harness: callbacks are built by the reference module's own code."""

    processor: ExternalModuleProcessor
    module: PaymentModule

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
        charge = self.module.charges[request.idempotency_key]
        event = payment_module.event(charge, kind.value, event_id)
        if amount is not None:
            event["amount"] = amount
        return _incoming(json.dumps(event).encode())

    def forged(self, request: IncomingRequest) -> IncomingRequest:
        return replace(request, headers={**request.headers, "x-kassa-signature": "v1=" + "0" * 64})


def _incoming(body: bytes, path: str = f"/callbacks/{ACCOUNT_ID}") -> IncomingRequest:
    """``body`` as kassa receives it at ``path``, signed there by the module."""
    headers = payment_module.signed(SECRET, "POST", path, body)
    return IncomingRequest("POST", path, {k.lower(): v for k, v in headers.items()}, body)


class TestExternalModuleContract(ProcessorContract):
    @pytest.fixture
    def harness(
        self, module: tuple[PaymentModule, LiveServer], processor: ExternalModuleProcessor
    ) -> ModuleHarness:
        return ModuleHarness(processor, module[0])


def _headers(secret: str, timestamp: int, path: str, body: bytes) -> dict[str, str]:
    return {
        "X-Kassa-Timestamp": str(timestamp),
        "X-Kassa-Signature": signature(secret, str(timestamp), "POST", path, body),
    }


async def test_the_module_refuses_a_request_kassa_did_not_sign(
    module: tuple[PaymentModule, LiveServer],
) -> None:
    body = b'{"idempotency_key":"attempt-1"}'
    now = int(time.time())
    spoiled = {
        "unsigned": {},
        "another secret": _headers("another-secret", now, "/status", body),
        "six minutes old": _headers(SECRET, now - 360, "/status", body),
        "signed for another path": _headers(SECRET, now, "/refund", body),
    }
    async with httpx.AsyncClient(base_url=module[1].url) as client:
        for why, headers in spoiled.items():
            answer = await client.post("/status", content=body, headers=headers)
            assert answer.status_code == 401, why
            assert answer.json()["error"]["code"] == "bad_signature"
            # Even a refusal is signed, so kassa can tell it is the module's.
            assert (
                signature_problem(
                    SECRET, answer.headers, "POST", "/status", answer.content, time.time()
                )
                is None
            )
        signed = await client.post(
            "/status", content=body, headers=_headers(SECRET, now, "/status", body)
        )
    assert signed.status_code == 404


@pytest.mark.parametrize(
    "spoil", ["unsigned", "another secret", "six minutes old", "another path", "another key"]
)
async def test_an_answer_kassa_cannot_verify_is_not_trusted(spoil: str) -> None:
    """An impostor (a proxy's page, a wrong base URL, a replayed answer) says "no such charge"
    or "succeeded": lookup fails instead of returning None, and a charge stays unknown."""

    async def impostor(request: Request) -> Response:
        path = request.url.path
        asked = json.loads(await request.body())["idempotency_key"]
        key = "attempt-other" if spoil == "another key" else asked
        charge = {"idempotency_key": key, "reference": "ch_1", "status": "SUCCEEDED"}
        charge |= {"amount": 1250, "currency": "EUR", "decline_code": None, "message": "ok"}
        status, answer = 200, charge
        if path == "/status" and spoil != "another key":
            status, answer = 404, {"error": {"code": "not_found", "message": "no such charge"}}
        body = json.dumps(answer).encode()
        now = int(time.time())
        headers = {
            "unsigned": {},
            "another secret": _headers("another-secret", now, path, body),
            "six minutes old": _headers(SECRET, now - 360, path, body),
            "another path": _headers(SECRET, now, "/refund", body),
            "another key": _headers(SECRET, now, path, body),
        }[spoil]
        return Response(body, status, headers=headers, media_type="application/json")

    app = Starlette(routes=[Route(p, impostor, methods=["POST"]) for p in ("/status", "/charge")])
    with serving(app) as server:
        processor = _processor(server.url)
        with pytest.raises(ProcessorError) as refused:
            await processor.lookup("attempt-1")
        assert refused.value.code == "UNVERIFIED_ANSWER"
        with pytest.raises(ProcessorTimeout):
            await processor.charge(ChargeRequest("tok_1", 1250, "EUR", "attempt-1"))


async def test_a_module_that_does_not_answer_leaves_the_outcome_unknown() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    processor = _processor(closed)
    with pytest.raises(ProcessorTimeout):
        await processor.charge(ChargeRequest("tok_1", 1250, "EUR", "attempt-1"))
    with pytest.raises(ProcessorTimeout) as unanswered:
        await processor.tokenize(_card("4242424242424242"))
    assert "4242" not in unanswered.value.message


async def test_what_a_module_refuses_or_fails_at_means_for_kassa() -> None:
    """Signed error answers: a card refused at /tokenize is the customer's error with the
    module's words; a 5xx leaves a charge unknown and fails a lookup."""
    answers = {
        "/tokenize": (422, {"error": {"code": "card_refused", "message": "Use another card."}}),
        "/charge": (500, {"error": {"code": "internal", "message": "the bank is down"}}),
        "/status": (503, {"error": {"code": "unavailable", "message": "try later"}}),
    }

    async def failing(request: Request) -> Response:
        status, answer = answers[request.url.path]
        body = json.dumps(answer).encode()
        headers = _headers(SECRET, int(time.time()), request.url.path, body)
        return Response(body, status, headers=headers, media_type="application/json")

    app = Starlette(routes=[Route(path, failing, methods=["POST"]) for path in answers])
    with serving(app) as server:
        processor = _processor(server.url)
        with pytest.raises(UserError) as refused:
            await processor.tokenize(_card("4242424242424242"))
        assert (refused.value.code, refused.value.field) == ("CARD_REFUSED", "cardNumber")
        assert "Use another card." in refused.value.message
        with pytest.raises(ProcessorTimeout) as unknown:
            await processor.charge(ChargeRequest("tok_1", 1250, "EUR", "attempt-1"))
        assert "the bank is down" in unknown.value.message
        with pytest.raises(ProcessorError) as failed:
            await processor.lookup("attempt-1")
        assert failed.value.code == "MODULE_ERROR"


def test_a_stale_or_misdirected_callback_is_forged(processor: ExternalModuleProcessor) -> None:
    body = json.dumps(
        {"event_id": "evt_9", "kind": "SUCCEEDED", "idempotency_key": "attempt-1", "amount": 5}
    ).encode()
    path = f"/callbacks/{ACCOUNT_ID}"
    stale = IncomingRequest(
        "POST", path, {k.lower(): v for k, v in _headers(SECRET, 0, path, body).items()}, body
    )
    # Another account's callback (signed for /callbacks/8) replayed to this one.
    misdirected = replace(_incoming(body, "/callbacks/8"), path=path)
    tampered = replace(_incoming(body), body=body.replace(b'"amount": 5', b'"amount": 500'))
    for callback in (stale, misdirected, tampered):
        with pytest.raises(ForgedNotification):
            processor.parse_notification(callback)
    assert processor.parse_notification(_incoming(body)).amount == 5


def test_a_verified_callback_of_an_unknown_kind_is_ignored_and_a_malformed_one_refused(
    processor: ExternalModuleProcessor,
) -> None:
    unknown = _incoming(b'{"event_id": "evt_2", "kind": "DISPUTE_OPENED"}')
    assert processor.parse_notification(unknown).kind == NotificationKind.IGNORED
    for body in (
        b"[1]",
        b'{"kind": "SUCCEEDED"}',
        b'{"event_id": "e", "kind": "X", "amount": 1.5}',
    ):
        with pytest.raises(ProcessorError) as malformed:
            processor.parse_notification(_incoming(body))
        assert malformed.value.code == "MALFORMED_NOTIFICATION"


async def test_a_pending_charge_settles_by_a_signed_callback_over_http(
    module: tuple[PaymentModule, LiveServer],
    kassa: tuple[Kassa, LiveServer],
    processor: ExternalModuleProcessor,
) -> None:
    reference, receiver = module[0], kassa[0]
    token = await processor.tokenize(_card(PENDING_CARD))
    request = ChargeRequest(token.token, 3000, "EUR", "attempt-pending")
    pending = await processor.charge(request)
    assert pending.status == ChargeOutcome.UNKNOWN and pending.processor_reference
    assert (await processor.lookup(request.idempotency_key)) == pending
    # Kassa told the module where to call back: this account's callback path.
    assert reference.callback_urls[request.idempotency_key] == f"{kassa[1].url}/callbacks/7"

    assert await asyncio.to_thread(reference.settle, request.idempotency_key, None, "evt_7") == 200
    [settled] = receiver.notifications
    assert (settled.event_id, settled.kind) == ("evt_7", NotificationKind.SUCCEEDED)
    assert (settled.idempotency_key, settled.processor_reference) == (
        request.idempotency_key,
        pending.processor_reference,
    )
    assert (settled.amount, settled.currency) == (3000, "EUR")
    found = await processor.lookup(request.idempotency_key)
    assert found is not None and found.status == ChargeOutcome.SUCCEEDED

    declined = ChargeRequest(token.token, 3000, "EUR", "attempt-pending-declined")
    assert (await processor.charge(declined)).status == ChargeOutcome.UNKNOWN
    settle = reference.settle
    assert (
        await asyncio.to_thread(settle, declined.idempotency_key, "card_declined", "evt_8") == 200
    )
    assert (receiver.notifications[-1].kind, receiver.notifications[-1].decline_code) == (
        NotificationKind.FAILED,
        "card_declined",
    )
    found = await processor.lookup(declined.idempotency_key)
    assert found is not None and found.status == ChargeOutcome.DECLINED

    # A callback the module did not sign gets 401 and is not applied.
    event = payment_module.event(reference.charges[request.idempotency_key], "REVERSED")
    url = reference.callback_urls[request.idempotency_key]
    assert (
        await asyncio.to_thread(payment_module.post_callback, url, "not-the-secret", event) == 401
    )
    assert len(receiver.notifications) == 2


async def test_the_module_keeps_idempotency_keys_and_refuses_what_it_cannot_charge(
    processor: ExternalModuleProcessor,
) -> None:
    token = await processor.tokenize(_card("4242424242424242"))
    request = ChargeRequest(token.token, 1000, "EUR", "attempt-keys")
    charged = await processor.charge(request)
    assert charged.processor_reference is not None
    with pytest.raises(IdempotencyConflict):
        await processor.charge(replace(request, amount=1001))
    with pytest.raises(ChargeRefused) as refused:
        await processor.charge(ChargeRequest("tok_unknown", 1000, "EUR", "attempt-unknown"))
    assert refused.value.code == "INVALID_TOKEN"

    first = await processor.refund(charged.processor_reference, 600, "refund-1")
    assert first.succeeded
    assert await processor.refund(charged.processor_reference, 600, "refund-1") == first
    with pytest.raises(IdempotencyConflict):
        await processor.refund(charged.processor_reference, 300, "refund-1")
    beyond = await processor.refund(charged.processor_reference, 401, "refund-2")
    assert not beyond.succeeded and beyond.message


def test_an_account_needs_the_module_address_its_secret_and_https_when_live() -> None:
    secret = {"shared_secret": SECRET}
    for config, code in (
        (ProcessorConfig(credentials=secret), "MISSING_BASE_URL"),
        (ProcessorConfig(base_url="https://module.example"), "MISSING_CREDENTIAL"),
        (
            ProcessorConfig(credentials=secret, mode=Mode.LIVE, base_url="http://module.example"),
            "INSECURE_URL",
        ),
    ):
        with pytest.raises(ProcessorError) as refused:
            ExternalModuleProcessor(config=config)
        assert refused.value.code == code
    for address in ("https://module.example", "HTTPS://Module.Example"):  # schemes: any case
        live = ProcessorConfig(credentials=secret, mode=Mode.LIVE, base_url=address)
        assert ExternalModuleProcessor(config=live).name == "external_module"


def _doc_blocks(fence: str) -> list[str]:
    return re.findall(rf"```{fence}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_documents_worked_signature_example_is_what_both_sides_compute() -> None:
    [example] = [b for b in _doc_blocks("text") if b.startswith("secret:")]
    fields = dict(line.split(":", 1) for line in example.splitlines())
    given = {name: value.strip() for name, value in fields.items()}
    body = given["body"].encode()
    args = (given["secret"], given["timestamp"], given["method"], given["path"], body)
    assert signature(*args) == given["signature"]
    assert payment_module.sign(*args) == given["signature"]


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("openssl") is None, reason="needs curl, openssl"
)
def test_the_documents_shell_examples_run_against_a_copy_of_the_module(
    tmp_path: Path, kassa: tuple[Kassa, LiveServer]
) -> None:
    """Each ``sh`` block of the document, run by bash as written, against the reference module
    copied out of the repository and started the way the document says."""
    blocks = {block.splitlines()[0].removeprefix("# "): block for block in _doc_blocks("sh")}
    ran = {"kcurl", "worked example", "unsigned", "tokenize", "charge", "status", "refund"}
    assert set(blocks) == ran | {"callback"}, "every sh block is run below"
    receiver, kassa_server = kassa
    receiver.processor = _processor("http://unused.invalid")
    shutil.copy(ROOT / "examples" / "payment_module.py", tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "module.log").open("w")
    started = subprocess.Popen(
        [sys.executable, "payment_module.py"],
        cwd=tmp_path,
        env={**os.environ, "KASSA_MODULE_SECRET": SECRET, "PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    env = {
        **os.environ,
        "SECRET": SECRET,
        "MODULE": f"http://127.0.0.1:{port}",
        "KASSA": kassa_server.url,
    }

    def run(name: str, **more: str) -> str:
        script = blocks["kcurl"] + blocks[name]
        done = subprocess.run(
            ["bash", "-euc", script],
            env=env | more,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout.strip()

    try:
        for _ in range(200):
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        worked = run("worked example")
        assert "v1=" + worked in DOC.read_text()
        assert run("unsigned").endswith("401")
        token = json.loads(run("tokenize"))["token"]
        charge = json.loads(run("charge", TOKEN=token))
        assert (charge["status"], charge["amount"], charge["currency"]) == (
            "SUCCEEDED",
            1250,
            "EUR",
        )
        assert json.loads(run("status")) == charge
        refund = json.loads(run("refund", REFERENCE=charge["reference"]))
        assert refund["status"] == "SUCCEEDED"
        assert json.loads(run("callback")) == {"received": True}
    finally:
        started.terminate()
        started.wait(timeout=10)
        log.close()
    [event] = receiver.notifications
    assert (event.event_id, event.kind, event.amount) == (
        "evt_1001",
        NotificationKind.SUCCEEDED,
        1250,
    )
    # The card number reached the module and went nowhere else.
    assert "4242424242424242" not in (tmp_path / "module.log").read_text()
