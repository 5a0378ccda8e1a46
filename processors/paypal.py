"""``paypal``: PayPal Checkout through the Orders v2 REST API, implementing
:class:`billing.payment_systems.RedirectProcessor` and
:class:`billing.payment_systems.NotifiedProcessor`.

The API is ``https://api-m.sandbox.paypal.com`` in test mode and ``https://api-m.paypal.com``
live (``config.base_url`` points it at the local fake, :mod:`processors.fakes.paypal`; a live
account's address must be HTTPS, ``INSECURE_URL`` before any call otherwise).  It
takes JSON, answers JSON, and is called with an OAuth 2.0 access token got by the
client-credentials grant (``POST /v1/oauth2/token`` with the REST app's ``client_id`` and
``client_secret`` as HTTP Basic).  The token is cached for the process (processors are made per
request) until shortly before its ``expires_in`` runs out (PayPal's are good for hours), and
fetched again once if PayPal answers 401 to it before then.

A payment is an order (``POST /v2/checkout/orders``, intent ``CAPTURE``): one purchase unit with
the amount as PayPal's decimal string (made from minor units, never through a float; HUF, JPY
and TWD take no decimals at PayPal), kassa's key as ``custom_id`` and ``invoice_id`` (so the
webhook and PayPal's own reports name kassa's payment, and PayPal refuses a second payment under
the same invoice id), and the return and cancel addresses in
``payment_source.paypal.experience_context``.  The customer is sent to the order's
``payer-action`` link (``approve`` in the older ``application_context`` form).  Every POST
carries ``PayPal-Request-Id``, which PayPal wants distinct per call: the payment's key on the
create (a retried start is the same order) and ``<key>-capture`` on the capture.

Nothing counts because the customer came back: :meth:`PayPalProcessor.complete_return` reads
the order and captures it.  A capture of an order the payer never approved fails with
``ORDER_NOT_APPROVED`` and stays UNKNOWN (pending) — cancel or not, it can still be approved
until the order expires; ``INSTRUMENT_DECLINED`` is DECLINED; a ``COMPLETED`` capture is
SUCCEEDED for the amount PayPal captured.  An order PayPal no longer knows (orders the payer did
not approve are dropped after a few hours, and PayPal answers 404) is DECLINED ``expired``.
:meth:`PayPalProcessor.redirect_status` (reconciliation) captures an order the payer approved
but never came back from, under the same ``PayPal-Request-Id``.

Webhooks (``PAYMENT.CAPTURE.COMPLETED`` / ``DENIED`` / ``REFUNDED`` / ``REVERSED``) are signed
by PayPal; kassa asks PayPal whether the signature is good
(``POST /v1/notifications/verify-webhook-signature`` with the ``paypal-transmission-*``,
``paypal-cert-url`` and ``paypal-auth-algo`` headers, the endpoint's ``webhook_id`` credential
and the event exactly as received) before it reads anything.  That is an HTTP call, so
:meth:`PayPalProcessor.verify_notification` is the coroutine callers in async code should use;
:meth:`PayPalProcessor.parse_notification` (the synchronous protocol method) makes the same
call with a blocking client.

Timeouts and connection failures raise :class:`~billing.processing.ProcessorTimeout`; the
order's fate is then read with :meth:`PayPalProcessor.redirect_status`.  Credentials and tokens
appear in no log line and no error: errors carry PayPal's ``name``, ``issue`` and ``debug_id``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from billing.errors import UserError
from billing.money import format_amount, parse_amount, validate_currency
from billing.payment_systems import (
    Capability,
    ForgedNotification,
    IncomingRequest,
    MethodKind,
    Mode,
    Notification,
    NotificationKind,
    NotificationReply,
    ProcessorConfig,
    RedirectRequest,
    RedirectStart,
)
from billing.processing import (
    ChargeOutcome,
    ChargeRefused,
    ChargeResult,
    ProcessorError,
    ProcessorTimeout,
    RefundResult,
)
from processors.http import require_https, tls

log = logging.getLogger("kassa.processors.paypal")

SANDBOX_URL = "https://api-m.sandbox.paypal.com"
LIVE_URL = "https://api-m.paypal.com"
#: Seconds before a token's expiry at which it is no longer used (a call takes time too).
TOKEN_MARGIN_SECONDS = 60
#: Currencies PayPal takes without decimals although ISO 4217 gives them two.
_WHOLE_AT_PAYPAL = frozenset({"HUF", "TWD"})

#: Webhook events kassa acts on, and what they mean for the payment.
_EVENTS: Mapping[str, NotificationKind] = {
    "PAYMENT.CAPTURE.COMPLETED": NotificationKind.SUCCEEDED,
    "PAYMENT.CAPTURE.DENIED": NotificationKind.FAILED,
    "PAYMENT.CAPTURE.DECLINED": NotificationKind.FAILED,
    "PAYMENT.CAPTURE.REFUNDED": NotificationKind.REFUNDED,
    "PAYMENT.CAPTURE.REVERSED": NotificationKind.REVERSED,
}
#: The webhook headers PayPal's verification call needs, by its field name.
_SIGNATURE_HEADERS: Mapping[str, str] = {
    "auth_algo": "paypal-auth-algo",
    "cert_url": "paypal-cert-url",
    "transmission_id": "paypal-transmission-id",
    "transmission_sig": "paypal-transmission-sig",
    "transmission_time": "paypal-transmission-time",
}


def paypal_value(minor: int, currency: str) -> str:
    """``minor`` units of ``currency`` as PayPal's ``amount.value``: a decimal string with the
    decimals PayPal uses for the currency (none for HUF, JPY, TWD)."""
    text = format_amount(minor, currency)
    if currency in _WHOLE_AT_PAYPAL:
        whole, _, fraction = text.partition(".")
        if fraction.strip("0"):
            raise ChargeRefused("INVALID_AMOUNT", f"PayPal takes whole {currency} amounts only")
        return whole
    return text


def minor_units(amount: Mapping[str, Any]) -> tuple[int, str]:
    """PayPal's ``{"value", "currency_code"}`` as kassa's minor units and currency."""
    currency = validate_currency(str(amount.get("currency_code", "")))
    return parse_amount(str(amount.get("value", "")), currency), currency


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: float


#: Access tokens by (API address, client id, SHA-256 of the secret).  The registry makes a
#: processor per request, so the cache lives here for the process; the secret is in the key
#: only as a digest, so a rotated secret gets a token of its own.
_tokens: dict[tuple[str, str, str], _Token] = {}
_tokens_lock = threading.Lock()


class PayPalProcessor:
    """PayPal for one processor account (``config``: credentials ``client_id``,
    ``client_secret`` and, for webhooks, ``webhook_id``).

    ``timeout`` is per HTTP call; ``clock`` (seconds, monotonic or not) judges the cached
    token's age.
    """

    name = "paypal"
    capabilities = frozenset(
        {
            Capability.REDIRECT,
            Capability.NOTIFICATIONS,
            Capability.STATUS_POLL,
            Capability.REFUND,
        }
    )
    #: A wallet: none of :class:`~billing.payment_systems.MethodKind`'s card brands or bank
    #: debits describes it, so it declares none.
    method_kinds: frozenset[MethodKind] = frozenset()

    def __init__(
        self,
        *,
        config: ProcessorConfig,
        timeout: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        default = LIVE_URL if config.mode is Mode.LIVE else SANDBOX_URL
        self._base_url = (config.base_url or default).rstrip("/")
        self._timeout = timeout
        self._clock = clock

    # --- HTTP ------------------------------------------------------------------------------
    #
    # Requests are built as ``httpx.Request`` objects and answers read by plain functions, so
    # the async calls and the one blocking call (webhook verification from the synchronous
    # ``parse_notification``) share everything but the client that sends them.

    def _token_request(self) -> httpx.Request:
        pair = f"{self._config.secret('client_id')}:{self._config.secret('client_secret')}"
        return httpx.Request(
            "POST",
            f"{self._base_url}/v1/oauth2/token",
            content=b"grant_type=client_credentials",
            headers={
                "Accept": "application/json",
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": f"Basic {base64.b64encode(pair.encode()).decode()}",
            },
        )

    def _token_key(self) -> tuple[str, str, str]:
        secret = hashlib.sha256(self._config.secret("client_secret").encode()).hexdigest()
        return (self._base_url, self._config.secret("client_id"), secret)

    def _accept_token(self, response: httpx.Response) -> str:
        if response.status_code in (400, 401, 403):
            raise ChargeRefused(
                "PROCESSOR_AUTHENTICATION",
                f"PayPal refused the processor account's client id and secret "
                f"({response.status_code})",
            )
        body = _json(response)
        if response.status_code != 200 or not body.get("access_token"):
            raise ProcessorError(f"HTTP_{response.status_code}", "PayPal gave no access token")
        lifetime = float(body.get("expires_in") or 0)
        token = _Token(str(body["access_token"]), self._clock() + lifetime)
        with _tokens_lock:
            _tokens[self._token_key()] = token
        return token.value

    def _cached_token(self) -> str | None:
        with _tokens_lock:
            token = _tokens.get(self._token_key())
        if token is not None and self._clock() < token.expires_at - TOKEN_MARGIN_SECONDS:
            return token.value
        return None

    def _forget_token(self) -> None:
        with _tokens_lock:
            _tokens.pop(self._token_key(), None)

    def _api_request(
        self,
        method: str,
        path: str,
        token: str,
        *,
        body: Mapping[str, Any] | bytes | None = None,
        request_id: str | None = None,
    ) -> httpx.Request:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if method == "POST":
            headers["Content-Type"] = "application/json"
            headers["Prefer"] = "return=representation"
        if request_id is not None:
            headers["PayPal-Request-Id"] = request_id
        content = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        return httpx.Request(method, f"{self._base_url}{path}", content=content, headers=headers)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | bytes | None = None,
        request_id: str | None = None,
    ) -> httpx.Response:
        """One API call with a (cached) token; a 401 fetches a new token and tries once more.

        Raises :class:`ProcessorTimeout` when PayPal does not answer.
        """
        require_https(self._config.mode, self._base_url, "PayPal")
        try:
            async with httpx.AsyncClient(timeout=self._timeout, verify=tls()) as client:
                for fresh in (False, True):
                    token = None if fresh else self._cached_token()
                    if token is None:
                        token = self._accept_token(await client.send(self._token_request()))
                    request = self._api_request(
                        method, path, token, body=body, request_id=request_id
                    )
                    response = await client.send(request)
                    if response.status_code != 401:
                        break
                    self._forget_token()
        except httpx.TransportError as error:  # timeouts included
            log.warning("paypal %s %s: no answer (%s)", method, path, type(error).__name__)
            raise ProcessorTimeout(
                f"no answer from PayPal to {method} {path} ({type(error).__name__})"
            ) from None
        return response

    def _call_blocking(self, method: str, path: str, *, body: bytes) -> httpx.Response:
        """:meth:`_call` with a blocking client, for the synchronous ``parse_notification``."""
        require_https(self._config.mode, self._base_url, "PayPal")
        try:
            with httpx.Client(timeout=self._timeout) as client:
                for fresh in (False, True):
                    token = None if fresh else self._cached_token()
                    if token is None:
                        token = self._accept_token(client.send(self._token_request()))
                    response = client.send(self._api_request(method, path, token, body=body))
                    if response.status_code != 401:
                        break
                    self._forget_token()
        except httpx.TransportError as error:
            log.warning("paypal %s %s: no answer (%s)", method, path, type(error).__name__)
            raise ProcessorTimeout(
                f"no answer from PayPal to {method} {path} ({type(error).__name__})"
            ) from None
        return response

    # --- the redirect --------------------------------------------------------------------

    async def start_redirect(self, request: RedirectRequest) -> RedirectStart:
        """Create the order under ``PayPal-Request-Id`` = the payment's key; the customer is
        sent to its approval link."""
        if request.amount <= 0:
            raise UserError("INVALID_AMOUNT", "the amount must be greater than zero", "amount")
        currency = validate_currency(request.currency)
        order = {
            "intent": "CAPTURE",
            "purchase_units": [
                {
                    "reference_id": "default",
                    "custom_id": request.idempotency_key,
                    "invoice_id": request.idempotency_key,
                    "description": request.description[:127],
                    "amount": {
                        "currency_code": currency,
                        "value": paypal_value(request.amount, currency),
                    },
                }
            ],
            "payment_source": {
                "paypal": {
                    "experience_context": {
                        "return_url": request.return_url,
                        "cancel_url": request.cancel_url,
                        "user_action": "PAY_NOW",
                        "shipping_preference": "NO_SHIPPING",
                    }
                }
            },
        }
        response = await self._call(
            "POST", "/v2/checkout/orders", body=order, request_id=request.idempotency_key
        )
        body = _json(response)
        if response.status_code not in (200, 201):
            raise _failure(response, body, "create order")
        links = {link.get("rel"): link.get("href") for link in body.get("links") or []}
        url = links.get("payer-action") or links.get("approve")
        if not url or not body.get("id"):
            raise ProcessorError("MALFORMED_ANSWER", "PayPal's order has no approval link")
        log.info("paypal order %s for %s", body["id"], request.idempotency_key)
        return RedirectStart(url=str(url), external_id=str(body["id"]))

    async def _order(self, start: RedirectStart) -> dict[str, Any] | None:
        """The order as PayPal has it now; None when PayPal no longer knows it."""
        response = await self._call("GET", f"/v2/checkout/orders/{start.external_id}")
        body = _json(response)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _failure(response, body, "get order")
        return body

    async def complete_return(self, start: RedirectStart, query: Mapping[str, str]) -> ChargeResult:
        """What became of the order when the customer came back; ``query`` is not read (PayPal
        alone knows whether the order was approved).  Only an APPROVED order is captured: a
        capture refused for an order not yet approved would be replayed under the same
        ``PayPal-Request-Id`` after the payer approves, and the payment never captured."""
        return await self.redirect_status(start)

    async def redirect_status(self, start: RedirectStart) -> ChargeResult:
        """The order's state at PayPal; one it no longer knows has expired unpaid.

        An order the payer approved but nobody captured (they closed the tab before coming
        back) is captured here: the approval is their consent, and left alone the order would
        lapse with the customer believing they paid.  The capture's ``PayPal-Request-Id`` is
        the one :meth:`complete_return` uses, so the two never capture twice.
        """
        order = await self._order(start)
        if order is None:
            return _expired(start)
        if order.get("status") == "APPROVED":
            return await self._capture(start, order)
        return _order_result(order)

    async def _capture(self, start: RedirectStart, order: Mapping[str, Any]) -> ChargeResult:
        """Capture ``order`` under ``<key>-capture``; PayPal's refusals as results."""
        key = _custom_id(order) or start.external_id
        response = await self._call(
            "POST",
            f"/v2/checkout/orders/{start.external_id}/capture",
            body=b"{}",
            request_id=f"{key}-capture",
        )
        captured = _json(response)
        if response.status_code in (200, 201):
            return _order_result(captured)
        if response.status_code == 404:
            return _expired(start)
        issue = _issue(captured)
        amount, currency = _order_amount(order)
        if issue == "ORDER_NOT_APPROVED":
            return ChargeResult(
                ChargeOutcome.UNKNOWN, start.external_id, None,
                "The payer has not approved the payment yet.", amount, currency,
            )  # fmt: skip
        if issue in ("INSTRUMENT_DECLINED", "PAYER_CANNOT_PAY", "TRANSACTION_REFUSED"):
            return ChargeResult(
                ChargeOutcome.DECLINED, start.external_id, issue.lower(),
                "PayPal declined the payer's funding source.", amount, currency,
            )  # fmt: skip
        if issue == "ORDER_ALREADY_CAPTURED":
            again = await self._order(start)
            return _expired(start) if again is None else _order_result(again)
        raise _failure(response, captured, "capture order")

    async def refund(
        self, processor_reference: str, amount: int, idempotency_key: str
    ) -> RefundResult:
        """Refund ``amount`` of the capture ``processor_reference`` (a capture id, as
        :meth:`complete_return` reports it) under ``PayPal-Request-Id`` = ``idempotency_key``;
        PayPal's refusal (more than is left, too late) is a result.  The capture is read first
        for its currency, which PayPal's refund names and billing's refund call does not."""
        if amount <= 0:
            raise ChargeRefused("INVALID_AMOUNT", "the amount must be greater than zero")
        response = await self._call("GET", f"/v2/payments/captures/{processor_reference}")
        capture = _json(response)
        if response.status_code == 404:
            return RefundResult(False, None, "PayPal knows no such capture.")
        if response.status_code != 200:
            raise _failure(response, capture, "read the capture")
        currency = minor_units(capture.get("amount") or {})[1]
        body = {"amount": {"value": paypal_value(amount, currency), "currency_code": currency}}
        response = await self._call(
            "POST",
            f"/v2/payments/captures/{processor_reference}/refund",
            body=body,
            request_id=idempotency_key,
        )
        answer = _json(response)
        if response.status_code in (200, 201):
            status = str(answer.get("status"))
            return RefundResult(status in ("COMPLETED", "PENDING"), answer.get("id"),
                                f"Refund {status.lower()}.")  # fmt: skip
        if response.status_code in (400, 404, 422):
            return RefundResult(False, None, _describe(answer))
        raise _failure(response, answer, "refund")

    # --- webhooks --------------------------------------------------------------------------

    def _verification_body(self, request: IncomingRequest) -> bytes:
        """PayPal's verification request, with the event spliced in byte for byte: PayPal
        checks its signature over the body it sent, so the event is not re-serialized."""
        fields: dict[str, str] = {"webhook_id": self._config.secret("webhook_id")}
        for name, header in _SIGNATURE_HEADERS.items():
            value = request.headers.get(header)
            if not value:
                raise ForgedNotification(f"the PayPal webhook has no {header} header")
            fields[name] = value
        try:
            event = json.loads(request.body)
        except ValueError:
            raise ForgedNotification("the PayPal webhook's body is not JSON") from None
        if not isinstance(event, dict):
            raise ForgedNotification("the PayPal webhook's body is not an event")
        head = json.dumps(fields)[:-1].encode()
        return head + b', "webhook_event": ' + request.body + b"}"

    @staticmethod
    def _accept_verification(response: httpx.Response) -> None:
        body = _json(response)
        if response.status_code != 200:
            raise _failure(response, body, "verify webhook signature")
        if body.get("verification_status") != "SUCCESS":
            raise ForgedNotification()

    async def verify_notification(self, request: IncomingRequest) -> Notification:
        """Have PayPal verify the webhook's signature, then read it (the async path)."""
        body = self._verification_body(request)
        response = await self._call("POST", "/v1/notifications/verify-webhook-signature", body=body)
        self._accept_verification(response)
        return read_event(request.body)

    def parse_notification(self, request: IncomingRequest) -> Notification:
        """:meth:`verify_notification` for synchronous callers: the same verification call,
        made with a blocking client (it holds the calling thread for up to ``timeout``)."""
        body = self._verification_body(request)
        response = self._call_blocking(
            "POST", "/v1/notifications/verify-webhook-signature", body=body
        )
        self._accept_verification(response)
        return read_event(request.body)

    def acknowledge(self, notification: Notification) -> NotificationReply:
        """PayPal wants any 2xx; anything else it resends (up to 25 times over 3 days)."""
        return NotificationReply(200, b"", "text/plain")


