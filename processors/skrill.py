"""``skrill``: Skrill Quick Checkout, a redirect system, implementing
:class:`billing.payment_systems.RedirectProcessor` and
:class:`billing.payment_systems.NotifiedProcessor`.

The flow, as Skrill documents it:

1. *Prepare the payment session* server to server: a form POST to ``https://pay.skrill.com``
   with ``prepare_only=1``, the merchant's ``pay_to_email``, kassa's ``transaction_id`` (the
   payment's idempotency key), the amount as a decimal string (never a float), the currency,
   ``return_url``, ``cancel_url``, ``status_url`` (kassa's ``/callbacks/{account}``) and the
   language.  Skrill answers the session id (SID) as plain text; anything else is a refusal.
2. The customer is sent to ``https://pay.skrill.com/?sid=SID`` (``config.base_url`` points both
   at the local fake, :mod:`processors.fakes.skrill`).  A session that is never paid expires
   (:data:`SESSION_LIFETIME`); kassa does not know the customer left until then.
3. Skrill posts a *status notification* to ``status_url``: form fields signed by ``md5sig`` =
   upper-case MD5 of ``merchant_id + transaction_id + UPPER(MD5(secret word)) + mb_amount +
   mb_currency + status`` (and ``sha2sig``, the SHA-256 of the same string, when Skrill has
   enabled it for the account).  Both are checked in constant time before anything else is read.
4. The customer's return (``return_url?transaction_id=…&msid=…``) proves nothing by itself:
   :meth:`SkrillProcessor.complete_return` asks Skrill's Merchant Query Interface
   (``POST https://www.skrill.com/app/query.pl``, ``action=status_trn``, the merchant e-mail
   and the MD5 of the MQI password) for the transaction, and that answer is the result.

The payment's ``external_id`` is kassa's ``transaction_id`` — not the SID: the SID lives only
as long as the session, whereas the transaction id is what the status notification and the
MQI name, for as long as Skrill keeps the payment.  Skrill's own id (``mb_transaction_id``) is
the ``processor_reference`` of results and notifications.

Amounts are read from ``mb_amount``/``mb_currency`` — the fields the signature covers (what
reached the merchant's account); ``amount``/``currency`` are not signed.  An account kept in
another currency than the payment's therefore shows as a mismatch and is flagged, never
credited.

Credentials: ``merchant_email`` (pay_to_email), ``merchant_id``, ``secret_word`` and
``mqi_password``.  None of them, nor their hashes, is ever logged or put in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import httpx

from billing.errors import UserError
from billing.money import format_amount, parse_amount, validate_currency
from billing.payment_systems import (
    Capability,
    ForgedNotification,
    IncomingRequest,
    MethodKind,
    Notification,
    NotificationKind,
    NotificationReply,
    ProcessorConfig,
    RedirectRequest,
    RedirectStart,
)
from billing.processing import ChargeOutcome, ChargeResult, ProcessorError, ProcessorTimeout
from processors.http import tls

log = logging.getLogger("kassa.processors.skrill")

PAY_URL = "https://pay.skrill.com"
MQI_URL = "https://www.skrill.com/app/query.pl"
#: The path of the Merchant Query Interface under ``config.base_url`` (the fake serves both).
MQI_PATH = "/app/query.pl"
#: How long a prepared session can be paid (Skrill's SID lifetime).
SESSION_LIFETIME = timedelta(minutes=15)

#: Skrill's transaction statuses.
PROCESSED, PENDING, CANCELLED, FAILED, CHARGEBACK = "2", "0", "-1", "-2", "-3"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _md5_upper(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest().upper()


def status_signature_base(fields: Mapping[str, str], secret_word: str) -> str:
    """The string ``md5sig`` and ``sha2sig`` are computed over: ``merchant_id``,
    ``transaction_id``, the upper-case MD5 of the secret word, ``mb_amount``, ``mb_currency``
    and ``status``, concatenated."""
    return (
        fields.get("merchant_id", "")
        + fields.get("transaction_id", "")
        + _md5_upper(secret_word)
        + fields.get("mb_amount", "")
        + fields.get("mb_currency", "")
        + fields.get("status", "")
    )


def md5sig(fields: Mapping[str, str], secret_word: str) -> str:
    """Skrill's ``md5sig`` of a status notification (or MQI answer)."""
    return _md5_upper(status_signature_base(fields, secret_word))


def sha2sig(fields: Mapping[str, str], secret_word: str) -> str:
    """Skrill's ``sha2sig``: SHA-256 over the same string, upper-case hex."""
    return hashlib.sha256(status_signature_base(fields, secret_word).encode()).hexdigest().upper()


