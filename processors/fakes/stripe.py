"""A fake Stripe for the tests and the demo: the part of Stripe's REST API kassa speaks, served
by a Starlette app, as :mod:`wallets.fake_chain` is the chain's.

It speaks what ``processors/stripe.py`` sends to ``https://api.stripe.com``: form-encoded bodies
in bracket notation (``metadata[kassa_key]=…``), a secret key as ``Authorization: Bearer`` (or
HTTP Basic, as curl's ``-u sk_test_…:``), JSON answers and Stripe's error shape
(``{"error": {"type", "code", "decline_code", "message", "param", "payment_intent"}}``; a bad
key is a 401).  Endpoints: customers (create, retrieve, search by metadata), payment methods
(create from card details — with the publishable key too, as Stripe.js does from the
browser — retrieve, attach), payment intents (create with ``confirm=true``, confirm, retrieve,
search by metadata) and refunds.  Every POST honours ``Idempotency-Key`` as Stripe does: the
first answer is saved and replayed (with ``Idempotent-Replayed: true``); the same key with other
parameters or on another endpoint answers 409 ``idempotency_error``.

Cards behave by Stripe's published test numbers (:data:`TEST_CARDS`; any other Luhn-valid
number succeeds), and the ``pm_card_…`` test payment methods can be attached as on Stripe.
Stripe checks a card when it is attached and refuses to attach some of its decline cards
(``4000000000000341`` is the one it documents as attaching and then declining); the fake
attaches every card, so each decline reason can be tried on a stored card.
One number is the fake's own: :data:`HANG_CARD` (Stripe's ``processing_error`` card) books the
charge and then answers only after ``hang_seconds``, so a client times out not knowing the
outcome — the case kassa's lookup by key exists for.

3-D Secure: ``4000002760003184`` always asks for authentication.  Off-session the confirm fails
with ``authentication_required``; on-session with a ``return_url`` the payment intent waits in
``requires_action`` with ``next_action.redirect_to_url.url`` pointing at ``GET /_fake/3ds/{id}``,
which completes it (``?result=fail`` fails it) and sends the customer on to the return URL.

Events are kept in :attr:`FakeStripe.events` and, with ``webhook_url``, delivered there signed
the way Stripe signs (``Stripe-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")``).
:meth:`FakeStripe.event` and :func:`signature_header` build signed events for tests;
``POST /_fake/payment_intents/{id}/dispute`` opens a chargeback (``charge.dispute.created`` and
``charge.dispute.funds_withdrawn``) for the demo.

With ``state_file`` the account outlives the process (a JSON file).  Run it alone with
``uvicorn processors.fakes.stripe:app`` or :func:`serve`; the module's
:data:`app` takes :data:`SECRET_KEY` / :data:`PUBLISHABLE_KEY` and signs with
:data:`WEBHOOK_SECRET`.  Nothing here imports kassa's ``billing``.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import itertools
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

log = logging.getLogger("kassa.fakes.stripe")

#: The keys the module-level :data:`app` accepts and signs with (test-mode shapes).
SECRET_KEY = "sk_test_kassa_fake"
PUBLISHABLE_KEY = "pk_test_kassa_fake"
WEBHOOK_SECRET = "whsec_kassa_fake"

#: The fake's own "no answer in time" card (Stripe's ``processing_error`` test number).
HANG_CARD = "4000000000000119"

#: A stand-in for Stripe.js v3, served at ``GET /v3/`` so the card form can be pointed at the
#: fake: ``Stripe(publishableKey)``, ``elements().create("card").mount(target)`` (plain inputs
#: where Stripe renders its iframe) and ``createPaymentMethod({type: "card", card, billing_details})``
#: resolving to ``{paymentMethod}`` or ``{error}`` — the calls a card form makes.  It posts the
#: card to this fake's ``/v1/payment_methods`` with the publishable key, as Stripe.js does to
#: Stripe, so the number goes from the browser to "Stripe" and never to kassa.
STRIPE_JS = """(function () {
  var api = new URL(".", document.currentScript.src).href.replace(/v3\\/$/, "");
  function field(name, label, size) {
    var input = document.createElement("input");
    input.name = "fake-stripe-" + name;
    input.setAttribute("aria-label", label);
    input.setAttribute("autocomplete", "off");
    input.size = size;
    return input;
  }
  function CardElement() {
    this.number = field("number", "Card number", 19);
    this.expiry = field("expiry", "Expiry (MM/YY)", 5);
    this.cvc = field("cvc", "Security code", 4);
  }
  CardElement.prototype.mount = function (target) {
    var node = typeof target === "string" ? document.querySelector(target) : target;
    node.append(this.number, this.expiry, this.cvc);
  };
  CardElement.prototype.on = function () {};
  window.Stripe = function (key) {
    return {
      elements: function () {
        return { create: function () { return new CardElement(); } };
      },
      createPaymentMethod: function (options) {
        var card = options.card, expiry = card.expiry.value.split("/");
        var body = new URLSearchParams({
          type: "card", key: key,
          "card[number]": card.number.value.replace(/[\\s-]/g, ""),
          "card[exp_month]": (expiry[0] || "").trim(),
          "card[exp_year]": "20" + (expiry[1] || "").trim().slice(-2),
          "card[cvc]": card.cvc.value.trim()
        });
        var name = (options.billing_details || {}).name;
        if (name) body.set("billing_details[name]", name);
        return fetch(api + "v1/payment_methods", { method: "POST", body: body })
          .then(function (reply) { return reply.json(); })
          .then(function (json) {
            return json.error ? { error: json.error } : { paymentMethod: json };
          });
      }
    };
  };
})();
"""


@dataclass(frozen=True, slots=True)
class CardBehaviour:
    """What confirming a payment with a card does.

    ``code``/``decline_code`` make it a card error (402); ``authenticate`` asks for 3-D Secure;
    ``hang`` succeeds but answers only after the fake's ``hang_seconds``.
    """

    code: str | None = None
    decline_code: str | None = None
    message: str = "Your card was declined."
    authenticate: bool = False
    hang: bool = False


_SUCCEED = CardBehaviour()

#: Stripe's test numbers (https://docs.stripe.com/testing) and what they do here.
TEST_CARDS: dict[str, CardBehaviour] = {
    "4000000000000002": CardBehaviour("card_declined", "generic_decline"),
    "4000000000000341": CardBehaviour("card_declined", "generic_decline"),
    "4000000000009995": CardBehaviour(
        "card_declined", "insufficient_funds", "Your card has insufficient funds."
    ),
    "4000000000009987": CardBehaviour("card_declined", "lost_card"),
    "4000000000000069": CardBehaviour("expired_card", "expired_card", "Your card has expired."),
    "4000002760003184": CardBehaviour(authenticate=True),
    HANG_CARD: CardBehaviour(hang=True),
}

#: Stripe's test payment methods, by the card number they stand for.
TEST_PAYMENT_METHODS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_authenticationRequired": "4000002760003184",
}


def signature_header(
    payload: bytes, secret: str, timestamp: int, *, also: Iterable[str] = ()
) -> str:
    """The ``Stripe-Signature`` value for ``payload``: ``t=…,v1=…``, plus one more ``v1`` per
    secret in ``also`` (Stripe signs with every secret of the endpoint while one is rolled)."""
    signatures = [
        hmac.new(key.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
        for key in (secret, *also)
    ]
    return ",".join([f"t={timestamp}", *(f"v1={s}" for s in signatures)])


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket notation as nested values: ``metadata[a]=1`` → ``{"metadata": {"a":
    "1"}}``, ``expand[]=x`` → ``{"expand": ["x"]}``."""
    decoded: dict[str, Any] = {}
    for name, value in pairs:
        head = name.split("[", 1)[0]
        path = [head, *re.findall(r"\[([^\]]*)\]", name)]
        node: Any = decoded
        for part, following in itertools.pairwise(path):
            node = node.setdefault(part, [] if following == "" else {})
        if path[-1] == "" and isinstance(node, list):
            node.append(value)
        elif isinstance(node, dict):
            node[path[-1]] = value
    return decoded


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def _brand(digits: str) -> str:
    """Stripe's ``card.brand`` for the networks kassa takes (Maestro counts as Mastercard's)."""
    if digits.startswith("4"):
        return "visa"
    if digits[:2] in {"34", "37"}:
        return "amex"
    if "51" <= digits[:2] <= "55" or "2221" <= digits[:4] <= "2720":
        return "mastercard"
    if digits.startswith(("6011", "65")) or "644" <= digits[:3] <= "649":
        return "discover"
    if digits.startswith(("50", "56", "57", "58", "6")):
        return "mastercard"
    return "unknown"


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _error(status: int, kind: str, message: str, code: str | None = None, **extra: Any) -> _Answer:
    body: dict[str, Any] = {"type": kind, "message": message}
    if code is not None:
        body["code"] = code
        body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    body.update({k: v for k, v in extra.items() if v is not None})
    return _Answer(status, {"error": body})


