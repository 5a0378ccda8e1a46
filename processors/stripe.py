"""``stripe``: cards through Stripe's REST API (Customers, PaymentMethods, PaymentIntents,
Refunds, webhooks), implementing :class:`billing.processing.CardProcessor`,
:class:`billing.payment_systems.ProfileProcessor` and
:class:`billing.payment_systems.NotifiedProcessor`.

The API is ``https://api.stripe.com`` (``config.base_url`` points it at the local fake,
:mod:`processors.fakes.stripe`): form-encoded bodies in bracket notation, the account's secret
key (credential ``secret_key``) as a Bearer token, JSON answers, and an ``Idempotency-Key`` on
every POST — the charge's own key for a charge, so a retried or replayed charge is the same
PaymentIntent; Stripe replays the first answer for 24 hours and answers ``idempotency_error``
when the key comes back with other parameters.

Stored cards.  Every kassa customer has one Stripe Customer (metadata ``kassa_customer_id``),
found by search and else created under a deterministic idempotency key, so two first cards at
once still make one.  A card typed into kassa (processors without a browser script) becomes a
PaymentMethod (``POST /v1/payment_methods``, checked first with
:func:`billing.processing.validate_card`; the number goes in that one request and nowhere else,
never logged) attached to the Customer; with Stripe.js (:meth:`client_tokenization`) the browser
makes the PaymentMethod with the publishable key and :meth:`adopt_client_token` attaches it, so
the number never reaches kassa.  The token kassa keeps is ``cus_…/pm_…``.  Cards are attached
(Stripe checks the card then) rather than set up with a SetupIntent, because storing a card is
one server call in billing's interface with no page to show the customer an authentication
step; an issuer that wants one asks at the charge, which is then ACTION_REQUIRED.

Charges are PaymentIntents created with ``confirm=true``: ``off_session=true`` for kassa's own
collection, on-session (with a ``return_url``) when the customer pressed Pay.  A card error is a
DECLINED result (Stripe's ``generic_decline`` reads ``card_declined``); a PaymentIntent waiting
in ``requires_action`` is ACTION_REQUIRED with Stripe's ``next_action.redirect_to_url.url``.
Off-session, Stripe does not ask — it fails the confirm with ``authentication_required`` and
leaves the PaymentIntent in ``requires_payment_method``; kassa then confirms that same
PaymentIntent on-session with a ``return_url`` (Stripe's documented manual 3-D Secure
redirect), which gives the URL the customer completes later (with no public URL to return
to, the charge stays DECLINED ``authentication_required``).  Until then the charge's outcome
arrives by webhook or :meth:`StripeProcessor.lookup`.

Lookup searches PaymentIntents by ``metadata['kassa_key']`` rather than re-POSTing under the
same Idempotency-Key: a re-POST needs the original parameters (lookup has only the key), and
for a key Stripe never saw it would *make* the charge that lookup must report as not made; it
also stops working once Stripe prunes keys after 24 hours.  Stripe's search index lags writes by
up to about a minute, which billing's janitor (first look after 5 minutes) is well behind.

Timeouts, connection failures, 429 and 5xx answers are retried under the same idempotency key
(``max_retries``, honouring ``Stripe-Should-Retry``); when they run out a charge raises
:class:`~billing.processing.ProcessorTimeout`, to be reconciled by lookup.

Webhooks are verified before their JSON is read: ``Stripe-Signature`` carries ``t=`` and one or
more ``v1=`` (several while a signing secret is rolled), each HMAC-SHA256 of ``"{t}.{body}"``
under the endpoint's secret (credential ``webhook_secret``), compared in constant time, and
``t`` must be at most 5 minutes old by the injected clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from billing.errors import UserError
from billing.money import validate_currency
from billing.payment_systems import (
    BankAccountDetails,
    Capability,
    ClientTokenization,
    ForgedNotification,
    IncomingRequest,
    MethodKind,
    Mode,
    Notification,
    NotificationKind,
    NotificationReply,
    Payer,
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
from processors.http import require_https, tls

log = logging.getLogger("kassa.processors.stripe")

API_URL = "https://api.stripe.com"
STRIPE_JS_URL = "https://js.stripe.com/v3/"
#: The API version the requests and the parsing are written against.
API_VERSION = "2024-06-20"
#: How old a webhook's signed timestamp may be (Stripe's libraries default to the same).
SIGNATURE_TOLERANCE_SECONDS = 300

#: Stripe's decline codes kassa reads under another name.
_DECLINE_CODES = {"generic_decline": "card_declined"}

#: Stripe's card errors at tokenization, as the codes kassa's card form shows.
_CARD_ERRORS: dict[str, tuple[str, str]] = {
    "incorrect_number": ("INVALID_CARD_NUMBER", "cardNumber"),
    "invalid_number": ("INVALID_CARD_NUMBER", "cardNumber"),
    "invalid_expiry_month": ("INVALID_EXPIRY", "expiry"),
    "invalid_expiry_year": ("INVALID_EXPIRY", "expiry"),
    "expired_card": ("CARD_EXPIRED", "expiry"),
    "invalid_cvc": ("INVALID_CVC", "cvc"),
    "incorrect_cvc": ("INVALID_CVC", "cvc"),
}

_TOKEN_RE = re.compile(r"^(?P<customer>cus_\w+)/(?P<method>pm_\w+)$")
_CLIENT_TOKEN_RE = re.compile(r"^pm_\w{1,250}$")
#: Status codes worth another try under the same idempotency key (Stripe's libraries agree).
_RETRY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})


def _utc_today() -> date:
    return datetime.now(UTC).date()


def encode_form(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``params`` as Stripe's form fields: nested mappings in brackets (``metadata[k]``), lists
    indexed (``payment_method_types[0]``), booleans as ``true``/``false``, None left out."""
    fields: list[tuple[str, str]] = []
    for name, value in params.items():
        key = f"{prefix}[{name}]" if prefix else name
        if value is None:
            continue
        if isinstance(value, Mapping):
            fields += encode_form(value, key)
        elif isinstance(value, list | tuple):
            fields += encode_form({str(i): item for i, item in enumerate(value)}, key)
        elif isinstance(value, bool):
            fields.append((key, "true" if value else "false"))
        else:
            fields.append((key, str(value)))
    return fields