def read_event(raw: bytes) -> Notification:
    """A verified webhook event as a :class:`Notification`: the capture's id is the
    processor reference, ``custom_id`` kassa's key, the event id what it is applied once
    under."""
    try:
        event = json.loads(raw)
        event_id, event_type = str(event["id"]), str(event["event_type"])
        resource = event.get("resource") or {}
    except (ValueError, KeyError, TypeError):
        raise ProcessorError("MALFORMED_NOTIFICATION", "the PayPal event is not an event") from None
    kind = _EVENTS.get(event_type)
    if kind is None:
        return Notification(event_id, NotificationKind.IGNORED, message=event_type)
    amount, currency = minor_units(resource["amount"]) if resource.get("amount") else (None, None)
    if kind in (NotificationKind.REFUNDED, NotificationKind.REVERSED):
        # The resource is the refund (or reversal); the capture it takes from is its "up" link.
        links = {link.get("rel"): link.get("href") for link in resource.get("links") or []}
        reference = str(links.get("up", "")).rstrip("/").rpartition("/")[2] or None
    else:
        reference = resource.get("id")
    related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
    return Notification(
        event_id,
        kind,
        processor_reference=reference,
        idempotency_key=resource.get("custom_id"),
        amount=amount,
        currency=currency,
        decline_code="capture_denied" if kind is NotificationKind.FAILED else None,
        message=str(event.get("summary") or event_type)
        + (f" (order {related['order_id']})" if related.get("order_id") else ""),
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _issue(body: Mapping[str, Any]) -> str:
    """The first ``details[].issue`` of a PayPal error (``ORDER_NOT_APPROVED`` …)."""
    details = body.get("details") or [{}]
    return str(details[0].get("issue") or body.get("name") or "")


def _describe(body: Mapping[str, Any]) -> str:
    details = body.get("details") or [{}]
    text = details[0].get("description") or body.get("message") or "PayPal refused the request"
    debug = body.get("debug_id")
    return f"{text} (debug id {debug})" if debug else str(text)


def _failure(response: httpx.Response, body: Mapping[str, Any], what: str) -> ProcessorError:
    """The error an unexpected answer means: PayPal's issue and debug id, nothing secret."""
    code = _issue(body) or f"HTTP_{response.status_code}"
    if response.status_code in (400, 422):
        return ChargeRefused(code, f"PayPal refused to {what}: {_describe(body)}")
    return ProcessorError(code, f"PayPal could not {what}: {_describe(body)}")


def _custom_id(order: Mapping[str, Any]) -> str | None:
    units = order.get("purchase_units") or [{}]
    value = units[0].get("custom_id")
    return str(value) if value else None


def _order_amount(order: Mapping[str, Any]) -> tuple[int, str]:
    units = order.get("purchase_units") or [{}]
    return minor_units(units[0].get("amount") or {})


def _expired(start: RedirectStart) -> ChargeResult:
    return ChargeResult(
        ChargeOutcome.DECLINED, start.external_id, "expired",
        "The PayPal order expired before it was paid.", 0, "",
    )  # fmt: skip


def _order_result(order: Mapping[str, Any]) -> ChargeResult:
    """An order (as read or as its capture answered) as kassa's result: SUCCEEDED only with a
    completed capture, whose id and amount it reports."""
    reference = str(order.get("id"))
    units = order.get("purchase_units") or [{}]
    captures = (units[0].get("payments") or {}).get("captures") or []
    status = order.get("status")
    if captures:
        capture = captures[-1]
        amount, currency = minor_units(capture.get("amount") or {})
        capture_status = capture.get("status")
        if capture_status in ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"):
            return ChargeResult(ChargeOutcome.SUCCEEDED, str(capture.get("id")), None,
                                "Paid with PayPal.", amount, currency)  # fmt: skip
        if capture_status == "DECLINED":
            return ChargeResult(ChargeOutcome.DECLINED, str(capture.get("id")), "capture_declined",
                                "PayPal declined the payment.", amount, currency)  # fmt: skip
        return ChargeResult(ChargeOutcome.UNKNOWN, str(capture.get("id")), None,
                            f"The PayPal capture is {str(capture_status).lower()}.", amount,
                            currency)  # fmt: skip
    amount, currency = _order_amount(order)
    if status == "VOIDED":
        return ChargeResult(ChargeOutcome.DECLINED, reference, "voided",
                            "The PayPal order was voided.", amount, currency)  # fmt: skip
    return ChargeResult(ChargeOutcome.UNKNOWN, reference, None,
                        f"The PayPal order is {str(status).lower()}.", amount, currency)  # fmt: skip


__all__ = ["PayPalProcessor", "minor_units", "paypal_value", "read_event"]
