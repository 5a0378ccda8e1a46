"""``remita``: Remita (Nigeria) by RRR and its payment page, a redirect system, implementing
:class:`billing.payment_systems.RedirectProcessor` and
:class:`billing.payment_systems.NotifiedProcessor`.

The flow, as Remita documents it:

1. *Generate an RRR* (Remita Retrieval Reference): ``POST
   /remita/exapp/api/v1/send/api/echannelsvc/merchant/api/paymentinit`` with JSON
   ``serviceTypeId``, ``amount`` (a decimal string in naira, never a float), ``orderId``
   (kassa's idempotency key), ``payerName``, ``payerEmail``, ``payerPhone`` and
   ``description``, authorised by ``Authorization: remitaConsumerKey={merchantId},
   remitaConsumerToken={SHA-512(merchantId + serviceTypeId + orderId + amount + apiKey)}``.
   Remita answers JSONP — ``jsonp ({"statuscode": "025", "RRR": …})`` — and 025 means the RRR
   was made.  Before generating, kassa asks ``…/echannelsvc/{merchantId}/{orderId}/{hash}/
   orderstatus.reg`` (hash = SHA-512(orderId + apiKey + merchantId)) for an RRR already made
   under the same orderId, so a second start or a retry after a timeout reuses it.
2. The customer is sent to Remita's page by a form POST to ``/remita/ecomm/finalize.reg`` with
   ``merchantId``, ``rrr``, ``hash`` = SHA-512(merchantId + rrr + apiKey) and ``responseurl``
   (:attr:`RedirectStart.form_fields`); Remita sends them back to ``responseurl?RRR=…``.
3. Remita's payment notifications (JSON, posted to the URL set in the merchant's Remita
   profile) are *not signed*: :meth:`RemitaProcessor.parse_notification` reads only the RRR
   and answers :attr:`NotificationKind.CHECK_STATUS`, so billing asks
   :meth:`RemitaProcessor.redirect_status` before anything counts.
4. The status — on return, on notification and at expiry — is ``GET
   /remita/exapp/api/v1/send/api/echannelsvc/{merchantId}/{rrr}/{hash}/status.reg`` with
   ``hash`` = SHA-512(rrr + apiKey + merchantId): ``00``/``01`` paid, ``021`` pending (and
   ``025``, generated and not paid), ``012`` aborted by the customer; a request error (``022``
   invalid request, ``023`` invalid merchant or hash, ``999``) raises, so a wrong API key never
   reads as a declined payment; any other status is a failed payment.

Remita needs the payer's name, e-mail and phone, and takes NGN from 50 NGN: a request without
them, in another currency or below :data:`MINIMUM_KOBO` is refused with a
:class:`~billing.errors.UserError` before any call (the platform also sets 50 NGN as the
account's minimum; this guard stays so the adapter is safe on its own).

Remita keeps an unpaid RRR payable (at a bank branch too), and names no expiry of its own;
kassa gives the redirect ``lifetime`` (:attr:`RedirectStart.expires_at`) and reads an RRR still
unpaid after it as DECLINED ``expired``.  An RRR paid later still arrives by notification.

Credentials: ``merchant_id``, ``service_type_id`` and ``api_key`` (never logged nor put in an
error; the hashes derived from the key travel only to Remita).  Test mode talks to
``https://remitademo.net``, live mode to ``https://login.remita.net``; ``config.base_url``
points it at the local fake (:mod:`processors.fakes.remita`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from billing.errors import UserError
from billing.money import format_amount, parse_amount, validate_currency
from billing.payment_systems import (
    Capability,
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
    ChargeResult,
    IdempotencyConflict,
    ProcessorError,
    ProcessorTimeout,
)
from processors.http import tls

log = logging.getLogger("kassa.processors.remita")

DEMO_URL = "https://remitademo.net"
LIVE_URL = "https://login.remita.net"
ECHANNEL_PATH = "/remita/exapp/api/v1/send/api/echannelsvc"
PAYMENT_INIT_PATH = f"{ECHANNEL_PATH}/merchant/api/paymentinit"
FINALIZE_PATH = "/remita/ecomm/finalize.reg"
CURRENCY = "NGN"
#: Remita's smallest payment: 50 NGN.
MINIMUM_KOBO = 5000
#: How long kassa waits for an RRR to be paid before reading it as expired.
LIFETIME = timedelta(hours=24)

RRR_GENERATED = "025"
_PAID = frozenset({"00", "01"})
_PENDING = frozenset({"021", RRR_GENERATED})
_ABORTED = "012"
#: Statuses that say the status request itself was wrong, not the payment.
_REQUEST_ERRORS = frozenset({"022", "023", "999"})
#: Of those, the ones an order status query answers for something other than "no such
#: order" (Remita's invalid merchant or hash, and its unknown error).
_AUTH_ERRORS = frozenset({"023", "999"})


def _utc_now() -> datetime:
    return datetime.now(UTC)


def sha512(*parts: str) -> str:
    """Remita's hashes: SHA-512 of the parts concatenated, lower-case hex."""
    return hashlib.sha512("".join(parts).encode()).hexdigest()


