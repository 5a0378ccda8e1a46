"""``external_module``: a payment system in a process of its own, spoken to over HTTP.

A new payment system is added by writing a small web service (a *module*) that answers
``/tokenize``, ``/charge``, ``/status`` and ``/refund`` and calls kassa back at
``/callbacks/{account}`` when a result comes later; kassa itself does not change.  The
protocol is written down for module authors in ``docs/payment-modules.md`` and
``examples/payment_module.py`` implements it.

Every message, in both directions, is JSON signed with the processor account's
``shared_secret`` (:func:`signature`): the timestamp, method and path are signed with the body,
so a message cannot be replayed after five minutes nor sent to another endpoint or account.
kassa verifies the module's *answers* too, not only its callbacks, because an answer decides
money: a signed "no such charge" (404 from ``/status``) lets billing treat a charge as never
made, and an error page from a proxy or a wrong base URL must never be read that way.

A charge the module cannot decide at once answers ``PENDING``: it becomes
:attr:`~billing.processing.ChargeOutcome.UNKNOWN`, which billing already reconciles by lookup
and by the module's callback, exactly like a charge whose answer was lost.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from billing.errors import UserError
from billing.payment_systems import (
    Capability,
    ForgedNotification,
    IncomingRequest,
    MethodKind,
    Notification,
    NotificationKind,
    NotificationReply,
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
    RefundResult,
    card_brand,
    validate_card,
)
from processors.http import require_https

#: How far a message's timestamp may be from now, either way (clocks drift a little).
TOLERANCE_SECONDS = 300
TIMESTAMP_HEADER = "X-Kassa-Timestamp"
SIGNATURE_HEADER = "X-Kassa-Signature"

#: A charge's status in the protocol → its outcome for billing.
_CHARGE_STATUSES = {
    "SUCCEEDED": ChargeOutcome.SUCCEEDED,
    "DECLINED": ChargeOutcome.DECLINED,
    "PENDING": ChargeOutcome.UNKNOWN,
}
#: A callback's kind → what it means; a kind kassa does not know is verified and ignored.
_NOTIFICATION_KINDS = {
    kind.value: kind
    for kind in (
        NotificationKind.SUCCEEDED,
        NotificationKind.FAILED,
        NotificationKind.REVERSED,
        NotificationKind.REFUNDED,
    )
}


def signature(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256, keyed by ``secret``, of
    ``"{timestamp}.{method}.{path}."`` followed by the raw ``body``.

    An answer is signed with the method and path of the request it answers.
    """
    message = f"{timestamp}.{method}.{path}.".encode() + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, method: str, path: str, body: bytes) -> dict[str, str]:
    """The timestamp and signature headers for a message sent now."""
    timestamp = str(int(time.time()))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, method, path, body),
    }


def signature_problem(
    secret: str, headers: Mapping[str, str], method: str, path: str, body: bytes, now: float
) -> str | None:
    """Why a message (``headers`` by lower-case name) is not the module's, or None if it is.

    The timestamp is checked before the signature so a stale message is reported as such;
    the comparison is constant-time.
    """
    given = headers.get(SIGNATURE_HEADER.lower(), "")
    timestamp = headers.get(TIMESTAMP_HEADER.lower(), "")
    if not given:
        return "it is not signed"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return "it has no valid timestamp"
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        return "its timestamp is more than five minutes off"
    expected = signature(secret, timestamp, method, path, body)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return "its signature does not match the shared secret"
    return None


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS context of every call, made once: making one loads the machine's CA store (a
    module's certificate must be trusted there), which costs more than a call to the module."""
    return ssl.create_default_context()