class SkrillProcessor:
    """Skrill Quick Checkout for one processor account (``config``).

    ``timeout`` is per HTTP call; ``clock`` judges whether a session that Skrill has no
    transaction for has expired (``session_lifetime`` after it was prepared).
    """

    name = "skrill"
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
        session_lifetime: timedelta = SESSION_LIFETIME,
        language: str = "EN",
    ) -> None:
        self._config = config
        base = config.base_url.rstrip("/") if config.base_url else None
        self._pay_url = base or PAY_URL
        self._mqi_url = f"{base}{MQI_PATH}" if base else MQI_URL
        self._timeout = timeout
        self._clock = clock
        self._session_lifetime = session_lifetime
        self._language = language

    # --- HTTP ------------------------------------------------------------------------------

    async def _post(self, url: str, form: Mapping[str, str], what: str) -> httpx.Response:
        """One form POST; no answer in time is :class:`ProcessorTimeout` (the URL and the
        form, which hold credentials, stay out of the message)."""
        try:
            async with httpx.AsyncClient(timeout=self._timeout, verify=tls()) as client:
                return await client.post(url, data=dict(form))
        except httpx.TransportError as error:
            log.warning("skrill %s: no answer (%s)", what, type(error).__name__)
            raise ProcessorTimeout(f"Skrill did not answer the {what} in time") from None

    # --- redirect --------------------------------------------------------------------------

    async def start_redirect(self, request: RedirectRequest) -> RedirectStart:
        """Prepare a Quick Checkout session and send the customer to its page."""
        currency = validate_currency(request.currency)
        if request.amount <= 0:
            raise UserError("AMOUNT_NOT_POSITIVE", "amount must be greater than zero", "amount")
        form = {
            "pay_to_email": self._config.secret("merchant_email"),
            "prepare_only": "1",
            "transaction_id": request.idempotency_key,
            "amount": format_amount(request.amount, currency),
            "currency": currency,
            "return_url": request.return_url,
            "cancel_url": request.cancel_url,
            "status_url": request.notify_url,
            "language": self._language,
            "detail1_description": "Payment",
            "detail1_text": request.description[:240],
        }
        if request.payer.email:
            form["pay_from_email"] = request.payer.email
        prepared_at = self._clock()
        # The root's own path ("/"): the same address at Skrill, and a fake mounted under a
        # path (the demo's /fakes/skrill) is reached without a redirect.
        response = await self._post(f"{self._pay_url}/", form, "session preparation")
        sid = response.text.strip()
        if response.status_code != 200 or not sid.isalnum():
            raise ProcessorError("SKRILL_REFUSED", _refusal(response))
        return RedirectStart(
            url=f"{self._pay_url}/?{urlencode({'sid': sid})}",
            external_id=request.idempotency_key,
            expires_at=prepared_at + self._session_lifetime,
        )

    async def complete_return(self, start: RedirectStart, query: Mapping[str, str]) -> ChargeResult:
        """Ask the MQI: the return's ``transaction_id``/``msid`` are not evidence."""
        return await self.redirect_status(start)

    async def redirect_status(self, start: RedirectStart) -> ChargeResult:
        """The transaction at Skrill.  Skrill has none until the customer pays, so "not found"
        is UNKNOWN while the session can still be paid and DECLINED ``expired`` after; such a
        result names no amount (0, no currency): nothing moved."""
        transaction = await self._query(start.external_id)
        if transaction is not None:
            return _result(transaction)
        if start.expires_at is not None and self._clock() >= start.expires_at:
            return ChargeResult(
                ChargeOutcome.DECLINED, None, "expired", "The Skrill session expired unpaid.", 0, ""
            )
        return ChargeResult(
            ChargeOutcome.UNKNOWN, None, None, "The payment is not made yet.", 0, ""
        )

    async def _query(self, transaction_id: str) -> dict[str, str] | None:
        """The MQI's ``status_trn`` answer for ``transaction_id``; None when Skrill has no such
        transaction.  The answer's ``md5sig`` is checked as a notification's would be."""
        password = hashlib.md5(
            self._config.secret("mqi_password").encode(), usedforsecurity=False
        ).hexdigest()
        form = {
            "action": "status_trn",
            "email": self._config.secret("merchant_email"),
            "password": password,
            "trn_id": transaction_id,
        }
        response = await self._post(self._mqi_url, form, "status query")
        first, _, rest = response.text.strip().partition("\n")
        code = first.split("\t", 1)[0].strip()
        if code == "200":
            fields = dict(parse_qsl(rest.strip(), keep_blank_values=True))
            self._verify(fields)
            return fields
        if code == "403" and "not found" in first.lower():
            return None
        if code == "401":
            raise ProcessorError(
                "PROCESSOR_AUTHENTICATION", "Skrill refused the account's MQI e-mail or password"
            )
        raise ProcessorError("SKRILL_QUERY_FAILED", f"Skrill's status query failed ({code or '?'})")

    # --- notifications ---------------------------------------------------------------------

    def parse_notification(self, request: IncomingRequest) -> Notification:
        """Verify ``md5sig`` (and ``sha2sig`` when sent), then read the status.

        2 → SUCCEEDED, 0 (pending) → IGNORED, -1 cancelled and -2 failed → FAILED,
        -3 chargeback → REVERSED.  The event id is ``mb_transaction_id:status``: Skrill resends
        the same notification until answered 200, and a later status is a new event.
        """
        fields = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        self._verify(fields)
        status = fields.get("status", "")
        mb_id = fields.get("mb_transaction_id") or None
        kind = {
            PROCESSED: NotificationKind.SUCCEEDED,
            CANCELLED: NotificationKind.FAILED,
            FAILED: NotificationKind.FAILED,
            CHARGEBACK: NotificationKind.REVERSED,
        }.get(status, NotificationKind.IGNORED)
        amount, currency = _amount(fields)
        return Notification(
            event_id=f"{mb_id}:{status}",
            kind=kind,
            processor_reference=mb_id,
            idempotency_key=fields.get("transaction_id") or None,
            amount=amount,
            currency=currency,
            decline_code=_decline_code(fields) if kind is NotificationKind.FAILED else None,
            message=_message(status),
        )

    def _verify(self, fields: Mapping[str, str]) -> None:
        """Raise :class:`ForgedNotification` unless ``md5sig`` (and ``sha2sig``, if present)
        match and the merchant is this account's."""
        secret = self._config.secret("secret_word")
        if not hmac.compare_digest(fields.get("md5sig", "").upper(), md5sig(fields, secret)):
            raise ForgedNotification()
        if "sha2sig" in fields and not hmac.compare_digest(
            fields["sha2sig"].upper(), sha2sig(fields, secret)
        ):
            raise ForgedNotification()
        if fields.get("merchant_id") != self._config.secret("merchant_id"):
            raise ForgedNotification("the notification is for another Skrill merchant")

    def acknowledge(self, notification: Notification) -> NotificationReply:
        """Skrill wants HTTP 200 (it resends otherwise)."""
        return NotificationReply(200, b"OK")