class RemitaProcessor:
    """Remita for one processor account (``config``).

    ``timeout`` is per HTTP call; ``clock`` and ``lifetime`` decide when an unpaid RRR counts
    as expired.
    """

    name = "remita"
    capabilities = frozenset(
        {Capability.REDIRECT, Capability.NOTIFICATIONS, Capability.STATUS_POLL}
    )
    method_kinds: frozenset[MethodKind] = frozenset()

    def __init__(
        self,
        *,
        config: ProcessorConfig,
        timeout: float = 30.0,
        clock: Callable[[], datetime] = _utc_now,
        lifetime: timedelta = LIFETIME,
    ) -> None:
        self._config = config
        default = LIVE_URL if config.mode is Mode.LIVE else DEMO_URL
        self._base_url = (config.base_url or default).rstrip("/")
        self._timeout = timeout
        self._clock = clock
        self._lifetime = lifetime

    # --- HTTP ------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, token: str, what: str, **options: Any) -> Any:
        """One API call authorised with ``token``; Remita's answer (JSON, JSONP-wrapped or
        not).  The URL and headers, which carry hashes of the API key, stay out of errors."""
        merchant = self._config.secret("merchant_id")
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"remitaConsumerKey={merchant},remitaConsumerToken={token}",
        }
        try:
            async with httpx.AsyncClient(
                base_url=self._base_url, timeout=self._timeout, verify=tls()
            ) as client:
                response = await client.request(method, path, headers=headers, **options)
        except httpx.TransportError as error:
            log.warning("remita %s: no answer (%s)", what, type(error).__name__)
            raise ProcessorTimeout(f"Remita did not answer the {what} in time") from None
        text = response.text.strip()
        if text.startswith("jsonp"):
            text = text[text.find("(") + 1 : text.rfind(")")]
        try:
            return json.loads(text, parse_float=Decimal)
        except ValueError:
            log.warning("remita %s: HTTP %s without JSON", what, response.status_code)
            raise ProcessorError(
                "REMITA_FAILED", f"Remita's answer to the {what} was not readable"
            ) from None

    # --- redirect --------------------------------------------------------------------------

    def _check(self, request: RedirectRequest) -> str:
        """What the customer must fix before Remita can be asked (nothing is sent first)."""
        if not request.payer.name.strip():
            raise UserError("NAME_REQUIRED", "Remita needs the payer's name", "name")
        if not (request.payer.email or "").strip():
            raise UserError(
                "EMAIL_REQUIRED",
                "Remita needs your e-mail address: add it to your profile",
                "email",
            )
        if not (request.phone or "").strip():
            raise UserError(
                "PHONE_REQUIRED", "Remita needs your phone number: add it to your profile", "phone"
            )
        if validate_currency(request.currency) != CURRENCY:
            raise UserError("CURRENCY_NOT_SUPPORTED", "Remita takes payments in NGN", "currency")
        if request.amount < MINIMUM_KOBO:
            raise UserError(
                "AMOUNT_BELOW_MINIMUM",
                f"Remita payments are at least {format_amount(MINIMUM_KOBO, CURRENCY)} NGN",
                "amount",
            )
        return format_amount(request.amount, CURRENCY)

    def check_redirect(self, request: RedirectRequest) -> None:
        """What the customer must fix before Remita can be asked (CheckedRedirect)."""
        self._check(request)

    async def start_redirect(self, request: RedirectRequest) -> RedirectStart:
        """Generate the RRR and send the customer to Remita's page with it."""
        amount = self._check(request)
        merchant = self._config.secret("merchant_id")
        service_type = self._config.secret("service_type_id")
        api_key = self._config.secret("api_key")
        body = {
            "serviceTypeId": service_type,
            "amount": amount,
            "orderId": request.idempotency_key,
            "payerName": request.payer.name,
            "payerEmail": request.payer.email,
            "payerPhone": request.phone,
            "description": request.description,
        }
        started_at = self._clock()
        rrr = await self._existing_rrr(request.idempotency_key, request.amount)
        if rrr is None:
            token = sha512(merchant, service_type, request.idempotency_key, amount, api_key)
            answer = await self._call("POST", PAYMENT_INIT_PATH, token, "RRR generation", json=body)
            answer = answer if isinstance(answer, dict) else {}
            rrr = str(answer.get("RRR") or "").strip()
            if answer.get("statuscode") != RRR_GENERATED or not rrr:
                why = answer.get("status") or answer.get("statuscode") or "no RRR"
                raise ProcessorError("REMITA_REFUSED", f"Remita refused the payment: {why}")
        return RedirectStart(
            url=f"{self._base_url}{FINALIZE_PATH}",
            external_id=rrr,
            form_fields={
                "merchantId": merchant,
                "hash": sha512(merchant, rrr, api_key),
                "rrr": rrr,
                "responseurl": request.return_url,
            },
            expires_at=started_at + self._lifetime,
        )

    async def _existing_rrr(self, order_id: str, amount: int) -> str | None:
        """The RRR already generated for ``order_id`` (a second start, or a retry after a
        generation that timed out), found by Remita's order status call, so one kassa payment
        is never two RRRs; None when Remita has none.  The same key for another amount is an
        :class:`~billing.processing.IdempotencyConflict`."""
        merchant = self._config.secret("merchant_id")
        digest = sha512(order_id, self._config.secret("api_key"), merchant)
        path = f"{ECHANNEL_PATH}/{merchant}/{quote(order_id, safe='')}/{digest}/orderstatus.reg"
        answer = await self._call("GET", path, digest, "order status query")
        answer = answer if isinstance(answer, dict) else {}
        rrr = str(answer.get("RRR") or "").strip()
        if not rrr:
            if str(answer.get("status") or "") in _AUTH_ERRORS:
                raise ProcessorError(
                    "REMITA_QUERY_FAILED", "Remita refused the account's merchant id or API key"
                )
            return None
        if answer.get("amount") not in (None, "") and _kobo(answer["amount"]) != amount:
            raise IdempotencyConflict(
                "IDEMPOTENCY_KEY_REUSED", "Remita has this payment's order for another amount"
            )
        return rrr

    async def complete_return(self, start: RedirectStart, query: Mapping[str, str]) -> ChargeResult:
        """Ask Remita: the return's ``RRR``/``orderID`` are not evidence."""
        return await self.redirect_status(start)

    async def redirect_status(self, start: RedirectStart) -> ChargeResult:
        """The RRR's status at Remita (see the module's docstring for the mapping)."""
        rrr = start.external_id
        merchant = self._config.secret("merchant_id")
        digest = sha512(rrr, self._config.secret("api_key"), merchant)
        path = f"{ECHANNEL_PATH}/{merchant}/{rrr}/{digest}/status.reg"
        answer = await self._call("GET", path, digest, "status query")
        answer = answer if isinstance(answer, dict) else {}
        status = str(answer.get("status") or "")
        message = str(answer.get("message") or f"Remita status {status}.")
        if status in _REQUEST_ERRORS or not status:
            raise ProcessorError("REMITA_QUERY_FAILED", f"Remita's status query failed: {message}")
        amount = _kobo(answer.get("amount"))
        if status in _PAID:
            return ChargeResult(ChargeOutcome.SUCCEEDED, rrr, None, message, amount, CURRENCY)
        if status in _PENDING:
            if start.expires_at is not None and self._clock() >= start.expires_at:
                return ChargeResult(
                    ChargeOutcome.DECLINED, rrr, "expired", "The RRR expired unpaid.", amount,
                    CURRENCY,
                )  # fmt: skip
            return ChargeResult(ChargeOutcome.UNKNOWN, rrr, None, message, amount, CURRENCY)
        code = "canceled" if status == _ABORTED else f"remita_{status}"
        return ChargeResult(ChargeOutcome.DECLINED, rrr, code, message, amount, CURRENCY)

    # --- notifications ---------------------------------------------------------------------

    def parse_notification(self, request: IncomingRequest) -> Notification:
        """Read the RRR of Remita's (unsigned) notification: CHECK_STATUS, never more.

        Remita posts a JSON array of payments (one per notification in practice); the first
        one's RRR is the payment to re-query.  Its amount is not reported: nothing in an
        unsigned body is trusted.  The event id is the RRR and the transaction date, which a
        resent notification repeats.
        """
        try:
            body = json.loads(request.body)
            item = body[0] if isinstance(body, list) else body
            rrr = str(item.get("rrr") or item.get("RRR") or "").strip()
        except (ValueError, IndexError, KeyError, TypeError, AttributeError):
            rrr = ""
        if not rrr:
            raise ProcessorError("MALFORMED_NOTIFICATION", "the Remita notification names no RRR")
        when = str(item.get("transactiondate") or item.get("debitdate") or "")
        return Notification(
            event_id=f"{rrr}:{when}",
            kind=NotificationKind.CHECK_STATUS,
            processor_reference=rrr,
            message="Remita reports a payment; its status is asked for.",
        )

    def acknowledge(self, notification: Notification) -> NotificationReply:
        """Remita wants HTTP 200 (it resends otherwise)."""
        return NotificationReply(200, b"OK")


def _kobo(value: object) -> int:
    """Remita's naira amount (a JSON number or string) in kobo; 0 when it names none."""
    if value is None or value == "":
        return 0
    try:
        return parse_amount(str(value), CURRENCY)
    except UserError:
        raise ProcessorError("REMITA_FAILED", "Remita's status names no readable amount") from None