def _quote(value: str) -> str:
    """``value`` as a string literal of Stripe's search query language."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True, slots=True)
class _Reply:
    """An answer from Stripe: its status and JSON body (Stripe answers JSON, errors too)."""

    status: int
    body: dict[str, Any]

    @property
    def error(self) -> dict[str, Any]:
        return self.body.get("error") or {} if self.status >= 400 else {}


class _Unreachable(Exception):
    """Stripe did not answer usefully within the retries; the outcome of a POST is unknown."""


class StripeProcessor:
    """Stripe for one processor account (``config``).

    ``timeout`` is per HTTP attempt and ``max_retries`` the attempts after the first (by
    default all of them together stay inside billing's 60-second limit for a charge call);
    ``clock`` (Unix seconds) judges a webhook's age and ``today`` a card's expiry;
    ``stripe_js_url`` is the Stripe.js the card form loads (the fake's in tests);
    ``return_url`` is where Stripe sends a customer back after 3-D Secure (default: the customer
    portal's payments page under ``config.public_url``).
    """

    name = "stripe"
    capabilities = frozenset(
        {
            Capability.TOKEN_CHARGE,
            Capability.CLIENT_TOKENIZATION,
            Capability.NOTIFICATIONS,
            Capability.STATUS_POLL,
            Capability.REFUND,
        }
    )
    method_kinds = frozenset(
        {
            MethodKind.VISA,
            MethodKind.MASTERCARD,
            MethodKind.AMEX,
            MethodKind.DISCOVER,
            MethodKind.MAESTRO,
        }
    )

    def __init__(
        self,
        config: ProcessorConfig,
        *,
        timeout: float = 15.0,
        max_retries: int = 2,
        clock: Callable[[], float] = time.time,
        today: Callable[[], date] = _utc_today,
        stripe_js_url: str = STRIPE_JS_URL,
        return_url: str | None = None,
    ) -> None:
        self._config = config
        self._base_url = (config.base_url or API_URL).rstrip("/")
        self._timeout = timeout
        self._max_retries = max_retries
        self._clock = clock
        self._today = today
        self._stripe_js_url = stripe_js_url
        self._return_url = return_url or (
            f"{config.public_url.rstrip('/')}/portal/payments" if config.public_url else None
        )

    # --- HTTP ------------------------------------------------------------------------------

    def _secret_key(self) -> str:
        """The secret key, refused when it is for the other mode (a live key on a test
        account would move real money) or would travel unencrypted."""
        key = self._config.secret("secret_key")
        live = self._config.mode is Mode.LIVE
        require_https(self._config.mode, self._base_url, "Stripe")
        if key.startswith(("sk_test_", "rk_test_")) == live:
            raise ProcessorError(
                "MODE_MISMATCH",
                f"the processor account is in {self._config.mode.value} mode "
                "but its Stripe secret key is not",
            )
        return key

    async def _call(
        self,
        method: str,
        path: str,
        *,
        form: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> _Reply:
        """One API call, retried under the same idempotency key while the outcome is unknown.

        Raises :class:`_Unreachable` when the retries run out.
        """
        headers = {
            "Authorization": f"Bearer {self._secret_key()}",
            "Stripe-Version": API_VERSION,
        }
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or f"kassa-{uuid.uuid4()}"
        content = None if form is None else urlencode(encode_form(form))
        if content is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        why = "no attempt"
        async with httpx.AsyncClient(
            base_url=self._base_url, timeout=self._timeout, verify=tls()
        ) as client:
            for attempt in range(self._max_retries + 1):
                if attempt:
                    await asyncio.sleep(min(0.25 * 2 ** (attempt - 1), 2.0))
                try:
                    response = await client.request(
                        method, path, params=query, content=content, headers=headers
                    )
                except httpx.TransportError as error:  # timeouts included
                    why = type(error).__name__
                    continue
                retry = response.headers.get("stripe-should-retry")
                if (
                    response.status_code in _RETRY_STATUSES
                    and retry != "false"
                    and (response.status_code != 409 or retry == "true")
                ):
                    why = f"HTTP {response.status_code}"
                    continue
                try:
                    body = response.json()
                except ValueError:
                    why = f"HTTP {response.status_code} without JSON"
                    continue
                return _Reply(response.status_code, body if isinstance(body, dict) else {})
        log.warning(
            "stripe %s %s: no answer after %d attempts (%s)", method, path, attempt + 1, why
        )
        raise _Unreachable(why)

    def _failure(self, reply: _Reply, what: str) -> ProcessorError:
        """The error an unexpected answer means; Stripe's message never holds card data."""
        error = reply.error
        if error.get("type") == "idempotency_error":
            return IdempotencyConflict("IDEMPOTENCY_KEY_REUSED", str(error.get("message", "")))
        if reply.status in (401, 403):
            return ChargeRefused(
                "PROCESSOR_AUTHENTICATION",
                f"Stripe refused the processor account's key ({reply.status})",
            )
        code = str(error.get("code") or error.get("type") or f"HTTP_{reply.status}").upper()
        return ProcessorError(code, f"{what}: {error.get('message', 'unexpected answer')}")

    # --- customers and payment methods ------------------------------------------------------

    async def _customer_for(self, payer: Payer | None) -> str:
        """``payer``'s Stripe Customer, made on first use; a fresh one without a payer."""
        if payer is None:
            reply = await self._post("/v1/customers", {"description": "kassa card holder"}, None)
            return str(reply.body["id"])
        query = f"metadata['kassa_customer_id']:{_quote(str(payer.customer_id))}"
        found = await self._get("/v1/customers/search", {"query": query, "limit": "1"})
        if found.body.get("data"):
            return str(found.body["data"][0]["id"])
        form = {
            "name": payer.name,
            "email": payer.email,
            "metadata": {"kassa_customer_id": payer.customer_id},
        }
        # Deterministic: two first cards at once (before search sees the first) make one.
        key = f"kassa-customer-{self._config.account_id}-{payer.customer_id}"
        try:
            reply = await self._post("/v1/customers", form, key)
        except IdempotencyConflict:  # made under this key with other details: it exists
            found = await self._get("/v1/customers/search", {"query": query, "limit": "1"})
            if not found.body.get("data"):
                raise
            return str(found.body["data"][0]["id"])
        return str(reply.body["id"])

    async def _post(self, path: str, form: Mapping[str, Any], key: str | None) -> _Reply:
        """A POST that must succeed (customers, attachments): anything else raises."""
        try:
            reply = await self._call("POST", path, form=form, idempotency_key=key)
        except _Unreachable as unreachable:
            raise ProcessorTimeout(f"Stripe did not answer ({unreachable})") from None
        if reply.status != 200:
            raise self._failure(reply, path)
        return reply

    async def _get(self, path: str, query: Mapping[str, str] | None = None) -> _Reply:
        try:
            reply = await self._call("GET", path, query=query)
        except _Unreachable as unreachable:
            raise ProcessorTimeout(f"Stripe did not answer ({unreachable})") from None
        if reply.status != 200:
            raise self._failure(reply, path)
        return reply

    async def _attach(self, method_id: str, customer_id: str) -> dict[str, Any]:
        """Attach ``method_id`` to ``customer_id`` (once, however often it is asked)."""
        try:
            reply = await self._call(
                "POST",
                f"/v1/payment_methods/{method_id}/attach",
                form={"customer": customer_id},
                idempotency_key=f"kassa-attach-{method_id}-{customer_id}",
            )
        except _Unreachable as unreachable:
            raise ProcessorTimeout(f"Stripe did not answer ({unreachable})") from None
        if reply.status == 402:
            raise _card_error(reply.error)
        if reply.status in (400, 404):
            raise UserError(
                "INVALID_PAYMENT_METHOD",
                "Stripe does not know this card or it belongs to someone else",
                "paymentMethod",
            )
        if reply.status != 200:
            raise self._failure(reply, "attach")
        return reply.body

    async def _store(self, card: CardDetails, payer: Payer | None) -> CardToken:
        digits = validate_card(card, self._today())
        form = {
            "type": "card",
            "card": {
                "number": digits,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
                "cvc": card.cvc,
            },
            "billing_details": {"name": card.holder},
        }
        try:
            reply = await self._call("POST", "/v1/payment_methods", form=form)
        except _Unreachable as unreachable:
            raise ProcessorTimeout(f"Stripe did not answer ({unreachable})") from None
        if reply.status == 402:
            raise _card_error(reply.error)
        if reply.status != 200:
            raise self._failure(reply, "payment method")
        customer = await self._customer_for(payer)
        method = await self._attach(str(reply.body["id"]), customer)
        return _card_token(customer, method, brand=card_brand(digits))

    async def tokenize(self, card: CardDetails) -> CardToken:
        """Store ``card`` under a Customer of its own (the plain card-processor path)."""
        return await self._store(card, None)

    async def tokenize_for(self, card: CardDetails, payer: Payer) -> CardToken:
        """Store ``card`` under ``payer``'s Customer (made on first use, reused after)."""
        return await self._store(card, payer)

    async def adopt_client_token(self, client_token: str, payer: Payer) -> CardToken:
        """Keep the PaymentMethod the browser made with Stripe.js: attach it to ``payer``'s
        Customer (Stripe refuses one already attached to someone else)."""
        if not _CLIENT_TOKEN_RE.fullmatch(client_token):
            raise UserError(
                "INVALID_PAYMENT_METHOD", "not a Stripe payment method id", "paymentMethod"
            )
        customer = await self._customer_for(payer)
        method = await self._attach(client_token, customer)
        return _card_token(customer, method, brand=None)

    async def store_bank_account(self, account: BankAccountDetails, payer: Payer) -> CardToken:
        """Not offered: this adapter takes cards only (no :attr:`Capability.BANK_ACCOUNT`)."""
        raise ProcessorError("NOT_SUPPORTED", "Stripe accounts here take cards, not e-checks")

    def client_tokenization(self) -> ClientTokenization:
        """Stripe.js (the account's ``stripe_js_url`` setting, as the demo's points at its
        fake; else ``stripe_js_url``) and the publishable key it is started with."""
        return ClientTokenization(
            script_url=self._config.credentials.get("stripe_js_url") or self._stripe_js_url,
            public_settings={"publishable_key": self._config.secret("publishable_key")},
        )

    # --- charges ---------------------------------------------------------------------------

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Create and confirm a PaymentIntent under ``request.idempotency_key``."""
        if request.amount <= 0:
            raise ChargeRefused("INVALID_AMOUNT", "the amount must be greater than zero")
        try:
            currency = validate_currency(request.currency)
        except UserError as error:
            raise ChargeRefused(error.code, error.message) from None
        token = _TOKEN_RE.fullmatch(request.token)
        if token is None:
            raise ChargeRefused("INVALID_TOKEN", "not a Stripe card token")
        form: dict[str, Any] = {
            "amount": request.amount,
            "currency": currency.lower(),
            "customer": token["customer"],
            "payment_method": token["method"],
            "confirm": True,
            # Cards only: without it Stripe enables the Dashboard's redirect-based methods and
            # wants a return_url even off-session.
            "payment_method_types": ["card"],
            "description": request.description or None,
            "metadata": {"kassa_key": request.idempotency_key},
        }
        if request.on_session:
            form["return_url"] = self._return_url
        else:
            form["off_session"] = True
        reply = await self._charge_call("/v1/payment_intents", form, request.idempotency_key)
        problem = reply.error
        if reply.status == 402 and problem.get("code") == "authentication_required":
            intent = problem.get("payment_intent") or {}
            if intent.get("id") and self._return_url:
                reply = await self._charge_call(
                    f"/v1/payment_intents/{intent['id']}/confirm",
                    {"payment_method": token["method"], "return_url": self._return_url},
                    f"{request.idempotency_key}-authenticate",
                )
        result = self._charge_result(reply, request.amount, currency)
        log.info(
            "stripe charge %s: %s %s", request.idempotency_key, result.status.value,
            result.decline_code or "",
        )  # fmt: skip
        return result

    async def _charge_call(self, path: str, form: Mapping[str, Any], key: str) -> _Reply:
        try:
            return await self._call("POST", path, form=form, idempotency_key=key)
        except _Unreachable as unreachable:
            raise ProcessorTimeout(
                f"no answer from Stripe for charge {key!r} ({unreachable}); reconcile it by lookup"
            ) from None

    def _charge_result(self, reply: _Reply, amount: int, currency: str) -> ChargeResult:
        if reply.status == 200:
            return _intent_result(reply.body)
        error = reply.error
        if reply.status == 402 and error.get("type") == "card_error":
            intent = error.get("payment_intent") or {}
            return ChargeResult(
                status=ChargeOutcome.DECLINED,
                processor_reference=intent.get("id"),
                decline_code=_decline_code(error),
                message=str(error.get("message") or "The card was declined."),
                amount=amount,
                currency=currency,
            )
        failure = self._failure(reply, "charge")
        if reply.status in (400, 404) and not isinstance(failure, IdempotencyConflict):
            raise ChargeRefused(failure.code, failure.message)
        raise failure

    async def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """The PaymentIntent made under ``idempotency_key``, found by search on
        ``metadata['kassa_key']``; None when Stripe has none."""
        query = f"metadata['kassa_key']:{_quote(idempotency_key)}"
        reply = await self._get("/v1/payment_intents/search", {"query": query, "limit": "10"})
        intents = reply.body.get("data") or []
        if not intents:
            return None
        # One per key; should there be more, a succeeded one is the one that matters.
        intents.sort(key=lambda intent: intent.get("status") != "succeeded")
        return _intent_result(intents[0])

    async def refund(
        self, processor_reference: str, amount: int, idempotency_key: str
    ) -> RefundResult:
        """Refund ``amount`` of the PaymentIntent ``processor_reference``; Stripe's refusal
        (nothing left to refund, too much) is a result."""
        if amount <= 0:
            raise ChargeRefused("INVALID_AMOUNT", "the amount must be greater than zero")
        form = {
            "payment_intent": processor_reference,
            "amount": amount,
            "metadata": {"kassa_key": idempotency_key},
        }
        try:
            reply = await self._call(
                "POST", "/v1/refunds", form=form, idempotency_key=idempotency_key
            )
        except _Unreachable as unreachable:
            raise ProcessorTimeout(
                f"no answer from Stripe for refund {idempotency_key!r} ({unreachable})"
            ) from None
        if reply.status == 200:
            status = reply.body.get("status")
            done = status in ("succeeded", "pending")
            message = {"succeeded": "Refunded.", "pending": "Refund pending."}.get(
                str(status), f"Refund {status}."
            )
            return RefundResult(done, str(reply.body.get("id")), message)
        failure = self._failure(reply, "refund")
        if reply.status in (400, 402, 404) and not isinstance(failure, IdempotencyConflict):
            return RefundResult(False, None, str(reply.error.get("message") or failure.message))
        raise failure

    # --- webhooks --------------------------------------------------------------------------

    def parse_notification(self, request: IncomingRequest) -> Notification:
        """Verify ``Stripe-Signature``, then read the event.

        ``payment_intent.succeeded`` → SUCCEEDED, ``payment_intent.payment_failed`` → FAILED
        (except an off-session ``authentication_required``: that charge is waiting for the
        customer, not failed), ``charge.refunded`` → REFUNDED (the amount refunded so far),
        ``charge.dispute.funds_withdrawn`` → REVERSED (the moment the money leaves; a dispute
        merely created may be an inquiry that takes nothing), anything else IGNORED.
        """
        self._verify(request)
        try:
            event = json.loads(request.body)
            event_id, kind, obj = str(event["id"]), str(event["type"]), event["data"]["object"]
            if not isinstance(obj, dict):
                raise TypeError(type(obj).__name__)
        except (ValueError, KeyError, TypeError):
            raise ProcessorError(
                "MALFORMED_NOTIFICATION", "the Stripe event is not an event"
            ) from None
        metadata = obj.get("metadata") or {}
        currency = str(obj["currency"]).upper() if obj.get("currency") else None
        if kind == "payment_intent.succeeded":
            return Notification(
                event_id,
                NotificationKind.SUCCEEDED,
                processor_reference=obj.get("id"),
                idempotency_key=metadata.get("kassa_key"),
                amount=obj.get("amount_received") or obj.get("amount"),
                currency=currency,
                message="Payment succeeded.",
            )
        if kind == "payment_intent.payment_failed":
            error = obj.get("last_payment_error") or {}
            awaiting_customer = error.get("code") == "authentication_required"
            return Notification(
                event_id,
                NotificationKind.IGNORED if awaiting_customer else NotificationKind.FAILED,
                processor_reference=obj.get("id"),
                idempotency_key=metadata.get("kassa_key"),
                amount=obj.get("amount"),
                currency=currency,
                decline_code=None if awaiting_customer else _decline_code(error),
                message=str(error.get("message") or "Payment failed."),
            )
        if kind == "charge.refunded":
            return Notification(
                event_id,
                NotificationKind.REFUNDED,
                processor_reference=obj.get("payment_intent"),
                idempotency_key=metadata.get("kassa_key"),
                amount=obj.get("amount_refunded"),
                currency=currency,
                message="Refunded.",
            )
        if kind == "charge.dispute.funds_withdrawn":
            return Notification(
                event_id,
                NotificationKind.REVERSED,
                processor_reference=obj.get("payment_intent"),
                amount=obj.get("amount"),
                currency=currency,
                message=f"Chargeback ({obj.get('reason', 'disputed')}).",
            )
        return Notification(event_id, NotificationKind.IGNORED, message=kind)

    def _verify(self, request: IncomingRequest) -> None:
        """Raise :class:`ForgedNotification` unless a ``v1`` signature matches the body and the
        signed timestamp is within :data:`SIGNATURE_TOLERANCE_SECONDS`."""
        header = request.headers.get("stripe-signature", "")
        timestamp: int | None = None
        signatures: list[str] = []
        for item in header.split(","):
            name, _, value = item.strip().partition("=")
            if name == "t" and value.isascii() and value.isdigit():
                timestamp = int(value)
            elif name == "v1":
                signatures.append(value)
        if timestamp is None or not signatures:
            raise ForgedNotification("the Stripe-Signature header is missing or malformed")
        secret = self._config.secret("webhook_secret").encode()
        expected = hmac.new(
            secret, f"{timestamp}.".encode() + request.body, hashlib.sha256
        ).hexdigest()
        if not any(hmac.compare_digest(expected, signature) for signature in signatures):
            raise ForgedNotification()
        if self._clock() - timestamp > SIGNATURE_TOLERANCE_SECONDS:
            raise ForgedNotification("the Stripe-Signature timestamp is too old")

    def acknowledge(self, notification: Notification) -> NotificationReply:
        """Stripe wants any 2xx; anything else it retries for days."""
        return NotificationReply(200, b'{"received": true}', "application/json")


def _decline_code(error: Mapping[str, Any]) -> str:
    code = str(error.get("decline_code") or error.get("code") or "card_declined")
    return _DECLINE_CODES.get(code, code)


def _card_error(error: Mapping[str, Any]) -> UserError:
    """Stripe's card error at tokenization as the card form's error (no card data in it)."""
    code, field = _CARD_ERRORS.get(str(error.get("code")), ("CARD_DECLINED", "cardNumber"))
    return UserError(code, str(error.get("message") or "The card was declined."), field)


def _card_token(customer: str, method: Mapping[str, Any], brand: str | None) -> CardToken:
    """kassa's token for a stored PaymentMethod; ``brand`` by kassa's own IIN table when the
    number was seen, else Stripe's."""
    card = method.get("card") or {}
    return CardToken(
        token=f"{customer}/{method['id']}",
        brand=brand or str(card.get("brand") or "unknown"),
        last4=str(card.get("last4", "")),
        exp_month=int(card.get("exp_month") or 0),
        exp_year=int(card.get("exp_year") or 0),
    )


def _intent_result(intent: Mapping[str, Any]) -> ChargeResult:
    """A PaymentIntent as kassa's charge result."""
    status = intent.get("status")
    amount, currency = int(intent["amount"]), str(intent["currency"]).upper()
    reference = str(intent["id"])
    if status == "succeeded":
        return ChargeResult(ChargeOutcome.SUCCEEDED, reference, None, "Approved.", amount, currency)
    if status == "requires_action":
        action = intent.get("next_action") or {}
        url = (action.get("redirect_to_url") or {}).get("url")
        return ChargeResult(
            ChargeOutcome.ACTION_REQUIRED,
            reference,
            None,
            "The card issuer asks the customer to authenticate the payment.",
            amount,
            currency,
            action_url=url,
        )
    error = intent.get("last_payment_error")
    if status == "requires_payment_method" and error:
        return ChargeResult(
            ChargeOutcome.DECLINED,
            reference,
            _decline_code(error),
            str(error.get("message") or "The card was declined."),
            amount,
            currency,
        )
    if status == "canceled":
        return ChargeResult(
            ChargeOutcome.DECLINED, reference, "canceled", "The payment was canceled.", amount,
            currency,
        )  # fmt: skip
    # processing, requires_confirmation, requires_capture: not decided yet.
    return ChargeResult(
        ChargeOutcome.UNKNOWN, reference, None, "The payment is not decided yet.", amount, currency
    )
