"""``payarena``: Payarena, Unified Payments' hosted payment page for Nigerian cards and
PayAttitude, implementing :class:`billing.payment_systems.RedirectProcessor` and (for its
unsigned callbacks) :class:`billing.payment_systems.NotifiedProcessor`.

The API is the one Unified Payments documents in its *Web Merchant Integration Guide*
(``github.com/up-eplatform/Merchant-Payment-Gateway``, "Appendix A" to "Appendix E"; the
merchant pack handed out at onboarding says the same):

* The gateway is ``https://test.payarena.com`` for test merchants; the production address
  comes with the go-live parameters (merchant plugins use
  ``https://cipa.unifiedpaymentsnigeria.com``, :data:`LIVE_URL`).  ``config.base_url``
  points it at the local fake, :mod:`processors.fakes.payarena` (a live account's address must
  be HTTPS: ``INSECURE_URL`` before any call otherwise).
* Create an order (Appendix A): ``POST /{merchant_id}`` with ``Accept: application/json`` and
  JSON ``{"amount", "currency", "description", "returnUrl", "secretKey", "fee"}`` — the amount
  a decimal(18,2) number in naira (written from kobo, never through a float), the currency
  ISO 4217's *number* (``566``), a description of at most 150 characters (kassa's key goes in
  it as ``^REF:<key>``, as the guide suggests, so Payarena's reports name the payment), the
  merchant's cryptographic key (credential ``secret_key``; ``merchant_id`` is the other) and
  fee 0.  The answer is the transaction id (Appendix B).
* The customer is sent (GET) to ``/{transaction id}`` (Appendix C), pays there, and is sent
  back to ``returnUrl`` by an HTTP **POST** of ``trxId``, ``status`` and ``approved``
  (Appendix E; the portal's return address takes that POST and shows the outcome).  There is
  one return address, so the request's ``cancel_url`` is not used: a cancel comes back the
  same way and reads as canceled from the status.
* The post-back is unsigned, and the guide says to query the status (Appendix E, 3–5), so
  nothing Payarena sends counts: ``GET /Status/{transaction id}`` answers ``Order Id``,
  ``Amount`` (naira, two decimals), ``Currency`` (numeric), ``Status``, ``StatusDescription``,
  ``Approval Code``, ``TranDateTime`` and masked card details kassa does not keep.  Statuses
  (table 2.0, read case-insensitively): ``Approved`` / ``Approved Successful`` pays;
  ``Declined`` and ``Cancelled`` end the payment; ``Initiated`` (not paid yet, or abandoned)
  stays pending until kassa's own deadline.  A transaction Payarena no longer knows (404)
  counts as expired.  The guide documents no server-to-server notification; a callback naming
  ``trxId`` is still accepted as a cue to ask (:attr:`~billing.payment_systems.
  NotificationKind.CHECK_STATUS`).
* The create call takes no merchant reference or idempotency key, so a start that timed out
  cannot be found again; it leaves at most a transaction nobody is sent to, which stays
  unpaid (no money moves without the customer on Payarena's page).
* Only NGN (kobo) is offered.

Timeouts and connection failures raise :class:`~billing.processing.ProcessorTimeout`.  The
secret key is in a request body only, never in a log line or an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import httpx

from billing.errors import UserError
from billing.money import format_amount, parse_amount
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
    ChargeRefused,
    ChargeResult,
    ProcessorError,
    ProcessorTimeout,
)
from processors.http import require_https, tls

log = logging.getLogger("kassa.processors.payarena")

TEST_URL = "https://test.payarena.com"
LIVE_URL = "https://cipa.unifiedpaymentsnigeria.com"
CURRENCY = "NGN"
#: ISO 4217's numeric code for the naira, the form Payarena takes and answers.
NAIRA_NUMERIC = 566
#: The longest description Payarena keeps (Appendix A, table 1.0).
DESCRIPTION_LENGTH = 150

#: Payarena's statuses (lower-cased) that end a payment, and kassa's decline code for each.
_DECLINED = {
    "declined": "declined",
    "failed": "declined",
    "canceled": "canceled",
    "cancelled": "canceled",
    "expired": "expired",
}
#: Where a callback may carry the transaction id (Payarena posts ``trxId`` to the return URL).
_ID_FIELDS = ("trxId", "trxid", "TransactionId", "transactionId", "id")


class PayarenaProcessor:
    """Payarena for one processor account (credentials ``merchant_id`` and ``secret_key``).

    ``timeout`` is per HTTP call.
    """

    name = "payarena"
    capabilities = frozenset(
        {Capability.REDIRECT, Capability.NOTIFICATIONS, Capability.STATUS_POLL}
    )
    #: Cards and PayAttitude chosen on Payarena's own page: nothing kassa stores or names.
    method_kinds: frozenset[MethodKind] = frozenset()

    def __init__(self, *, config: ProcessorConfig, timeout: float = 20.0) -> None:
        self._config = config
        default = LIVE_URL if config.mode is Mode.LIVE else TEST_URL
        self._base_url = (config.base_url or default).rstrip("/")
        self._timeout = timeout

    async def _call(self, method: str, path: str, body: bytes | None = None) -> httpx.Response:
        require_https(self._config.mode, self._base_url, "Payarena")
        try:
            async with httpx.AsyncClient(
                base_url=self._base_url, timeout=self._timeout, verify=tls()
            ) as client:
                headers = {"Accept": "application/json"}
                if body is not None:
                    headers["Content-Type"] = "application/json"
                return await client.request(method, path, content=body, headers=headers)
        except httpx.TransportError as error:  # timeouts included
            log.warning("payarena %s %s: no answer (%s)", method, path, type(error).__name__)
            raise ProcessorTimeout(
                f"no answer from Payarena to {method} {path} ({type(error).__name__})"
            ) from None

    async def start_redirect(self, request: RedirectRequest) -> RedirectStart:
        """Create the transaction; the customer is sent to its page."""
        if request.currency != CURRENCY:
            raise UserError(
                "UNSUPPORTED_CURRENCY", "Payarena takes payments in NGN only", "currency"
            )
        if request.amount <= 0:
            raise UserError("INVALID_AMOUNT", "the amount must be greater than zero", "amount")
        merchant = self._config.secret("merchant_id")
        reference = f"^REF:{request.idempotency_key}"
        description = request.description[: DESCRIPTION_LENGTH - len(reference)] + reference
        rest = {
            "currency": NAIRA_NUMERIC,
            "description": description,
            "returnUrl": request.return_url,
            "secretKey": self._config.secret("secret_key"),
            "fee": 0,
        }
        # The amount is a JSON number with two decimals, written from kobo as text: json
        # would go through a float.
        amount = format_amount(request.amount, CURRENCY)
        body = f'{{"amount": {amount}, {json.dumps(rest)[1:]}'.encode()
        response = await self._call("POST", f"/{merchant}", body)
        if response.status_code in (401, 403):
            raise ChargeRefused(
                "PROCESSOR_AUTHENTICATION",
                f"Payarena refused the merchant id and secret key ({response.status_code})",
            )
        transaction = _transaction_id(response)
        if response.status_code != 200 or transaction is None:
            raise ProcessorError(
                f"HTTP_{response.status_code}", "Payarena did not create the transaction"
            )
        log.info("payarena transaction %s for %s", transaction, request.idempotency_key)
        return RedirectStart(url=f"{self._base_url}/{transaction}", external_id=transaction)

    async def complete_return(self, start: RedirectStart, query: Mapping[str, str]) -> ChargeResult:
        """The transaction's status from Payarena: the return is unsigned, so ``query`` (the
        ``trxId`` it carries) is not read."""
        return await self.redirect_status(start)

    async def redirect_status(self, start: RedirectStart) -> ChargeResult:
        """``GET /Status/{id}`` as kassa's result; an unknown transaction has expired."""
        response = await self._call("GET", f"/Status/{start.external_id}")
        if response.status_code == 404:
            return ChargeResult(
                ChargeOutcome.DECLINED, start.external_id, "expired",
                "The Payarena transaction expired before it was paid.", 0, CURRENCY,
            )  # fmt: skip
        try:
            status = response.json()
        except ValueError:
            status = None
        if response.status_code != 200 or not isinstance(status, dict):
            raise ProcessorError(
                f"HTTP_{response.status_code}", "Payarena gave no status for the transaction"
            )
        return _status_result(start.external_id, status)

    def parse_notification(self, request: IncomingRequest) -> Notification:
        """Payarena's callback is unsigned: it only names a transaction whose status kassa
        must then ask for (CHECK_STATUS).  The same callback twice has the same event id."""
        fields = dict(request.query)
        content_type = request.headers.get("content-type", "")
        if "json" in content_type:
            try:
                body = json.loads(request.body)
            except ValueError:
                body = {}
            fields.update(
                {str(k): str(v) for k, v in (body if isinstance(body, dict) else {}).items()}
            )
        else:
            fields.update(parse_qsl(request.body.decode("utf-8", "replace")))
        transaction = next((fields[name] for name in _ID_FIELDS if fields.get(name)), None)
        if transaction is None:
            raise ProcessorError(
                "MALFORMED_NOTIFICATION", "the Payarena callback names no transaction"
            )
        digest = hashlib.sha256(request.body + repr(sorted(request.query.items())).encode())
        return Notification(
            event_id=f"payarena-{transaction}-{digest.hexdigest()[:16]}",
            kind=NotificationKind.CHECK_STATUS,
            processor_reference=transaction,
            message="Payarena says the transaction changed; its status decides.",
        )

    def acknowledge(self, notification: Notification) -> NotificationReply:
        """Any 2xx will do."""
        return NotificationReply(200, b"OK", "text/plain")