def _amount(fields: Mapping[str, str]) -> tuple[int, str]:
    """``mb_amount``/``mb_currency`` (the signed pair) in minor units."""
    try:
        currency = validate_currency(fields.get("mb_currency", ""))
        return parse_amount(fields.get("mb_amount", ""), currency), currency
    except UserError:
        raise ProcessorError(
            "MALFORMED_NOTIFICATION", "Skrill's answer has no readable amount"
        ) from None


def _decline_code(fields: Mapping[str, str]) -> str:
    if fields.get("status") == CANCELLED:
        return "canceled"
    reason = fields.get("failed_reason_code")
    return f"skrill_{reason}" if reason else "failed"


def _message(status: str) -> str:
    return {
        PROCESSED: "Paid with Skrill.",
        PENDING: "The Skrill payment is pending.",
        CANCELLED: "The Skrill payment was cancelled.",
        FAILED: "The Skrill payment failed.",
        CHARGEBACK: "The Skrill payment was charged back.",
    }.get(status, f"Skrill status {status}.")


def _result(fields: Mapping[str, str]) -> ChargeResult:
    """An MQI transaction as kassa's result; a chargeback means not paid (for expiry and
    reconciliation the money is not there)."""
    status = fields.get("status", "")
    amount, currency = _amount(fields)
    reference = fields.get("mb_transaction_id") or None
    if status == PROCESSED:
        outcome, code = ChargeOutcome.SUCCEEDED, None
    elif status == PENDING:
        outcome, code = ChargeOutcome.UNKNOWN, None
    elif status == CHARGEBACK:
        outcome, code = ChargeOutcome.DECLINED, "chargeback"
    else:
        outcome, code = ChargeOutcome.DECLINED, _decline_code(fields)
    return ChargeResult(outcome, reference, code, _message(status), amount, currency)


def _refusal(response: httpx.Response) -> str:
    """Why Skrill refused to prepare a session: its JSON ``message`` when it sent one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    return f"Skrill refused the payment: {message or f'HTTP {response.status_code}'}"
