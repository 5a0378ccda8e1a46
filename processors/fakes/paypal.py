"""A fake PayPal for the tests and the demo: the part of PayPal's REST API kassa speaks
(OAuth 2.0 client credentials, Orders v2, captures and refunds, webhook signature
verification) and the buyer's approval page, served by a Starlette app.

API (JSON in and out, PayPal's error shape ``{"name", "message", "debug_id", "details":
[{"issue", "description"}]}``):

* ``POST /v1/oauth2/token`` — HTTP Basic with :data:`CLIENT_ID`/:data:`CLIENT_SECRET` and
  ``grant_type=client_credentials``; the token lives ``token_lifetime`` seconds
  (``expires_in``).  Every other API call wants ``Authorization: Bearer <token>`` (401
  ``invalid_token`` otherwise, an expired token too).
* ``POST /v2/checkout/orders`` (intent ``CAPTURE``, one purchase unit), ``GET
  /v2/checkout/orders/{id}``, ``POST /v2/checkout/orders/{id}/capture``, ``GET
  /v2/payments/captures/{id}``, ``POST /v2/payments/captures/{id}/refund``.  Amounts are
  checked as PayPal does (a decimal string; none for HUF, JPY, TWD: ``DECIMAL_PRECISION``).
  POSTs honour ``PayPal-Request-Id``: the first answer is saved and replayed for the same id.
  An order's approval link is ``payer-action`` when the return addresses came in
  ``payment_source.paypal.experience_context`` and ``approve`` for ``application_context``.
* Capturing an order the buyer has not approved answers 422 ``ORDER_NOT_APPROVED``; one
  approved by the declining test buyer 422 ``INSTRUMENT_DECLINED``; a captured one 422
  ``ORDER_ALREADY_CAPTURED``; an expired one (:meth:`FakePayPal.expire`, or ``POST
  /_fake/orders/{id}/expire``) is gone: 404 ``RESOURCE_NOT_FOUND``, as PayPal drops orders
  nobody approved.
* ``POST /v1/notifications/verify-webhook-signature`` answers ``verification_status``
  ``SUCCESS`` or ``FAILURE`` for events this fake signed.

The buyer's page (the approval link, ``GET /checkoutnow?token=ORDER``) has three buttons:
*Pay* (approve, then back to ``return_url?token=ORDER&PayerID=…``), *Cancel and return*
(``cancel_url?token=ORDER``) and *Pay as the declining test buyer* — the stand-in for the
sandbox's negative testing, where a buyer's funding source fails at capture: PayPal then
answers the capture ``INSTRUMENT_DECLINED``.

Webhooks: with ``webhook_url`` set, each capture is announced there
(``PAYMENT.CAPTURE.COMPLETED``, once, after the capture's answer).  :meth:`FakePayPal.webhook`
builds an event delivery (headers and body) as PayPal sends
it — ``paypal-transmission-id``, ``-time``, ``-sig``, ``paypal-cert-url`` and
``paypal-auth-algo``.  PayPal signs ``<transmission id>|<transmission time>|<webhook id>|<CRC32
of the body, decimal>`` with its private key (``SHA256withRSA``); the fake signs the same string
with HMAC-SHA256 under a key only it holds (``paypal-auth-algo: HMACSHA256``), which is why
only its verification endpoint can tell a good signature, as with PayPal.

:meth:`FakePayPal.hang` makes the next API call answer only after ``hang_seconds``.  Run it
alone with ``uvicorn processors.fakes.paypal:app``.  Nothing here imports kassa's ``billing``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import hashlib
import hmac
import html
import itertools
import json
import secrets
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from processors.fakes.urls import base

CLIENT_ID = "kassa-fake-client"
CLIENT_SECRET = "kassa-fake-secret"
#: The id of the webhook endpoint registered at the fake (kassa's ``webhook_id`` credential).
WEBHOOK_ID = "8PT597110X687430LKGECATA"
#: Decimals PayPal takes per currency where they differ from two.
_DECIMALS = {"JPY": 0, "HUF": 0, "TWD": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, name: str, issue: str, description: str) -> JSONResponse:
    return JSONResponse(
        {
            "name": name,
            "message": description,
            "debug_id": secrets.token_hex(6),
            "details": [{"issue": issue, "description": description}],
        },
        status,
    )


def signed_string(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> str:
    """What PayPal signs for a webhook: the transmission id and time, the webhook's id and the
    body's CRC32 (unsigned, in decimal), joined by ``|``."""
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}"