def _missing(kind: str, ident: str, param: str, status: int = 400) -> _Answer:
    """Stripe's ``resource_missing``: 400 for an id in the parameters, 404 for one in the path."""
    return _error(
        status, "invalid_request_error", f"No such {kind}: '{ident}'", "resource_missing",
        param=param,
    )  # fmt: skip


@dataclass(slots=True)
class _Answer:
    status: int
    body: dict[str, Any]
    #: Answer only after the fake's ``hang_seconds`` (the booked charge stays booked).
    hang: bool = False


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake saw it: never the body (it may hold a card number)."""

    method: str
    path: str
    idempotency_key: str | None
    #: ``"secret"`` or ``"publishable"``: which key authenticated it.
    key: str


@dataclass(slots=True)
class _Saved:
    """An idempotent request's first answer, and what it was asked, to recognise reuse."""

    endpoint: str
    params: dict[str, Any]
    answer: _Answer


@dataclass
class FakeStripe:
    """One Stripe account's state and the app serving it (:attr:`app`)."""

    secret_key: str = SECRET_KEY
    publishable_key: str = PUBLISHABLE_KEY
    webhook_secret: str = WEBHOOK_SECRET
    #: Where events are POSTed, signed (None: only kept in :attr:`events`).
    webhook_url: str | None = None
    hang_seconds: float = 5.0
    #: A JSON file the account is kept in (loaded at start, written after every change), so
    #: cards the demo loader stored are still there for ``kassa serve``; None: memory only.
    state_file: str | None = None
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    _behaviours: dict[str, CardBehaviour] = field(default_factory=dict)
    _saved: dict[str, _Saved] = field(default_factory=dict)
    _deliveries: set[asyncio.Task[None]] = field(default_factory=set)
    #: Tests read and change the state from their own thread while the server runs in another.
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        if self.state_file is not None and os.path.exists(self.state_file):
            self._load(self.state_file)
        self.app = self._build_app()

    _STORES = ("customers", "payment_methods", "payment_intents", "charges", "refunds")

    def _load(self, path: str) -> None:
        with open(path, encoding="utf-8") as file:
            state = json.load(file)
        for store in self._STORES:
            getattr(self, store).update(state[store])
        self._behaviours.update(
            {pm: CardBehaviour(**fields) for pm, fields in state["behaviours"].items()}
        )
        self._saved.update(
            {
                key: _Saved(saved["endpoint"], saved["params"], _Answer(**saved["answer"]))
                for key, saved in state["saved"].items()
            }
        )

    def _persist(self) -> None:
        """Write the account to :attr:`state_file` (whole, then renamed into place)."""
        if self.state_file is None:
            return
        state: dict[str, Any] = {store: getattr(self, store) for store in self._STORES}
        state["behaviours"] = {pm: asdict(b) for pm, b in self._behaviours.items()}
        state["saved"] = {
            key: {
                "endpoint": saved.endpoint,
                "params": saved.params,
                "answer": asdict(saved.answer),
            }
            for key, saved in self._saved.items()
        }
        partial = f"{self.state_file}.partial"
        with open(partial, "w", encoding="utf-8") as file:
            json.dump(state, file)
        os.replace(partial, self.state_file)

    # --- events --------------------------------------------------------------------------

    def event(
        self, kind: str, obj: dict[str, Any], *, event_id: str | None = None
    ) -> dict[str, Any]:
        """An event of type ``kind`` about (a snapshot of) ``obj``, as Stripe sends one."""
        return {
            "id": event_id or _id("evt"),
            "object": "event",
            "api_version": "2024-06-20",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "type": kind,
            "data": {"object": copy.deepcopy(obj)},
        }

    def signed(self, event: dict[str, Any], *, timestamp: int | None = None) -> tuple[bytes, str]:
        """``event`` as the body Stripe posts and its ``Stripe-Signature`` header."""
        body = json.dumps(event).encode()
        stamp = int(time.time()) if timestamp is None else timestamp
        return body, signature_header(body, self.webhook_secret, stamp)

    def _emit(self, kind: str, obj: dict[str, Any]) -> None:
        event = self.event(kind, obj)
        self.events.append(event)
        if self.webhook_url is not None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called from a test's thread: kept, not delivered
                return
            task = loop.create_task(self._deliver(event))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, event: dict[str, Any]) -> None:
        assert self.webhook_url is not None
        body, signature = self.signed(event)
        headers = {"Content-Type": "application/json", "Stripe-Signature": signature}
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                reply = await client.post(self.webhook_url, content=body, headers=headers)
            log.info(
                "fake stripe: %s %s delivered: %s", event["type"], event["id"], reply.status_code
            )
        except httpx.HTTPError as error:
            log.warning("fake stripe: %s not delivered: %s", event["id"], error)

    # --- objects -------------------------------------------------------------------------

    def _new_payment_method(
        self, digits: str, exp_month: int, exp_year: int, name: str | None
    ) -> dict[str, Any]:
        method: dict[str, Any] = {
            "id": _id("pm"),
            "object": "payment_method",
            "type": "card",
            "created": int(time.time()),
            "customer": None,
            "livemode": False,
            "metadata": {},
            "billing_details": {"name": name},
            "card": {
                "brand": _brand(digits),
                "last4": digits[-4:],
                "exp_month": exp_month,
                "exp_year": exp_year,
                "funding": "credit",
                "country": "US",
                "fingerprint": hashlib.sha256(digits.encode()).hexdigest()[:16],
            },
        }
        self.payment_methods[method["id"]] = method
        self._behaviours[method["id"]] = TEST_CARDS.get(digits, _SUCCEED)
        return method

    def _charge_for(self, intent: dict[str, Any], paid: bool) -> dict[str, Any]:
        charge = {
            "id": _id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"] if paid else 0,
            "amount_refunded": 0,
            "currency": intent["currency"],
            "customer": intent["customer"],
            "payment_intent": intent["id"],
            "payment_method": intent["payment_method"],
            "paid": paid,
            "status": "succeeded" if paid else "failed",
            "refunded": False,
            "disputed": False,
            "metadata": dict(intent["metadata"]),  # Stripe copies the intent's metadata
            "created": int(time.time()),
        }
        self.charges[charge["id"]] = charge
        intent["latest_charge"] = charge["id"]
        return charge

    def _succeed(self, intent: dict[str, Any]) -> None:
        charge = self._charge_for(intent, paid=True)
        intent.update(
            status="succeeded", amount_received=intent["amount"], next_action=None,
            last_payment_error=None,
        )  # fmt: skip
        self._emit("charge.succeeded", charge)
        self._emit("payment_intent.succeeded", intent)

    def _fail(self, intent: dict[str, Any], error: dict[str, Any]) -> None:
        charge = self._charge_for(intent, paid=False)
        intent.update(status="requires_payment_method", next_action=None)
        intent["last_payment_error"] = {**error, "charge": charge["id"]}
        self._emit("charge.failed", charge)
        self._emit("payment_intent.payment_failed", intent)

    def _confirm(
        self, intent: dict[str, Any], off_session: bool, return_url: str | None, base: str
    ) -> _Answer:
        """Attempt the payment: succeed, decline, or ask for authentication."""
        method_id = intent["payment_method"]
        method = self.payment_methods.get(method_id or "")
        if method is None:
            return _missing("PaymentMethod", str(method_id), "payment_method")
        if method["customer"] != intent["customer"]:
            return _error(
                400,
                "invalid_request_error",
                "The provided PaymentMethod belongs to another Customer than this PaymentIntent.",
                "payment_intent_invalid_parameter",
                param="payment_method",
            )
        behaviour = self._behaviours[method_id]
        if behaviour.authenticate and off_session:
            error: dict[str, Any] = {
                "type": "card_error",
                "code": "authentication_required",
                "decline_code": "authentication_required",
                "message": "Your card was declined. This transaction requires authentication.",
                "payment_method": method,
            }
            self._fail(intent, error)
            return _Answer(402, {"error": {**error, "payment_intent": intent}})
        if behaviour.authenticate:
            intent["status"] = "requires_action"
            intent["last_payment_error"] = None
            if return_url:
                url = f"{base}/_fake/3ds/{intent['id']}"
                intent["next_action"] = {
                    "type": "redirect_to_url",
                    "redirect_to_url": {"url": url, "return_url": return_url},
                }
            else:
                intent["next_action"] = {"type": "use_stripe_sdk", "use_stripe_sdk": {}}
            self._emit("payment_intent.requires_action", intent)
            return _Answer(200, intent)
        if behaviour.code is not None:
            error = {
                "type": "card_error",
                "code": behaviour.code,
                "decline_code": behaviour.decline_code,
                "message": behaviour.message,
                "payment_method": method,
            }
            self._fail(intent, error)
            charge = intent["latest_charge"]
            return _Answer(402, {"error": {**error, "charge": charge, "payment_intent": intent}})
        self._succeed(intent)
        return _Answer(200, intent, hang=behaviour.hang)

    # --- endpoints -----------------------------------------------------------------------

    def _create_customer(self, params: dict[str, Any], request: Request) -> _Answer:
        customer: dict[str, Any] = {
            "id": _id("cus"),
            "object": "customer",
            "created": int(time.time()),
            "name": params.get("name"),
            "email": params.get("email"),
            "description": params.get("description"),
            "metadata": dict(params.get("metadata") or {}),
            "livemode": False,
        }
        self.customers[customer["id"]] = customer
        return _Answer(200, customer)

    def _create_payment_method(self, params: dict[str, Any], request: Request) -> _Answer:
        if params.get("type") != "card":
            return _error(400, "invalid_request_error", "Only type=card is faked.", param="type")
        card = params.get("card") or {}
        digits = str(card.get("number", "")).replace(" ", "")
        if not digits.isdigit() or not 12 <= len(digits) <= 19 or not _luhn(digits):
            return _error(
                402, "card_error", "Your card number is incorrect.", "incorrect_number",
                param="card[number]",
            )  # fmt: skip
        try:
            exp_month, exp_year = int(card.get("exp_month", "")), int(card.get("exp_year", ""))
        except ValueError:
            exp_month = exp_year = 0
        if not 1 <= exp_month <= 12:
            return _error(
                402, "card_error", "Your card's expiration month is invalid.",
                "invalid_expiry_month", param="card[exp_month]",
            )  # fmt: skip
        now = time.gmtime()
        if (exp_year, exp_month) < (now.tm_year, now.tm_mon) or exp_year > now.tm_year + 50:
            return _error(
                402, "card_error", "Your card's expiration year is invalid.",
                "invalid_expiry_year", param="card[exp_year]",
            )  # fmt: skip
        cvc = str(card.get("cvc", ""))
        if cvc and (not cvc.isdigit() or len(cvc) not in (3, 4)):
            return _error(
                402, "card_error", "Your card's security code is invalid.", "invalid_cvc",
                param="card[cvc]",
            )  # fmt: skip
        name = (params.get("billing_details") or {}).get("name")
        return _Answer(200, self._new_payment_method(digits, exp_month, exp_year, name))

    def _attach(self, params: dict[str, Any], request: Request) -> _Answer:
        method_id = request.path_params["id"]
        customer = params.get("customer", "")
        if customer not in self.customers:
            return _missing("customer", customer, "customer")
        if method_id in TEST_PAYMENT_METHODS:  # Stripe attaches a fresh copy of a test method
            method = self._new_payment_method(TEST_PAYMENT_METHODS[method_id], 12, 2034, None)
        elif method_id in self.payment_methods:
            method = self.payment_methods[method_id]
        else:
            return _missing("PaymentMethod", method_id, "payment_method", 404)
        if method["customer"] not in (None, customer):
            return _error(
                400,
                "invalid_request_error",
                "The payment method you provided has already been attached to a customer.",
                param="payment_method",
            )
        method["customer"] = customer
        return _Answer(200, method)

    def _create_intent(self, params: dict[str, Any], request: Request) -> _Answer:
        try:
            amount = int(params.get("amount", ""))
        except ValueError:
            amount = 0
        if amount < 1:
            return _error(
                400, "invalid_request_error", "This value must be greater than or equal to 1.",
                "parameter_invalid_integer", param="amount",
            )  # fmt: skip
        currency = str(params.get("currency", ""))
        if not re.fullmatch(r"[a-z]{3}", currency):
            return _error(
                400, "invalid_request_error", f"Invalid currency: {currency}.",
                "parameter_invalid_string", param="currency",
            )  # fmt: skip
        customer = params.get("customer")
        if customer is not None and customer not in self.customers:
            return _missing("customer", customer, "customer")
        types = params.get("payment_method_types") or {}
        no_redirects = (params.get("automatic_payment_methods") or {}).get("allow_redirects")
        card_listed = "card" in (types.values() if isinstance(types, dict) else types)
        confirming = params.get("confirm") == "true" and not params.get("return_url")
        if confirming and not card_listed and no_redirects != "never":
            return _error(
                400,
                "invalid_request_error",
                "A return_url must be specified because this Payment Intent is configured "
                "to automatically accept the payment methods enabled in the Dashboard, some "
                "of which may require a full page redirect to succeed.",
                param="return_url",
            )
        intent_id = _id("pi")
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": currency,
            "customer": customer,
            "payment_method": params.get("payment_method"),
            "description": params.get("description"),
            "metadata": dict(params.get("metadata") or {}),
            "status": "requires_confirmation",
            "next_action": None,
            "last_payment_error": None,
            "latest_charge": None,
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "created": int(time.time()),
            "livemode": False,
        }
        self.payment_intents[intent_id] = intent
        self._emit("payment_intent.created", intent)
        if params.get("confirm") != "true":
            return _Answer(200, intent)
        off_session = params.get("off_session") == "true"
        return self._confirm(intent, off_session, params.get("return_url"), _base(request))

    def _confirm_intent(self, params: dict[str, Any], request: Request) -> _Answer:
        intent = self.payment_intents.get(request.path_params["id"])
        if intent is None:
            return _missing("payment_intent", request.path_params["id"], "intent", 404)
        if intent["status"] not in ("requires_confirmation", "requires_payment_method"):
            return _error(
                400, "invalid_request_error",
                f"This PaymentIntent's status is {intent['status']}; it cannot be confirmed.",
                "payment_intent_unexpected_state",
            )  # fmt: skip
        if params.get("payment_method"):
            intent["payment_method"] = params["payment_method"]
        off_session = params.get("off_session") == "true"
        return self._confirm(intent, off_session, params.get("return_url"), _base(request))

    def _create_refund(self, params: dict[str, Any], request: Request) -> _Answer:
        intent = self.payment_intents.get(params.get("payment_intent", ""))
        if intent is None:
            return _missing("payment_intent", str(params.get("payment_intent")), "payment_intent")
        charge = self.charges.get(intent["latest_charge"] or "")
        if charge is None or not charge["paid"]:
            return _error(
                400, "invalid_request_error",
                "This PaymentIntent does not have a successful charge to refund.",
                param="payment_intent",
            )  # fmt: skip
        left = charge["amount"] - charge["amount_refunded"]
        if left == 0:
            return _error(
                400, "invalid_request_error", f"Charge {charge['id']} has already been refunded.",
                "charge_already_refunded",
            )  # fmt: skip
        try:
            amount = int(params.get("amount", left))
        except ValueError:
            amount = 0
        if not 1 <= amount <= left:
            return _error(
                400, "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left}).",
                param="amount",
            )  # fmt: skip
        refund = {
            "id": _id("re"),
            "object": "refund",
            "amount": amount,
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": intent["id"],
            "metadata": dict(params.get("metadata") or {}),
            "status": "succeeded",
            "created": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        self._emit("refund.created", refund)
        self._emit("charge.refunded", charge)
        return _Answer(200, refund)

    def dispute(self, intent_id: str, reason: str = "fraudulent") -> dict[str, Any]:
        """Open a chargeback on ``intent_id``'s charge: the bank takes the money back at once
        (``charge.dispute.created`` then ``charge.dispute.funds_withdrawn``)."""
        with self._lock:  # tests call it from their own thread
            intent = self.payment_intents[intent_id]
            charge = self.charges[intent["latest_charge"]]
            charge["disputed"] = True
            dispute = {
                "id": _id("dp"),
                "object": "dispute",
                "amount": charge["amount"],
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": intent_id,
                "reason": reason,
                "status": "needs_response",
                "metadata": {},
                "created": int(time.time()),
            }
            self._emit("charge.dispute.created", dispute)
            self._emit("charge.dispute.funds_withdrawn", dispute)
            self._persist()
            return dispute

    def _retrieve(self, store: str, kind: str) -> Callable[[Request], _Answer]:
        def retrieve(request: Request) -> _Answer:
            found = getattr(self, store).get(request.path_params["id"])
            if found is None:
                return _missing(kind, request.path_params["id"], "id", 404)
            return _Answer(200, found)

        return retrieve

    def _search(self, store: str, path: str) -> Callable[[Request], _Answer]:
        """Stripe's search over ``metadata['k']:'v'`` and ``field:'v'`` clauses joined by AND
        (immediately consistent here; Stripe's index lags by up to a minute)."""

        def search(request: Request) -> _Answer:
            query = request.query_params.get("query", "")
            clauses = re.findall(r"(metadata\['(?:[^'\\]|\\.)*'\]|\w+):'((?:[^'\\]|\\.)*)'", query)
            if not clauses:
                return _error(
                    400, "invalid_request_error", "The query is not valid.", param="query"
                )
            found = [
                obj
                for obj in getattr(self, store).values()
                if all(_matches(obj, name, _unescape(value)) for name, value in clauses)
            ]
            found.sort(key=lambda obj: obj["created"], reverse=True)
            limit = int(request.query_params.get("limit", "10"))
            return _Answer(
                200,
                {
                    "object": "search_result",
                    "url": path,
                    "has_more": len(found) > limit,
                    "next_page": None,
                    "data": found[:limit],
                },
            )

        return search

    async def _three_d_secure(self, request: Request) -> Response:
        """The issuer's authentication page: completes (or with ``?result=fail`` fails) the
        payment, then sends the customer back to the ``return_url`` as Stripe does."""
        with self._lock:
            intent = self.payment_intents.get(request.path_params["id"])
            if intent is None:
                return HTMLResponse("<p>No such payment.</p>", 404)
            action = intent["next_action"] or {}
            return_url = (action.get("redirect_to_url") or {}).get("return_url")
            if intent["status"] == "requires_action":
                if request.query_params.get("result") == "fail":
                    self._fail(
                        intent,
                        {
                            "type": "invalid_request_error",
                            "code": "payment_intent_authentication_failure",
                            "message": "The customer failed authentication.",
                        },
                    )
                else:
                    self._succeed(intent)
                self._persist()
            status = "succeeded" if intent["status"] == "succeeded" else "failed"
        if return_url:
            query = urlencode(
                {
                    "payment_intent": intent["id"],
                    "payment_intent_client_secret": intent["client_secret"],
                    "redirect_status": status,
                }
            )
            separator = "&" if "?" in return_url else "?"
            return RedirectResponse(f"{return_url}{separator}{query}", 303)
        return HTMLResponse(f"<p>Authentication {status}.</p>")

    async def _open_dispute(self, request: Request) -> Response:
        with self._lock:
            if request.path_params["id"] not in self.payment_intents:
                return JSONResponse(
                    _missing("payment_intent", request.path_params["id"], "id").body, 404
                )
            dispute = self.dispute(request.path_params["id"])
        return JSONResponse(dispute)

    # --- plumbing ------------------------------------------------------------------------

    def _authenticate(self, request: Request, params: dict[str, Any]) -> str | _Answer:
        """``"secret"`` or ``"publishable"``, or the 401 Stripe answers."""
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            key = header.removeprefix("Bearer ").strip()
        elif header.startswith("Basic "):
            try:
                key = base64.b64decode(header.removeprefix("Basic ")).decode().split(":", 1)[0]
            except ValueError:
                key = ""
        else:
            key = str(params.get("key", ""))  # Stripe.js sends the publishable key in the body
        if not key:
            return _error(
                401,
                "invalid_request_error",
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_"
                "SECRET_KEY').",
            )
        if hmac.compare_digest(key, self.secret_key):
            return "secret"
        if hmac.compare_digest(key, self.publishable_key):
            return "publishable"
        return _error(
            401, "invalid_request_error", f"Invalid API Key provided: {key[:8]}****{key[-4:]}"
        )

    def _endpoint(
        self,
        handler: Callable[[dict[str, Any], Request], _Answer],
        *,
        publishable: bool = False,
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a POST handler: authenticate, decode the form, honour ``Idempotency-Key``."""

        async def endpoint(request: Request) -> Response:
            pairs = [(k, str(v)) for k, v in (await request.form()).multi_items()]
            params = decode_form(pairs)
            key = request.headers.get("idempotency-key")
            who = self._authenticate(request, params)
            self.requests.append(
                RecordedRequest(
                    "POST", request.url.path, key, who if isinstance(who, str) else "none"
                )
            )
            if isinstance(who, _Answer):
                return _respond(who)
            if who == "publishable" and not publishable:
                return _respond(
                    _error(
                        401,
                        "invalid_request_error",
                        "This API call cannot be made with a publishable API key. "
                        "Please use a secret API key.",
                    )
                )
            params.pop("key", None)
            endpoint_name = f"POST {request.url.path}"
            replayed = False
            with self._lock:
                saved = self._saved.get(key) if key else None
                if saved is not None:
                    if (saved.endpoint, saved.params) != (endpoint_name, params):
                        answer = _error(
                            409,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with. Try using a key other than "
                            f"'{key}' if you meant to execute a different request.",
                        )
                        return _respond(answer)
                    answer, replayed = saved.answer, True
                else:
                    answer = handler(params, request)
                    if key and answer.status in (200, 402):  # saved once execution began
                        self._saved[key] = _Saved(endpoint_name, params, copy.deepcopy(answer))
                    self._persist()
            if answer.hang:
                await asyncio.sleep(self.hang_seconds)
            return _respond(answer, replayed=replayed)

        return endpoint

    def _reader(
        self, handler: Callable[[Request], _Answer]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a GET handler: the secret key only."""

        async def reader(request: Request) -> Response:
            who = self._authenticate(request, {})
            self.requests.append(
                RecordedRequest(
                    "GET", request.url.path, None, who if isinstance(who, str) else "none"
                )
            )
            if isinstance(who, _Answer):
                return _respond(who)
            if who != "secret":
                return _respond(
                    _error(401, "invalid_request_error", "Please use a secret API key.")
                )
            with self._lock:
                return _respond(handler(request))

        return reader

    def _build_app(self) -> Starlette:
        post, get = self._endpoint, self._reader
        routes = [
            Route("/v1/customers", post(self._create_customer), methods=["POST"]),
            Route(
                "/v1/customers/search",
                get(self._search("customers", "/v1/customers/search")),
                methods=["GET"],
            ),
            Route("/v1/customers/{id}", get(self._retrieve("customers", "customer"))),
            Route(
                "/v1/payment_methods",
                post(self._create_payment_method, publishable=True),
                methods=["POST"],
            ),
            Route("/v1/payment_methods/{id}/attach", post(self._attach), methods=["POST"]),
            Route(
                "/v1/payment_methods/{id}",
                get(self._retrieve("payment_methods", "PaymentMethod")),
            ),
            Route("/v1/payment_intents", post(self._create_intent), methods=["POST"]),
            Route(
                "/v1/payment_intents/search",
                get(self._search("payment_intents", "/v1/payment_intents/search")),
                methods=["GET"],
            ),
            Route("/v1/payment_intents/{id}/confirm", post(self._confirm_intent), methods=["POST"]),
            Route(
                "/v1/payment_intents/{id}",
                get(self._retrieve("payment_intents", "payment_intent")),
            ),
            Route("/v1/refunds", post(self._create_refund), methods=["POST"]),
            Route("/v1/refunds/{id}", get(self._retrieve("refunds", "refund"))),
            Route("/v3/", _stripe_js, methods=["GET"]),
            Route("/_fake/3ds/{id}", self._three_d_secure, methods=["GET"]),
            Route("/_fake/payment_intents/{id}/dispute", self._open_dispute, methods=["POST"]),
        ]
        return Starlette(routes=routes)


async def _stripe_js(request: Request) -> Response:
    return Response(STRIPE_JS, media_type="text/javascript")


def _base(request: Request) -> str:
    """Where this fake is reached from outside (its mount point included)."""
    root = str(request.scope.get("root_path", "")).rstrip("/")  # a Mount's prefix included
    return f"{request.url.scheme}://{request.url.netloc}{root}"


def _matches(obj: dict[str, Any], name: str, value: str) -> bool:
    if name.startswith("metadata["):
        return bool(obj.get("metadata", {}).get(_unescape(name[10:-2])) == value)
    return str(obj.get(name)) == value


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _respond(answer: _Answer, *, replayed: bool = False) -> Response:
    # Any origin may read the answers: Stripe.js calls the API from the shop's own pages.
    headers = {"Request-Id": f"req_{secrets.token_hex(7)}", "Access-Control-Allow-Origin": "*"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(answer.body, answer.status, headers=headers)


#: The fake with the module's keys, for ``uvicorn processors.fakes.stripe:app``.
fake = FakeStripe()
app = fake.app


def serve(port: int = 12111, host: str = "127.0.0.1") -> None:
    """Serve the module's fake (:data:`fake`) until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info")