def _transaction_id(response: httpx.Response) -> str | None:
    """The id in Payarena's answer to a create: a JSON string (or, tolerated, bare text)."""
    try:
        value = response.json()
    except ValueError:
        value = response.text.strip()
    text = str(value).strip() if isinstance(value, str | int) else ""
    return text if text and text.isascii() and text.replace("-", "").isalnum() else None


def _status_result(transaction: str, status: Mapping[str, Any]) -> ChargeResult:
    """Payarena's status answer as kassa's result."""
    state = str(status.get("Status") or "").strip().lower()
    description = str(status.get("StatusDescription") or status.get("Status") or "")
    if str(status.get("Currency") or NAIRA_NUMERIC) not in (str(NAIRA_NUMERIC), CURRENCY):
        raise ProcessorError("CURRENCY_MISMATCH", "Payarena reports a currency other than NGN")
    try:
        amount = parse_amount(str(status.get("Amount") or "0"), CURRENCY)
    except UserError:
        raise ProcessorError(
            "MALFORMED_ANSWER", "Payarena's status has no readable amount"
        ) from None
    if state.startswith("approved") or state in ("successful", "success"):
        return ChargeResult(ChargeOutcome.SUCCEEDED, transaction, None,
                            description or "Paid with Payarena.", amount, CURRENCY)  # fmt: skip
    if state in _DECLINED:
        return ChargeResult(ChargeOutcome.DECLINED, transaction, _DECLINED[state],
                            description or "The Payarena payment did not go through.", amount,
                            CURRENCY)  # fmt: skip
    return ChargeResult(ChargeOutcome.UNKNOWN, transaction, None,
                        description or "The Payarena payment is not decided yet.", amount,
                        CURRENCY)  # fmt: skip


__all__ = ["PayarenaProcessor"]