class ExternalModuleProcessor:
    """Forwards tokenize, charge, status and refund to a module at ``config.base_url``.

    ``config.credentials["shared_secret"]`` signs and verifies every message.  ``timeout``
    bounds each call: past it a charge's outcome is unknown (:class:`ProcessorTimeout`).
    All method kinds are possible; the processor account says which its module offers.
    """

    name = "external_module"
    capabilities: frozenset[Capability] = frozenset(
        {
            Capability.TOKEN_CHARGE,
            Capability.ASYNC_RESULT,
            Capability.NOTIFICATIONS,
            Capability.STATUS_POLL,
            Capability.REFUND,
        }
    )
    method_kinds: frozenset[MethodKind] = frozenset(MethodKind)

    def __init__(self, *, config: ProcessorConfig, timeout: float = 10.0) -> None:
        if not config.base_url:
            raise ProcessorError("MISSING_BASE_URL", "the processor account needs the module's URL")
        # /tokenize carries card numbers: never over plain HTTP with real money.
        require_https(config.mode, config.base_url, "payment module")
        self._base_url = config.base_url.rstrip("/")
        self._secret = config.secret("shared_secret")
        self._callback_url = (
            None
            if config.public_url is None or config.account_id is None
            else f"{config.public_url.rstrip('/')}/callbacks/{config.account_id}"
        )
        self._timeout = timeout

    async def tokenize(self, card: CardDetails) -> CardToken:
        """Check the card as every processor does, then hand it to the module for a token.

        The brand and last four digits are kassa's own reading of the number, so the module
        only has to answer the token.
        """
        digits = validate_card(card, datetime.now(UTC).date())
        status, answer = await self._call(
            "/tokenize",
            {
                "card": {
                    "number": digits,
                    "exp_month": card.exp_month,
                    "exp_year": card.exp_year,
                    "cvc": card.cvc,
                    "holder": card.holder,
                }
            },
        )
        if status == 422:
            raise UserError(
                "CARD_REFUSED",
                f"the card was refused: {_error_part(answer, 'message')}",
                "cardNumber",
            )
        if status != 200:
            raise _failure("/tokenize", status, answer)
        return CardToken(
            token=_text(answer, "token"),
            brand=card_brand(digits),
            last4=digits[-4:],
            exp_month=card.exp_month,
            exp_year=card.exp_year,
        )

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge once per idempotency key; ``PENDING`` is an UNKNOWN result.

        Anything but a signed, well-formed answer leaves the outcome unknown (the module may
        have charged), so it raises :class:`ProcessorTimeout` and billing looks the key up.
        """
        try:
            status, answer = await self._call(
                "/charge",
                {
                    "idempotency_key": request.idempotency_key,
                    "token": request.token,
                    "amount": request.amount,
                    "currency": request.currency,
                    "description": request.description,
                    "on_session": request.on_session,
                    "callback_url": self._callback_url,
                },
            )
            if status != 200:
                raise _failure("/charge", status, answer)
            return _charge_result(answer, request.idempotency_key)
        except (ChargeRefused, IdempotencyConflict, ProcessorTimeout):
            raise
        except ProcessorError as error:
            raise ProcessorTimeout(
                f"charge {request.idempotency_key!r}: {error.message}; its outcome is unknown "
                "until it is looked up"
            ) from None

    async def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """The module's charge under ``idempotency_key``; None only on its signed 404."""
        status, answer = await self._call("/status", {"idempotency_key": idempotency_key})
        if status == 404:
            return None
        if status != 200:
            raise _failure("/status", status, answer)
        return _charge_result(answer, idempotency_key)

    async def refund(
        self, processor_reference: str, amount: int, idempotency_key: str
    ) -> RefundResult:
        """Refund part or all of a charge once per key; the module's refusal is a result."""
        status, answer = await self._call(
            "/refund",
            {
                "idempotency_key": idempotency_key,
                "reference": processor_reference,
                "amount": amount,
            },
        )
        if status != 200:
            raise _failure("/refund", status, answer)
        _check_echo(answer, idempotency_key)
        outcome = _text(answer, "status")
        if outcome not in {"SUCCEEDED", "FAILED"}:
            raise _malformed(f"a refund status of {outcome!r}")
        return RefundResult(
            succeeded=outcome == "SUCCEEDED",
            processor_reference=_optional_text(answer, "refund_reference"),
            message=_optional_text(answer, "message") or "",
        )

    def parse_notification(self, request: IncomingRequest) -> Notification:
        """Verify the module's callback (signed for this account's path), then read it."""
        problem = signature_problem(
            self._secret,
            request.headers,
            request.method.upper(),
            request.path,
            request.body,
            time.time(),
        )
        if problem is not None:
            raise ForgedNotification(f"the callback is not the module's: {problem}")
        try:
            event = json.loads(request.body)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            raise ProcessorError("MALFORMED_NOTIFICATION", "the callback is not a JSON object")
        try:
            return Notification(
                event_id=_text(event, "event_id"),
                kind=_NOTIFICATION_KINDS.get(_text(event, "kind"), NotificationKind.IGNORED),
                processor_reference=_optional_text(event, "reference"),
                idempotency_key=_optional_text(event, "idempotency_key"),
                amount=_optional_integer(event, "amount"),
                currency=_optional_text(event, "currency"),
                decline_code=_optional_text(event, "decline_code"),
                message=_optional_text(event, "message") or "",
            )
        except ProcessorError as error:
            raise ProcessorError("MALFORMED_NOTIFICATION", error.message) from None

    def acknowledge(self, notification: Notification) -> NotificationReply:
        """``200 {"received": true}``: the module stops resending the event."""
        return NotificationReply(200, b'{"received":true}', "application/json")

    async def _call(self, endpoint: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST ``payload`` signed to the module; its verified answer's status and JSON.

        No answer at all is :class:`ProcessorTimeout`; an answer that is not signed by the
        module, or not a JSON object, is a :class:`ProcessorError` and is never read.
        """
        body = json.dumps(payload, separators=(",", ":")).encode()
        url = httpx.URL(self._base_url + endpoint)
        headers = {
            "Content-Type": "application/json",
            **signed_headers(self._secret, "POST", url.path, body),
        }
        try:
            async with httpx.AsyncClient(timeout=self._timeout, verify=_tls()) as client:
                response = await client.post(url, content=body, headers=headers)
        except httpx.TransportError:
            # ``from None``: the request (a card number, for /tokenize) stays out of the trace.
            raise ProcessorTimeout(f"no answer from the payment module to {endpoint}") from None
        problem = signature_problem(
            self._secret, response.headers, "POST", url.path, response.content, time.time()
        )
        if problem is not None:
            raise ProcessorError(
                "UNVERIFIED_ANSWER", f"the answer to {endpoint} is not the module's: {problem}"
            )
        try:
            answer = json.loads(response.content)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise _malformed(f"an answer to {endpoint} that is not a JSON object")
        return response.status_code, answer


def _charge_result(answer: Mapping[str, Any], idempotency_key: str) -> ChargeResult:
    """A charge object of the protocol as billing's result."""
    _check_echo(answer, idempotency_key)
    status = _text(answer, "status")
    outcome = _CHARGE_STATUSES.get(status)
    if outcome is None:
        raise _malformed(f"a charge status of {status!r}")
    decline_code = _optional_text(answer, "decline_code")
    if outcome is ChargeOutcome.DECLINED and not decline_code:
        raise _malformed("a declined charge without a decline_code")
    return ChargeResult(
        status=outcome,
        processor_reference=_optional_text(answer, "reference"),
        decline_code=decline_code,
        message=_optional_text(answer, "message") or "",
        amount=_integer(answer, "amount"),
        currency=_text(answer, "currency"),
    )


def _check_echo(answer: Mapping[str, Any], idempotency_key: str) -> None:
    """Refuse a signed answer about another request (one replayed from an earlier call)."""
    if answer.get("idempotency_key") != idempotency_key:
        raise ProcessorError(
            "UNVERIFIED_ANSWER", f"the module answered about another key than {idempotency_key!r}"
        )


def _failure(endpoint: str, status: int, answer: Mapping[str, Any]) -> ProcessorError:
    """The error a signed non-200 answer means: 409 a reused key, 422 a refusal before
    anything happened, anything else the module's failure."""
    message = _error_part(answer, "message")
    if status == 409:
        return IdempotencyConflict("IDEMPOTENCY_KEY_REUSED", message)
    if status == 422:
        return ChargeRefused(_error_part(answer, "code", "refused").upper(), message)
    return ProcessorError(
        "MODULE_ERROR", f"the module answered {endpoint} with {status}: {message}"
    )


def _error_part(answer: Mapping[str, Any], name: str, default: str = "no message") -> str:
    """``code`` or ``message`` of the protocol's error shape ``{"error": {code, message}}``."""
    error = answer.get("error")
    part = error.get(name) if isinstance(error, dict) else None
    return part if isinstance(part, str) and part else default


def _malformed(what: str) -> ProcessorError:
    return ProcessorError("MALFORMED_ANSWER", f"the module sent {what}")


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise _malformed(f"no text {name!r}")
    return value


def _optional_text(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise _malformed(f"a {name!r} that is not text")
    return value


def _integer(data: Mapping[str, Any], name: str) -> int:
    value = _optional_integer(data, name)
    if value is None:
        raise _malformed(f"no integer {name!r}")
    return value


def _optional_integer(data: Mapping[str, Any], name: str) -> int | None:
    """An integer field; a float or a string is refused (amounts are integer minor units)."""
    value = data.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _malformed(f"a {name!r} that is not an integer")
    return value
