"""``paynearme``: PayNearMe cash slips, implementing
:class:`billing.payment_systems.VoucherProcessor`, :class:`billing.payment_systems.NotifiedProcessor`
and :class:`billing.payment_systems.AuthorizingProcessor`.

The flow, as PayNearMe documents it (API v3.0):

1. *A standing order per customer*: ``POST {host}/json-api/create_order`` with a JSON body —
   ``site_identifier``, ``timestamp`` (Unix seconds), ``version`` ``3.0``, ``order_type``
   ``any`` with ``order_is_standing`` ``true`` (the same slip pays any amount, any number of
   times), ``order_currency`` ``USD``, ``site_customer_identifier`` (kassa's customer id) and
   ``site_order_identifier`` (kassa's reference, ``slip-<customer>``).  Asking again for the
   same reference finds the order first (``/find_orders`` by ``site_order_identifier``), so a
   customer never gets a second slip.
2. *Every request is signed*: ``signature`` = lower-case hex HMAC-SHA256, keyed with the site's
   API secret key, over the parameters sorted by name and concatenated as ``name`` + ``value``
   with no separators (``signature`` itself left out).  :func:`signature` reproduces the worked
   example of PayNearMe's Authentication page (tested).
3. *The customer pays cash at a store* (7-Eleven, ACE Cash Express, Family Dollar, CVS …); the
   store scans the slip's barcode.  PayNearMe then calls the site back, each callback type on
   the URL registered for it in PayNearMe's business portal:

   * **authorization** — "may this payment be taken?"; answered with the XML
     ``payment_authorization_response`` (``accept_payment`` ``yes``/``no``, the receipt text
     printed at the register) through :meth:`PayNearMeProcessor.answer_authorization`;
   * **confirmation** — the cash was taken; answered with ``payment_confirmation_response``
     echoing ``pnm_order_identifier`` (and ``pnm_payment_identifier``), until which PayNearMe
     resends it;
   * **reversal** — a payment was cancelled, refunded or charged back; acknowledged the same way.

   Callbacks carry the same signature over their parameters (query string, or a form or JSON
   body) and a ``timestamp``: :meth:`PayNearMeProcessor.parse_notification` checks both
   before reading anything else, and refuses a callback signed more than five minutes away
   from now (a replayed capture).  Which callback it is comes from the URL kassa registers for
   each type: ``/callbacks/{account}?pnm_callback=authorization`` (``confirmation``,
   ``reversal``) — as PayNearMe's own callback samples tell them apart by the path they arrive
   on; ``pnm_callback`` is kassa's, not PayNearMe's, so it is outside the signature.

Assumptions where PayNearMe's public pages are silent (written down so they can be checked
against a sandbox):

* An ``any`` order is created with ``order_amount`` ``0.00``: the order has no amount due of
  its own, kassa's balance is what the customer owes.
* What the store scans is the retailer slip's ``full_encoding`` when the order lists
  ``retailers`` with slips (their names are where to pay, the slip's ``slip_url`` the
  printable slip); an order without them falls back to ``pnm_order_identifier`` and
  :data:`WHERE_TO_PAY`.
* A confirmation whose ``status`` is ``decline`` moved no money (IGNORED); with ``test=true`` in
  a LIVE account, a callback is PayNearMe's test and never credits (IGNORED).
* ``payment_amount`` is what the customer paid toward the order and is what is credited;
  PayNearMe's fees (``net_payment_amount`` is after them) are the provider's cost.

Credentials: ``site_identifier`` and ``secret_key``.  The secret never leaves the process: it is
not sent (only the signature is), logged, or put in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import httpx

from billing.errors import UserError
from billing.money import parse_amount, validate_currency
from billing.payment_systems import (
    Capability,
    ForgedNotification,
    IncomingRequest,
    MethodKind,
    Mode,
    Notification,
    NotificationKind,
    NotificationReply,
    Payer,
    ProcessorConfig,
    Slip,
)
from billing.processing import ProcessorError, ProcessorTimeout
from processors.http import require_https, tls

log = logging.getLogger("kassa.processors.paynearme")

LIVE_URL = "https://api.paynearme.com"
SANDBOX_URL = "https://api.paynearme-sandbox.com"
#: Where the v3.0 calls live under the host (``config.base_url`` replaces the host).
API_PATH = "/json-api"
API_VERSION = "3.0"
#: The one currency PayNearMe takes.
CURRENCY = "USD"
#: How far a callback's ``timestamp`` may be from now, in seconds.
CALLBACK_TOLERANCE = 300
#: The query parameter on kassa's registered callback URLs naming the callback type.
CALLBACK_PARAM = "pnm_callback"
AUTHORIZATION, CONFIRMATION, REVERSAL = "authorization", "confirmation", "reversal"
#: Where to pay when the order lists no retailers: the chains PayNearMe advertises.
WHERE_TO_PAY = ("7-Eleven", "ACE Cash Express", "Family Dollar", "CVS Pharmacy")
#: The XML namespace of PayNearMe's callback responses, by API version.
XML_NAMESPACE = "http://www.paynearme.com/api/pnm_xmlschema_v" + API_VERSION.replace(".", "_")
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
#: PayNearMe prints at most this much receipt text.
_RECEIPT_LIMIT = 3000
#: Words in PayNearMe's error text that mean the account's credentials are wrong.
_CREDENTIAL_ERRORS = ("signature", "site_identifier")

#: What each callback type means, and the message that goes with it.
_CALLBACKS = {
    AUTHORIZATION: (
        NotificationKind.AUTHORIZATION,
        "PayNearMe asks whether to accept a cash payment.",
    ),
    CONFIRMATION: (NotificationKind.SUCCEEDED, "Paid in cash with PayNearMe."),
    REVERSAL: (NotificationKind.REVERSED, "A PayNearMe payment was reversed."),
}

ET.register_namespace("t", XML_NAMESPACE)
ET.register_namespace("xsi", _XSI)


def signature(params: Mapping[str, Any], secret_key: str) -> str:
    """PayNearMe's ``signature`` of ``params``: HMAC-SHA256 under the secret key over the
    parameters sorted by name, each as ``name`` + ``value`` (``signature`` left out)."""
    text = "".join(f"{name}{_text(params[name])}" for name in sorted(params) if name != "signature")
    return hmac.new(secret_key.encode(), text.encode(), hashlib.sha256).hexdigest()


def _text(value: Any) -> str:
    """A parameter as PayNearMe signs it (JSON booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class PayNearMeProcessor:
    """PayNearMe for one processor account (``config``).

    ``timeout`` is per HTTP call; ``clock`` (Unix seconds) signs requests and judges callbacks'
    age, so tests can move it.
    """

    name = "paynearme"
    capabilities = frozenset({Capability.VOUCHER, Capability.NOTIFICATIONS})
    method_kinds: frozenset[MethodKind] = frozenset()

    def __init__(
        self,
        *,
        config: ProcessorConfig,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        host = config.base_url or (LIVE_URL if config.mode is Mode.LIVE else SANDBOX_URL)
        self._api = host.rstrip("/") + API_PATH
        self._timeout = timeout
        self._clock = clock

    # --- API -------------------------------------------------------------------------------

    async def _call(self, call: str, params: Mapping[str, str]) -> dict[str, Any]:
        """One signed API call; its ``status: ok`` body, or :class:`ProcessorError`.

        No answer in time is :class:`ProcessorTimeout`.  Messages name the call and PayNearMe's
        error text, never the request (the signature is derived from the secret)."""
        require_https(self._config.mode, self._api, "PayNearMe")
        body = {
            **params,
            "site_identifier": self._config.secret("site_identifier"),
            "timestamp": str(int(self._clock())),
            "version": API_VERSION,
        }
        body["signature"] = signature(body, self._config.secret("secret_key"))
        try:
            async with httpx.AsyncClient(timeout=self._timeout, verify=tls()) as client:
                response = await client.post(f"{self._api}/{call}", json=body)
        except httpx.TransportError as error:
            log.warning("paynearme %s: no answer (%s)", call, type(error).__name__)
            raise ProcessorTimeout(f"PayNearMe did not answer {call} in time") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            log.warning("paynearme %s: HTTP %s without a JSON body", call, response.status_code)
            raise ProcessorError(
                "PAYNEARME_UNAVAILABLE",
                f"PayNearMe answered {call} with HTTP {response.status_code}",
            )
        if response.status_code < 300 and answer.get("status") == "ok":
            return answer
        errors = _errors(answer)
        log.warning("paynearme %s refused: HTTP %s %s", call, response.status_code, errors)
        if any(word in error.lower() for error in errors for word in _CREDENTIAL_ERRORS):
            raise ProcessorError(
                "PROCESSOR_AUTHENTICATION",
                "PayNearMe refused the account's site identifier or secret key",
            )
        raise ProcessorError(
            "PAYNEARME_REFUSED", f"PayNearMe refused {call}: {'; '.join(errors) or 'no reason'}"
        )

    # --- slips -----------------------------------------------------------------------------

    async def create_slip(self, payer: Payer, currency: str, reference: str) -> Slip:
        """The standing order ``reference`` names, made on first use (see the module)."""
        if validate_currency(currency) != CURRENCY:
            raise UserError(
                "UNSUPPORTED_CURRENCY", "PayNearMe takes payments in USD only", "currency"
            )
        existing = await self._find(reference)
        if existing is not None:
            return existing
        params = {
            "order_amount": "0.00",
            "order_currency": CURRENCY,
            "order_type": "any",
            "order_is_standing": "true",
            "site_customer_identifier": str(payer.customer_id),
            "site_order_identifier": reference,
            "site_order_description": f"Account of customer {payer.customer_id}",
            "site_customer_name": payer.name,
        }
        if payer.email:
            params["site_customer_email"] = payer.email
        try:
            answer = await self._call("create_order", params)
        except ProcessorError as error:
            # Two requests racing for one reference: the loser finds the winner's order.
            if error.code == "PAYNEARME_REFUSED" and (found := await self._find(reference)):
                return found
            raise
        order = answer.get("orders") or answer.get("order")
        if not isinstance(order, dict):
            raise ProcessorError("PAYNEARME_REFUSED", "PayNearMe's order answer has no order")
        return _slip(order)

    async def _find(self, reference: str) -> Slip | None:
        """The order kassa opened under ``reference``, if PayNearMe has one."""
        answer = await self._call("find_orders", {"site_order_identifier": reference})
        orders = answer.get("orders") or []
        if isinstance(orders, dict):
            orders = [orders]
        for order in orders:
            if isinstance(order, dict) and order.get("site_order_identifier") == reference:
                return _slip(order)
        return None

    # --- callbacks -------------------------------------------------------------------------

    def parse_notification(self, request: IncomingRequest) -> Notification:
        """Verify the signature, the site and the timestamp, then read the callback.

        authorization → AUTHORIZATION, confirmation → SUCCEEDED (a ``decline`` status →
        IGNORED), reversal → REVERSED.  The payment is named by ``processor_reference`` (the
        ``pnm_payment_identifier``) and ``idempotency_key`` (kassa's ``site_order_identifier``);
        ``event_id`` is ``<payment id>:<callback>:<order id>``, so a resent callback is the
        same event and the order id is at hand for the reply's echo.
        """
        params = _callback_params(request)
        self._verify(params)
        callback = request.query.get(CALLBACK_PARAM, "")
        if callback not in _CALLBACKS:
            raise ProcessorError(
                "MALFORMED_NOTIFICATION",
                f"register PayNearMe's callbacks with ?{CALLBACK_PARAM}=authorization, "
                "confirmation or reversal",
            )
        payment_id = params.get("pnm_payment_identifier", "")
        order_id = params.get("pnm_order_identifier", "")
        if not payment_id or not order_id or ":" in payment_id + order_id:
            raise ProcessorError(
                "MALFORMED_NOTIFICATION", "the callback names no PayNearMe payment and order"
            )
        kind, message = _CALLBACKS[callback]
        if callback == CONFIRMATION and params.get("status", "").lower() == "decline":
            kind, message = NotificationKind.IGNORED, "PayNearMe declined the cash payment."
        if self._config.mode is Mode.LIVE and params.get("test", "").lower() == "true":
            kind, message = NotificationKind.IGNORED, "A PayNearMe test callback."
        amount, currency = _amount(params)
        return Notification(
            event_id=f"{payment_id}:{callback}:{order_id}",
            kind=kind,
            processor_reference=payment_id,
            idempotency_key=params.get("site_order_identifier") or None,
            amount=amount,
            currency=currency,
            message=message,
        )

    def _verify(self, params: Mapping[str, str]) -> None:
        """Raise :class:`ForgedNotification` unless the signature matches, the site is this
        account's and the timestamp is within :data:`CALLBACK_TOLERANCE` of now."""
        expected = signature(params, self._config.secret("secret_key"))
        given = params.get("signature", "").lower().encode()
        if not hmac.compare_digest(given, expected.encode()):
            raise ForgedNotification()
        if params.get("site_identifier") != self._config.secret("site_identifier"):
            raise ForgedNotification("the callback is for another PayNearMe site")
        try:
            signed_at = int(params.get("timestamp", ""))
        except ValueError:
            raise ForgedNotification("the callback carries no timestamp") from None
        if abs(self._clock() - signed_at) > CALLBACK_TOLERANCE:
            raise ForgedNotification("the callback's signature is too old")

    def answer_authorization(
        self, notification: Notification, accepted: bool, reason: str = ""
    ) -> NotificationReply:
        """PayNearMe's ``payment_authorization_response``: ``accept_payment`` ``yes``/``no``
        for the order, and ``reason`` (or a thank-you) as the receipt text printed at the
        register."""
        root = _response_root("payment_authorization_response")
        authorization = _element(root, "authorization")
        _element(authorization, "pnm_order_identifier", _order_id(notification))
        _element(authorization, "accept_payment", "yes" if accepted else "no")
        receipt = reason or ("Thank you for your payment." if accepted else "Payment declined.")
        _element(authorization, "receipt", receipt[:_RECEIPT_LIMIT])
        return _xml_reply(root)

    def acknowledge(self, notification: Notification) -> NotificationReply:
        """``payment_confirmation_response`` echoing the order and payment, for confirmations
        and reversals alike.  An authorization is answered by :meth:`answer_authorization`;
        reaching here undecided, it is declined (no cash is taken on a guess)."""
        if notification.kind is NotificationKind.AUTHORIZATION:
            return self.answer_authorization(notification, False, "Payment not accepted.")
        root = _response_root("payment_confirmation_response")
        confirmation = _element(root, "confirmation")
        _element(confirmation, "pnm_order_identifier", _order_id(notification))
        if notification.processor_reference:
            _element(confirmation, "pnm_payment_identifier", notification.processor_reference)
        return _xml_reply(root)


def _callback_params(request: IncomingRequest) -> dict[str, str]:
    """A callback's parameters: the query string (PayNearMe's callbacks are GET requests)
    plus a form or JSON body if one came, without kassa's own :data:`CALLBACK_PARAM`.  A name
    given twice with two values is refused: which one was signed would be a guess."""
    params = {k: v for k, v in request.query.items() if k != CALLBACK_PARAM}
    body: dict[str, str] = {}
    if request.body:
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                decoded = json.loads(request.body)
            except ValueError:
                raise ForgedNotification("the callback's body is not readable") from None
            if not isinstance(decoded, dict):
                raise ForgedNotification("the callback's body is not readable")
            body = {str(k): _text(v) for k, v in decoded.items()}
        else:
            text = request.body.decode("utf-8", "replace")
            body = dict(parse_qsl(text, keep_blank_values=True))
    for name, value in body.items():
        if params.setdefault(name, value) != value:
            raise ForgedNotification("the callback names a parameter twice")
    return params


def _amount(params: Mapping[str, str]) -> tuple[int | None, str | None]:
    """``payment_amount``/``payment_currency`` in minor units (None when the callback names
    no amount); an amount that is not a positive decimal is unreadable, never credited."""
    if not params.get("payment_amount"):
        return None, None
    try:
        currency = validate_currency(params.get("payment_currency") or CURRENCY)
        amount = parse_amount(params["payment_amount"], currency)
    except UserError:
        currency, amount = CURRENCY, 0
    if amount <= 0:
        raise ProcessorError(
            "MALFORMED_NOTIFICATION", "PayNearMe's callback has no readable amount"
        )
    return amount, currency


def _order_id(notification: Notification) -> str:
    """The ``pnm_order_identifier`` :meth:`PayNearMeProcessor.parse_notification` kept in
    the event id."""
    parts = notification.event_id.split(":")
    if len(parts) != 3 or not parts[2]:
        raise ProcessorError("MALFORMED_NOTIFICATION", "not a PayNearMe callback's event")
    return parts[2]


def _slip(order: Mapping[str, Any]) -> Slip:
    """An order as the slip kassa prints (see the module for what is scanned)."""
    order_id = _text(order.get("pnm_order_identifier"))
    if not order_id:
        raise ProcessorError("PAYNEARME_REFUSED", "PayNearMe's order has no identifier")
    retailers = [r for r in order.get("retailers") or [] if isinstance(r, dict)]
    names = tuple(_text(r.get("retailer_name")) for r in retailers if r.get("retailer_name"))
    slips = [r["slip"] for r in retailers if isinstance(r.get("slip"), dict)]
    scanned = next((_text(s["full_encoding"]) for s in slips if s.get("full_encoding")), "")
    slip_url = next((_text(s["slip_url"]) for s in slips if s.get("slip_url")), None)
    return Slip(
        payment_identifier=scanned or order_id,
        external_id=order_id,
        where_to_pay=names or WHERE_TO_PAY,
        slip_url=slip_url or _text(order.get("order_tracking_url")) or None,
    )


def _errors(answer: Mapping[str, Any]) -> list[str]:
    """PayNearMe's ``errors``: strings or objects with a ``description``."""
    found = answer.get("errors") or []
    return [
        _text(e.get("description")) if isinstance(e, dict) else _text(e)
        for e in (found if isinstance(found, list) else [found])
    ]


def _response_root(name: str) -> ET.Element:
    root = ET.Element(f"{{{XML_NAMESPACE}}}{name}")
    root.set("version", API_VERSION)
    root.set(f"{{{_XSI}}}schemaLocation", f"{XML_NAMESPACE} pnm_xmlschema_v3_0.xsd")
    return root


def _element(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, f"{{{XML_NAMESPACE}}}{name}")
    child.text = text
    return child


def _xml_reply(root: ET.Element) -> NotificationReply:
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return NotificationReply(200, body, "application/xml")