@dataclass
class RecordedRequest:
    """An API request as the fake received it, for tests to look at."""

    method: str
    path: str
    request_id: str | None
    authorization: str


@dataclass
class FakePayPal:
    """PayPal's state: tokens, orders, captures, replayable answers, and the signing key."""

    token_lifetime: int = 32400
    hang_seconds: float = 2.0
    webhook_id: str = WEBHOOK_ID
    #: Where captures are announced (``PAYMENT.CAPTURE.COMPLETED``), signed; None: nowhere.
    webhook_url: str | None = None
    #: The HTTP status of each delivery to ``webhook_url``, in order.
    deliveries: list[int] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    captures: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    #: Orders the declining test buyer approved (their capture is INSTRUMENT_DECLINED).
    declining: set[str] = field(default_factory=set)
    _replies: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    _signing_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _hangs: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.app = self._build_app()

    # --- switches for tests and the demo ---------------------------------------------------

    def hang(self, calls: int = 1) -> None:
        """Make the next ``calls`` API calls answer only after ``hang_seconds``."""
        with self._lock:
            self._hangs += calls

    def expire(self, order_id: str) -> None:
        """Let an unpaid order lapse: PayPal forgets it (404 from then on)."""
        self.orders[order_id]["_expired"] = True

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}{secrets.token_hex(6).upper()}"

    # --- webhooks --------------------------------------------------------------------------

    def event(
        self,
        event_type: str,
        resource: Mapping[str, Any],
        *,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """A webhook event of ``event_type`` about ``resource`` (a capture or refund)."""
        return {
            "id": event_id or f"WH-{self._id('')}",
            "event_version": "1.0",
            "create_time": _now(),
            "resource_type": "refund" if "REFUNDED" in event_type else "capture",
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": f"{event_type.replace('.', ' ').title()}",
            "resource": dict(resource),
        }

    def capture_event(
        self,
        order_id: str,
        event_type: str,
        *,
        amount: str | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """The event PayPal sends about ``order_id``'s capture (its refund for REFUNDED, its
        reversal for REVERSED); ``amount`` overrides the value it names."""
        order = self.orders[order_id]
        unit = order["purchase_units"][0]
        captures = (unit.get("payments") or {}).get("captures") or []
        capture = copy.deepcopy(captures[-1]) if captures else {
            "id": self._id("CAP"),
            "status": "PENDING",
            "amount": dict(unit["amount"]),
            "custom_id": unit.get("custom_id"),
            "invoice_id": unit.get("invoice_id"),
            "links": [],
        }  # fmt: skip
        capture["supplementary_data"] = {"related_ids": {"order_id": order_id}}
        resource: dict[str, Any]
        if event_type in ("PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"):
            resource = {
                "id": self._id("RF"),
                "status": "COMPLETED",
                "amount": dict(capture["amount"]),
                "custom_id": capture.get("custom_id"),
                "invoice_id": capture.get("invoice_id"),
                "links": [{"rel": "up", "method": "GET",
                           "href": f"/v2/payments/captures/{capture['id']}"}],
            }  # fmt: skip
        else:
            resource = capture
        if amount is not None:
            resource["amount"] = {**dict(resource["amount"]), "value": amount}
        return self.event(event_type, resource, event_id=event_id)

    def webhook(self, event: Mapping[str, Any], base_url: str = "") -> tuple[dict[str, str], bytes]:
        """``event`` as PayPal delivers it: the signed headers and the body."""
        body = json.dumps(event, separators=(",", ":")).encode()
        transmission_id = (
            f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-11ee-{secrets.token_hex(6)}"
        )
        transmission_time = _now()
        signature = hmac.new(
            self._signing_key,
            signed_string(transmission_id, transmission_time, self.webhook_id, body).encode(),
            hashlib.sha256,
        ).digest()
        headers = {
            "content-type": "application/json",
            "paypal-transmission-id": transmission_id,
            "paypal-transmission-time": transmission_time,
            "paypal-transmission-sig": base64.b64encode(signature).decode(),
            "paypal-cert-url": f"{base_url}/v1/notifications/certs/CERT-fake-hmac",
            "paypal-auth-algo": "HMACSHA256",
        }
        return headers, body

    async def _deliver(self, event: Mapping[str, Any], base_url: str) -> None:
        """POST ``event`` to :attr:`webhook_url` as PayPal would (once: no retries here)."""
        assert self.webhook_url is not None
        headers, body = self.webhook(event, base_url)
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                reply = await client.post(self.webhook_url, content=body, headers=headers)
            self.deliveries.append(reply.status_code)
        except httpx.TransportError:
            self.deliveries.append(0)

    def _verify(self, payload: Mapping[str, Any]) -> bool:
        event = payload.get("webhook_event")
        if not isinstance(event, dict):
            return False
        body = json.dumps(event, separators=(",", ":")).encode()
        message = signed_string(
            str(payload.get("transmission_id")),
            str(payload.get("transmission_time")),
            str(payload.get("webhook_id")),
            body,
        )
        expected = hmac.new(self._signing_key, message.encode(), hashlib.sha256).digest()
        try:
            given = base64.b64decode(str(payload.get("transmission_sig")), validate=True)
        except (binascii.Error, ValueError):
            return False
        return payload.get("webhook_id") == self.webhook_id and hmac.compare_digest(expected, given)

    # --- the API ---------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expiry = self.tokens.get(token)
        return scheme == "Bearer" and expiry is not None and time.time() < expiry

    async def _token(self, request: Request) -> Response:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        try:
            pair = base64.b64decode(credentials).decode() if scheme == "Basic" else ""
        except (binascii.Error, UnicodeDecodeError):
            pair = ""
        form = await request.form()
        if not hmac.compare_digest(pair, f"{CLIENT_ID}:{CLIENT_SECRET}"):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client Authentication failed"},
                401,
            )
        if form.get("grant_type") != "client_credentials":
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": "Grant type is NULL"},
                400,
            )
        token = f"A21AA{secrets.token_urlsafe(24)}"
        self.tokens[token] = time.time() + self.token_lifetime
        return JSONResponse(
            {
                "scope": "https://uri.paypal.com/services/payments/payment",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": self.token_lifetime,
                "nonce": f"{_now()}{secrets.token_hex(4)}",
            }
        )

    def _order_view(self, order: Mapping[str, Any]) -> dict[str, Any]:
        return {
            key: copy.deepcopy(value) for key, value in order.items() if not key.startswith("_")
        }

    def _found(self, order_id: str) -> dict[str, Any] | None:
        order = self.orders.get(order_id)
        return None if order is None or order.get("_expired") else order

    def _create_order(self, request: Request, body: dict[str, Any]) -> Response:
        units = body.get("purchase_units")
        if body.get("intent") not in ("CAPTURE", "AUTHORIZE") or not units:
            return _error(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER",
                          "intent and purchase_units are required.")  # fmt: skip
        amount = units[0].get("amount") or {}
        problem = _amount_problem(amount)
        if problem:
            return _error(422, "UNPROCESSABLE_ENTITY", *problem)
        experience = ((body.get("payment_source") or {}).get("paypal") or {}).get(
            "experience_context"
        )
        context = experience or body.get("application_context") or {}
        if not context.get("return_url") or not context.get("cancel_url"):
            return _error(422, "UNPROCESSABLE_ENTITY", "MISSING_REQUIRED_PARAMETER",
                          "return_url and cancel_url are required for a redirect.")  # fmt: skip
        order_id = self._id("5O")
        here = base(request)
        order = {
            "id": order_id,
            "intent": body["intent"],
            "status": "PAYER_ACTION_REQUIRED" if experience else "CREATED",
            "purchase_units": [
                {
                    "reference_id": units[0].get("reference_id", "default"),
                    "amount": dict(amount),
                    "custom_id": units[0].get("custom_id"),
                    "invoice_id": units[0].get("invoice_id"),
                    "description": units[0].get("description"),
                }
            ],
            "create_time": _now(),
            "links": [
                {"href": f"{base}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"},
                {
                    "href": f"{here}/checkoutnow?token={order_id}",
                    "rel": "payer-action" if experience else "approve",
                    "method": "GET",
                },
            ],
            "_return_url": context["return_url"],
            "_cancel_url": context["cancel_url"],
        }
        self.orders[order_id] = order
        return JSONResponse(self._order_view(order), 201)

    def _get_order(self, order_id: str) -> Response:
        order = self._found(order_id)
        if order is None:
            return _not_found(order_id)
        return JSONResponse(self._order_view(order))

    def _capture(self, request: Request, order_id: str) -> Response:
        order = self._found(order_id)
        if order is None:
            return _not_found(order_id)
        if order["status"] == "COMPLETED":
            return _error(422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED",
                          "Order already captured.")  # fmt: skip
        if order["status"] != "APPROVED":
            return _error(422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED",
                          "Payer has not yet approved the Order for payment.")  # fmt: skip
        if order_id in self.declining:
            return _error(422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED",
                          "The instrument presented was either declined by the processor or "
                          "bank, or it can't be used for this payment.")  # fmt: skip
        unit = order["purchase_units"][0]
        capture = {
            "id": self._id("CAP"),
            "status": "COMPLETED",
            "amount": dict(unit["amount"]),
            "final_capture": True,
            "custom_id": unit.get("custom_id"),
            "invoice_id": unit.get("invoice_id"),
            "create_time": _now(),
            "_refunded": "0",
            "_order": order_id,
        }
        self.captures[capture["id"]] = capture
        unit["payments"] = {"captures": [self._order_view(capture)]}
        order["status"] = "COMPLETED"
        response = JSONResponse(self._order_view(order), 201)
        if self.webhook_url is not None:
            event = self.capture_event(order_id, "PAYMENT.CAPTURE.COMPLETED")
            response.background = BackgroundTask(self._deliver, event, base(request))
        return response

    def _get_capture(self, capture_id: str) -> Response:
        capture = self.captures.get(capture_id)
        if capture is None:
            return _not_found(capture_id)
        return JSONResponse(self._order_view(capture))

    def _refund(self, capture_id: str, body: dict[str, Any]) -> Response:
        capture = self.captures.get(capture_id)
        if capture is None:
            return _not_found(capture_id)
        amount = body.get("amount") or capture["amount"]
        problem = _amount_problem(amount)
        if problem:
            return _error(422, "UNPROCESSABLE_ENTITY", *problem)
        if amount["currency_code"] != capture["amount"]["currency_code"]:
            return _error(422, "UNPROCESSABLE_ENTITY", "REFUND_CURRENCY_MISMATCH",
                          "Refund must be in the same currency as the capture.")  # fmt: skip
        refunded = Decimal(capture["_refunded"]) + Decimal(amount["value"])
        if refunded > Decimal(capture["amount"]["value"]):
            return _error(422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED",
                          "The refund amount must be less than or equal to the capture "
                          "amount that has not yet been refunded.")  # fmt: skip
        capture["_refunded"] = str(refunded)
        full = refunded == Decimal(capture["amount"]["value"])
        capture["status"] = "REFUNDED" if full else "PARTIALLY_REFUNDED"
        return JSONResponse(
            {"id": self._id("RF"), "status": "COMPLETED", "amount": dict(amount),
             "custom_id": capture.get("custom_id"), "create_time": _now()},
            201,
        )  # fmt: skip

    def _endpoint(
        self, handler: Callable[[Request, dict[str, Any]], Response]
    ) -> Callable[[Request], Awaitable[Response]]:
        """An API route: hang if asked, record, check the token, parse JSON, and for a POST
        with ``PayPal-Request-Id`` replay the first answer."""

        async def endpoint(request: Request) -> Response:
            request_id = request.headers.get("paypal-request-id")
            self.requests.append(
                RecordedRequest(request.method, request.url.path, request_id,
                                request.headers.get("authorization", ""))
            )  # fmt: skip
            with self._lock:  # recorded first: a hung call belongs to the moment it came
                hanging, self._hangs = self._hangs > 0, max(self._hangs - 1, 0)
            if hanging:
                await asyncio.sleep(self.hang_seconds)
            if not self._authorized(request):
                return JSONResponse(
                    {"error": "invalid_token",
                     "error_description": "Token signature verification failed"},
                    401,
                )  # fmt: skip
            body: dict[str, Any] = {}
            if request.method == "POST":
                raw = await request.body()
                try:
                    parsed = json.loads(raw or b"{}")
                except ValueError:
                    return _error(400, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON",
                                  "The request JSON is not well formed.")  # fmt: skip
                body = parsed if isinstance(parsed, dict) else {}
            replay_key = f"{request.url.path}|{request_id}" if request_id else None
            if replay_key is not None and replay_key in self._replies:
                status, saved = self._replies[replay_key]
                return JSONResponse(copy.deepcopy(saved), status)
            response = handler(request, body)
            if replay_key is not None and response.status_code < 500:
                self._replies[replay_key] = (response.status_code, json.loads(bytes(response.body)))
            return response

        return endpoint

    # --- the buyer's page ------------------------------------------------------------------

    async def _checkout(self, request: Request) -> Response:
        order_id = request.query_params.get("token", "")
        order = self._found(order_id)
        if order is None:
            return HTMLResponse("<h1>This payment is no longer available.</h1>", 404)
        unit = order["purchase_units"][0]
        amount = f"{unit['amount']['value']} {unit['amount']['currency_code']}"
        page = f"""<!doctype html><html><head><title>Pay with PayPal (fake)</title></head><body>
<h1>Pay {html.escape(amount)}</h1><p>{html.escape(unit.get("description") or "")}</p>
<form method="post" action="{html.escape(base(request))}/checkoutnow/{html.escape(order_id)}">
<button name="choice" value="approve">Pay</button>
<button name="choice" value="cancel">Cancel and return</button>
<button name="choice" value="decline">Pay as the declining test buyer</button>
</form></body></html>"""
        return HTMLResponse(page)

    async def _choose(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        order = self._found(order_id)
        if order is None:
            return HTMLResponse("<h1>This payment is no longer available.</h1>", 404)
        choice = (await request.form()).get("choice")
        if choice == "cancel":
            cancel = order["_cancel_url"]  # kassa's carries a query of its own
            target = f"{cancel}{'&' if '?' in cancel else '?'}{urlencode({'token': order_id})}"
            return RedirectResponse(target, 303)
        if order["status"] in ("CREATED", "PAYER_ACTION_REQUIRED"):
            order["status"] = "APPROVED"
            order["payer"] = {"payer_id": "FAKEPAYER" + order_id[-6:],
                              "email_address": "buyer@example.test"}  # fmt: skip
            if choice == "decline":
                self.declining.add(order_id)
        query = urlencode({"token": order_id, "PayerID": order["payer"]["payer_id"]})
        return RedirectResponse(f"{order['_return_url']}?{query}", 303)

    async def _expire_endpoint(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        if order_id not in self.orders:
            return _not_found(order_id)
        self.expire(order_id)
        return Response(status_code=204)

    def _build_app(self) -> Starlette:
        def post(handler: Callable[..., Response], *names: str) -> Callable[..., Response]:
            return lambda request, body: handler(*(request.path_params[n] for n in names), body)

        def get(handler: Callable[..., Response], name: str) -> Callable[..., Response]:
            return lambda request, body: handler(request.path_params[name])

        return Starlette(
            routes=[
                Route("/v1/oauth2/token", self._token, methods=["POST"]),
                Route("/v2/checkout/orders", self._endpoint(self._create_order), methods=["POST"]),
                Route("/v2/checkout/orders/{order_id}", self._endpoint(get(self._get_order, "order_id")), methods=["GET"]),
                Route("/v2/checkout/orders/{order_id}/capture", self._endpoint(lambda request, body: self._capture(request, request.path_params["order_id"])), methods=["POST"]),
                Route("/v2/payments/captures/{capture_id}", self._endpoint(get(self._get_capture, "capture_id")), methods=["GET"]),
                Route("/v2/payments/captures/{capture_id}/refund", self._endpoint(post(self._refund, "capture_id")), methods=["POST"]),
                Route("/v1/notifications/verify-webhook-signature", self._endpoint(lambda request, body: _verification(self._verify(body))), methods=["POST"]),
                Route("/checkoutnow", self._checkout, methods=["GET"]),
                Route("/checkoutnow/{order_id}", self._choose, methods=["POST"]),
                Route("/_fake/orders/{order_id}/expire", self._expire_endpoint, methods=["POST"]),
            ]
        )  # fmt: skip


def _verification(verified: bool) -> Response:
    return JSONResponse({"verification_status": "SUCCESS" if verified else "FAILURE"})


def _not_found(ident: str) -> JSONResponse:
    return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID",
                  f"Specified resource ID {ident} does not exist.")  # fmt: skip


def _amount_problem(amount: Mapping[str, Any]) -> tuple[str, str] | None:
    """Why PayPal would refuse ``amount`` (issue and description), or None."""
    currency, value = amount.get("currency_code"), amount.get("value")
    if not isinstance(currency, str) or len(currency) != 3 or not isinstance(value, str):
        return "INVALID_PARAMETER_VALUE", "amount needs currency_code and a string value."
    try:
        number = Decimal(value)
    except InvalidOperation:
        return "INVALID_PARAMETER_SYNTAX", f"{value!r} is not a decimal amount."
    decimals = _DECIMALS.get(currency, 2)
    if "." in value and (decimals == 0 or len(value.partition(".")[2]) > decimals):
        return "DECIMAL_PRECISION", f"{currency} takes {decimals} decimals."
    if number <= 0:
        return "AMOUNT_NOT_POSITIVE", "The amount must be greater than zero."
    return None


#: The fake with the module's credentials, for ``uvicorn processors.fakes.paypal:app``.
fake = FakePayPal()
app = fake.app


def serve(port: int = 12112, host: str = "127.0.0.1") -> None:
    """Serve :data:`app` on ``host:port`` (the demo's PayPal)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info")
