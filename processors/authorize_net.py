"""``authorize_net``: cards and e-checks stored in Authorize.Net's Customer Information Manager
(CIM) and charged server to server through its JSON API.

Everything goes to one endpoint (``POST …/xml/v1/request.api``) as ``{"<type>Request": {…}}``
with ``merchantAuthentication`` (the account's ``api_login_id`` and ``transaction_key``
credentials).  Answers start with a UTF-8 byte-order mark and carry ``messages.resultCode``
``Ok``/``Error`` with codes such as ``E00007`` (bad credentials), ``E00027`` (the transaction
was unsuccessful: read ``transactionResponse``), ``E00039`` (duplicate record) and ``E00040``
(record not found).  The API's JSON is its XML schema in disguise, so element order in a
request matters; the dicts below are written in schema order.

**Storing.**  A payer gets one customer profile (``merchantCustomerId`` = kassa's customer
id); on ``E00039`` the existing profile's id is read from the message and reused.  Cards
(checked first with :func:`billing.processing.validate_card`) and bank accounts become payment
profiles; kassa's token is ``"<customerProfileId>/<customerPaymentProfileId>"``.  The card
number, CVC and account number exist only in the request body: never in a log record, an
exception or kassa's database.

**Charging once per key.**  Authorize.Net has no idempotency keys, so the adapter makes one:
the key becomes the merchant reference — itself when it fits the 20 characters ``refId`` and
``order.invoiceNumber`` allow, else ``~`` + 19 hex digits of its SHA-256 (deterministic, so a
replay sends the same reference) — and the full key goes into ``order.description`` (255).
Before charging, the payer's recent transactions (``getTransactionListForCustomerRequest``)
are searched for that invoice number, and the charge itself asks for a ``duplicateWindow``
of 8 hours, so two racing requests with one key are refused by the gateway (reason code 11)
and then found by the same search (the gateway's duplicate check includes the invoice
number, so charges under different keys are not taken for duplicates).
:meth:`AuthorizeNetProcessor.lookup`, which has only the key, searches the unsettled
transactions and the settled batches of the last 31 days.

**Outcomes.**  ``responseCode`` 1 is SUCCEEDED; 2 DECLINED (reason 2-4 ``card_declined``,
295 — the card holds less than the amount, a partial approval that kassa does not accept —
``insufficient_funds``, see :data:`DECLINE_CODES`); 3 is an error: nothing was charged, so
:class:`~billing.processing.ChargeRefused`; 4 is *held for review* by the fraud filters:
money is authorized but not captured until the merchant decides, so the result is UNKNOWN
with the transaction id — billing keeps the payment open and reconciles it by lookup or by the
``fraud.approved``/``fraud.declined`` webhook.  An account settles in one currency (the
``currency`` credential, USD by default); a charge in another is refused before any call.

**Refunds.**  A settled charge is refunded (``refundTransaction`` against its payment profile
and ``refTransId``); one not yet settled can only be voided whole, so a full refund voids it
and a partial one is refused until settlement.  The refund's own reference (``~r`` + 18 hex
digits of the refund key) is its ``refId`` and invoice number, so a replay finds it.

**Webhooks.**  ``X-ANET-Signature: sha512=<HEX>`` is HMAC-SHA512 of the raw body under the
``signature_key`` credential, compared in constant time before anything is parsed.  Payment
events map to notification kinds in :data:`EVENT_KINDS`.  Authorize.Net sends no webhook for a
chargeback or a returned e-check (they appear only in the Merchant Interface and as
``transactionStatus`` ``chargeback``/``returnedItem`` in getTransactionDetails); the one event
that takes money back from a completed payment without kassa asking is a **void kassa did not
request** (made in the Merchant Interface or by Authorize.Net), so that is REVERSED, while
refunds, and voids carrying kassa's refund reference, are REFUNDED.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from billing.errors import UserError
from billing.money import format_amount, parse_amount, validate_currency
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
from processors.http import tls

log = logging.getLogger(__name__)

SANDBOX_URL = "https://apitest.authorize.net/xml/v1/request.api"
PRODUCTION_URL = "https://api.authorize.net/xml/v1/request.api"
ACCEPT_JS_SANDBOX_URL = "https://jstest.authorize.net/v1/Accept.js"
ACCEPT_JS_PRODUCTION_URL = "https://js.authorize.net/v1/Accept.js"

#: Field limits from the API reference.
REF_ID_MAX = 20
INVOICE_NUMBER_MAX = 20
#: A merchant reference is sent as both.
REFERENCE_MAX = min(REF_ID_MAX, INVOICE_NUMBER_MAX)
DESCRIPTION_MAX = 255
MERCHANT_CUSTOMER_ID_MAX = 20
NAME_ON_ACCOUNT_MAX = 22
#: The longest duplicate window the gateway takes (8 hours), in seconds.
DUPLICATE_WINDOW_SECONDS = 28800
#: How far back :meth:`AuthorizeNetProcessor.lookup` reads settled batches (the longest range
#: one getSettledBatchListRequest accepts).
LOOKUP_DAYS = 31
#: The most transactions one list request returns.
PAGE_LIMIT = 1000

SIGNATURE_HEADER = "x-anet-signature"

#: Response reason codes of a declined charge and kassa's decline codes for them.
DECLINE_CODES: Mapping[str, str] = {
    "2": "card_declined",
    "3": "card_declined",
    "4": "card_declined",
    "8": "expired_card",
    "27": "address_mismatch",
    "44": "incorrect_cvc",
    "45": "incorrect_cvc",
    "65": "incorrect_cvc",
    "127": "address_mismatch",
    "165": "incorrect_cvc",
    "250": "fraud_suspected",
    "251": "fraud_suspected",
    "254": "fraud_suspected",
    "295": "insufficient_funds",
}
_DECLINE_MESSAGES: Mapping[str, str] = {
    "insufficient_funds": "The card has insufficient funds.",
    "expired_card": "The card has expired.",
    "incorrect_cvc": "The card's security code was not accepted.",
    "address_mismatch": "The billing address does not match the card.",
}

#: Webhook event types and what they mean for a payment (see the module docstring for voids).
EVENT_KINDS: Mapping[str, NotificationKind] = {
    "net.authorize.payment.authcapture.created": NotificationKind.SUCCEEDED,
    "net.authorize.payment.capture.created": NotificationKind.SUCCEEDED,
    "net.authorize.payment.priorAuthCapture.created": NotificationKind.SUCCEEDED,
    "net.authorize.payment.fraud.approved": NotificationKind.SUCCEEDED,
    "net.authorize.payment.fraud.declined": NotificationKind.FAILED,
    "net.authorize.payment.refund.created": NotificationKind.REFUNDED,
    "net.authorize.payment.void.created": NotificationKind.REFUNDED,
}
VOID_EVENT = "net.authorize.payment.void.created"
_AUTHCAPTURE_EVENT = "net.authorize.payment.authcapture.created"

#: getTransactionDetails statuses of a charge whose money is (or was) taken.
_TAKEN_STATUSES = frozenset(
    {
        "capturedPendingSettlement",
        "settledSuccessfully",
        "approvedReview",
        "refundSettledSuccessfully",
        "refundPendingSettlement",
        "chargeback",
        "chargebackReversal",
        "returnedItem",
    }
)
#: ... and of one still waiting for a decision (held by the fraud filters).
_HELD_STATUSES = frozenset(
    {"FDSPendingReview", "FDSAuthorizedPendingReview", "underReview", "authorizedPendingRelease"}
)
_REFUND_STATUSES = frozenset({"refundSettledSuccessfully", "refundPendingSettlement"})

#: Authorize.Net's ``cardType`` names (lower-cased) as kassa's brands (see ``card_brand``).
_BRANDS: Mapping[str, str] = {
    "visa": "visa",
    "mastercard": "mastercard",
    "americanexpress": "amex",
    "discover": "discover",
    "jcb": "jcb",
    "dinersclub": "diners",
}
_TOKEN_RE = re.compile(r"^(\d{1,20})/(\d{1,20})$")
_DUPLICATE_ID_RE = re.compile(r"ID (\d+)")
_DIGIT_RUN_RE = re.compile(r"\d{4,}")
_QUOTED_VALUE_RE = re.compile(r"value '[^']*'", re.IGNORECASE)
_ACCOUNT_TYPES = {
    "checking": "checking",
    "savings": "savings",
    "businesschecking": "businessChecking",
}


def merchant_reference(idempotency_key: str) -> str:
    """The ``refId``/invoice number a charge under ``idempotency_key`` carries (≤ 20 chars).

    The key itself when it fits and cannot be mistaken for a hashed one, else ``~`` and 19 hex
    digits of its SHA-256: deterministic, so a replay is recognised by its reference.
    """
    if (
        len(idempotency_key) <= REFERENCE_MAX
        and idempotency_key.isascii()
        and idempotency_key.isprintable()
        and not idempotency_key.startswith("~")
    ):
        return idempotency_key
    return "~" + hashlib.sha256(idempotency_key.encode()).hexdigest()[: REFERENCE_MAX - 1]


def refund_reference(idempotency_key: str) -> str:
    """The ``refId``/invoice number of kassa's refund or void under ``idempotency_key``:
    ``~r`` + 18 hex digits, which no charge reference can equal (hex digits have no ``r``)."""
    digest = hashlib.sha256(b"refund:" + idempotency_key.encode()).hexdigest()
    return "~r" + digest[: REFERENCE_MAX - 2]


def signature(signature_key: str, body: bytes) -> str:
    """The ``X-ANET-Signature`` value for ``body``: ``sha512=`` and the upper-case hex
    HMAC-SHA512 under the account's signature key (used as text, as Authorize.Net does)."""
    digest = hmac.new(signature_key.encode(), body, hashlib.sha512).hexdigest().upper()
    return f"sha512={digest}"


def _safe_text(text: object) -> str:
    """An Authorize.Net message with the value it quotes and every run of 4+ digits masked:
    a schema error echoes the value it refused, which may be a card number or a CVC."""
    return _DIGIT_RUN_RE.sub("…", _QUOTED_VALUE_RE.sub("value '…'", str(text)))[:200]


def _messages(data: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(resultCode, first code, first text)`` of an answer's ``messages``."""
    messages = data.get("messages") or {}
    first = (messages.get("message") or [{}])[0]
    return (
        str(messages.get("resultCode", "")),
        str(first.get("code", "")),
        str(first.get("text", "")),
    )


def _utc_today() -> date:
    return datetime.now(UTC).date()


def _aba_valid(routing: str) -> bool:
    """Whether ``routing`` is a 9-digit ABA routing number with a valid check digit."""
    if len(routing) != 9 or not routing.isascii() or not routing.isdigit():
        return False
    d = [int(c) for c in routing]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5] + d[8]) % 10 == 0


class AuthorizeNetProcessor:
    """Authorize.Net through its JSON API, implementing :class:`billing.processing.CardProcessor`,
    :class:`billing.payment_systems.ProfileProcessor` and
    :class:`billing.payment_systems.NotifiedProcessor`.

    ``timeout`` bounds each HTTP call (a charge whose answer does not come in time raises
    :class:`ProcessorTimeout`); ``today`` decides when cards expire; ``transport`` is for an
    in-process server.
    """

    name = "authorize_net"
    capabilities = frozenset(
        {
            Capability.TOKEN_CHARGE,
            Capability.BANK_ACCOUNT,
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
            MethodKind.ECHECK,
        }
    )

    def __init__(
        self,
        config: ProcessorConfig | None = None,
        *,
        timeout: float = 30.0,
        today: Callable[[], date] = _utc_today,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config or ProcessorConfig()
        self._timeout = timeout
        self._today = today
        self._transport = transport
        live = self._config.mode == Mode.LIVE
        #: Where requests go: Authorize.Net's sandbox or production endpoint by mode, or
        #: ``config.base_url`` (the local fake).
        self.endpoint = self._config.base_url or (PRODUCTION_URL if live else SANDBOX_URL)
        self._validation_mode = "liveMode" if live else "testMode"
        self._currency = validate_currency(self._config.credentials.get("currency") or "USD")

    # --- storing ------------------------------------------------------------------------

    async def tokenize(self, card: CardDetails) -> CardToken:
        """Store ``card`` under a customer profile of its own (a generated
        ``merchantCustomerId``): for callers that have no payer."""
        digits = validate_card(card, self._today())
        profile_id = await self._create_profile(f"kassa-{secrets.token_hex(7)}", None, None)
        return await self._store_card(profile_id, card, digits)

    async def tokenize_for(self, card: CardDetails, payer: Payer) -> CardToken:
        """Store ``card`` under ``payer``'s customer profile (made on first use)."""
        digits = validate_card(card, self._today())
        profile_id = await self._profile_for(payer)
        return await self._store_card(profile_id, card, digits)

    async def store_bank_account(self, account: BankAccountDetails, payer: Payer) -> CardToken:
        """Store an e-check account under ``payer``'s profile, checked before any call."""
        routing = account.routing_number.strip()
        number = account.account_number.replace(" ", "").strip()
        if not _aba_valid(routing):
            raise UserError(
                "INVALID_ROUTING_NUMBER", "the routing number is not valid", "routingNumber"
            )
        if not 4 <= len(number) <= 17 or not number.isascii() or not number.isdigit():
            raise UserError(
                "INVALID_ACCOUNT_NUMBER", "the account number must be 4-17 digits", "accountNumber"
            )
        account_type = _ACCOUNT_TYPES.get(account.account_type.replace("_", "").lower())
        if account_type is None:
            raise UserError(
                "INVALID_ACCOUNT_TYPE",
                "the account type must be checking, savings or businessChecking",
                "accountType",
            )
        holder = account.holder.strip()
        if not holder:
            raise UserError("INVALID_HOLDER", "the name on the account is required", "holder")
        profile_id = await self._profile_for(payer)
        bank = {
            "accountType": account_type,
            "routingNumber": routing,
            "accountNumber": number,
            "nameOnAccount": holder[:NAME_ON_ACCOUNT_MAX],
            "echeckType": "WEB",
        }
        payment_profile_id = await self._create_payment_profile(
            profile_id, {"bankAccount": bank}, holder
        )
        return CardToken(f"{profile_id}/{payment_profile_id}", "echeck", number[-4:], 0, 0)

    async def adopt_client_token(self, client_token: str, payer: Payer) -> CardToken:
        """Keep a card Accept.js tokenized in the browser: ``client_token`` is its
        ``opaqueData`` as JSON (``dataDescriptor``, ``dataValue``) or the bare ``dataValue``.
        The stored card's brand, last 4 and expiry are read back from the payment profile."""
        descriptor, value = "COMMON.ACCEPT.INAPP.PAYMENT", client_token.strip()
        if value.startswith("{"):
            try:
                opaque = json.loads(value)
                descriptor, value = str(opaque["dataDescriptor"]), str(opaque["dataValue"])
            except (ValueError, KeyError, TypeError):
                raise UserError(
                    "INVALID_CLIENT_TOKEN", "the card token is not valid", "clientToken"
                ) from None
        if not value:
            raise UserError("INVALID_CLIENT_TOKEN", "the card token is not valid", "clientToken")
        profile_id = await self._profile_for(payer)
        opaque_data = {"dataDescriptor": descriptor, "dataValue": value}
        payment_profile_id = await self._create_payment_profile(
            profile_id, {"opaqueData": opaque_data}, payer.name
        )
        data = await self._call(
            "getCustomerPaymentProfileRequest",
            {
                "customerProfileId": profile_id,
                "customerPaymentProfileId": payment_profile_id,
                "unmaskExpirationDate": "true",
            },
        )
        self._require_ok(data)
        card = ((data.get("paymentProfile") or {}).get("payment") or {}).get("creditCard") or {}
        year, _, month = str(card.get("expirationDate", "")).partition("-")
        return CardToken(
            f"{profile_id}/{payment_profile_id}",
            _BRANDS.get(str(card.get("cardType", "")).replace(" ", "").lower(), "unknown"),
            str(card.get("cardNumber", ""))[-4:],
            int(month) if month.isdigit() else 0,
            int(year) if year.isdigit() else 0,
        )

    def client_tokenization(self) -> ClientTokenization:
        """Accept.js: the script (``accept_js_url`` setting, else Authorize.Net's for the
        mode) and the public settings it needs (API Login ID and the public client key)."""
        live = self._config.mode == Mode.LIVE
        default = ACCEPT_JS_PRODUCTION_URL if live else ACCEPT_JS_SANDBOX_URL
        credentials = self._config.credentials
        return ClientTokenization(
            script_url=credentials.get("accept_js_url") or default,
            public_settings={
                "apiLoginID": credentials.get("api_login_id", ""),
                "clientKey": credentials.get("client_key", ""),
            },
        )

    async def _profile_for(self, payer: Payer) -> str:
        return await self._create_profile(str(payer.customer_id), payer.name, payer.email)

    async def _create_profile(
        self, merchant_customer_id: str, description: str | None, email: str | None
    ) -> str:
        """The customer profile for ``merchant_customer_id``: created, or the existing one
        Authorize.Net names in its duplicate error (E00039)."""
        profile: dict[str, Any] = {
            "merchantCustomerId": merchant_customer_id[:MERCHANT_CUSTOMER_ID_MAX]
        }
        if description:
            profile["description"] = description[:DESCRIPTION_MAX]
        if email:
            profile["email"] = email[:DESCRIPTION_MAX]
        data = await self._call("createCustomerProfileRequest", {"profile": profile})
        result, code, text = _messages(data)
        if result == "Ok":
            return str(data["customerProfileId"])
        if code == "E00039":
            found = _DUPLICATE_ID_RE.search(text)
            if found:
                return found.group(1)
        raise self._error(code, text)

    async def _create_payment_profile(
        self, profile_id: str, payment: dict[str, Any], holder: str | None
    ) -> str:
        """A payment profile for ``payment`` under ``profile_id`` (an identical one already
        stored, E00039, is reused); a card the gateway refuses is the customer's UserError."""
        payment_profile: dict[str, Any] = {}
        if holder:
            first, _, last = holder.strip().partition(" ")
            payment_profile["billTo"] = {"firstName": first[:50], "lastName": last[:50]}
        payment_profile["payment"] = payment
        data = await self._call(
            "createCustomerPaymentProfileRequest",
            {
                "customerProfileId": profile_id,
                "paymentProfile": payment_profile,
                "validationMode": self._validation_mode,
            },
        )
        result, code, text = _messages(data)
        if result == "Ok" or (code == "E00039" and data.get("customerPaymentProfileId")):
            return str(data["customerPaymentProfileId"])
        if code == "E00027":
            raise UserError(
                "PAYMENT_METHOD_REFUSED", "Authorize.Net refused this payment method", "payment"
            )
        raise self._error(code, text)

    async def _store_card(self, profile_id: str, card: CardDetails, digits: str) -> CardToken:
        credit_card = {
            "cardNumber": digits,
            "expirationDate": f"{card.exp_year:04d}-{card.exp_month:02d}",
            "cardCode": card.cvc,
        }
        payment_profile_id = await self._create_payment_profile(
            profile_id, {"creditCard": credit_card}, card.holder
        )
        return CardToken(
            f"{profile_id}/{payment_profile_id}",
            card_brand(digits),
            digits[-4:],
            card.exp_month,
            card.exp_year,
        )

    # --- charging -----------------------------------------------------------------------

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge the payment profile once per idempotency key (see the module docstring)."""
        if request.amount <= 0:
            raise ChargeRefused("INVALID_AMOUNT", "the amount must be greater than zero")
        try:
            currency = validate_currency(request.currency)
        except UserError as error:
            raise ChargeRefused(error.code, error.message) from None
        if currency != self._currency:
            raise ChargeRefused(
                "CURRENCY_NOT_SUPPORTED",
                f"this Authorize.Net account settles in {self._currency}, not {currency}",
            )
        profile_id, payment_profile_id = self._parse_token(request.token)
        reference = merchant_reference(request.idempotency_key)
        earlier = await self._find_for_customer(profile_id, payment_profile_id, reference)
        if earlier is not None:
            return await self._replayed(earlier, request)
        description = f"{request.idempotency_key} {request.description}".strip()
        data = await self._call(
            "createTransactionRequest",
            {
                "refId": reference,
                "transactionRequest": {
                    "transactionType": "authCaptureTransaction",
                    "amount": format_amount(request.amount, currency),
                    "profile": {
                        "customerProfileId": profile_id,
                        "paymentProfile": {"paymentProfileId": payment_profile_id},
                    },
                    "order": {
                        "invoiceNumber": reference,
                        "description": description[:DESCRIPTION_MAX],
                    },
                    "transactionSettings": {
                        "setting": [
                            {
                                "settingName": "duplicateWindow",
                                "settingValue": str(DUPLICATE_WINDOW_SECONDS),
                            }
                        ]
                    },
                },
            },
            unknown_outcome=True,
        )
        response = data.get("transactionResponse")
        if not response:
            _, code, text = _messages(data)
            if code == "E00040":
                raise ChargeRefused("INVALID_TOKEN", "Authorize.Net has no such payment profile")
            raise self._error(code, text)
        reason, reason_text = self._reason(response)
        if str(response.get("responseCode")) == "3" and reason == "11":
            # A duplicate within the window: the first charge under this key exists.
            earlier = await self._find_for_customer(profile_id, payment_profile_id, reference)
            if earlier is None:
                raise IdempotencyConflict(
                    "DUPLICATE_TRANSACTION",
                    "Authorize.Net saw this charge already; look it up by its key",
                )
            return await self._replayed(earlier, request)
        result = self._result(
            str(response.get("responseCode")),
            reason,
            reason_text,
            str(response.get("transId") or "") or None,
            request.amount,
            currency,
        )
        log.info(
            "authorize_net charge %s: %s (transaction %s, reason %s)",
            reference,
            result.status.value,
            result.processor_reference,
            reason,
        )
        return result

    async def _replayed(self, summary: Mapping[str, Any], request: ChargeRequest) -> ChargeResult:
        """The first result under ``request``'s key, or IdempotencyConflict when that charge
        was for another amount."""
        result = await self._details_result(str(summary["transId"]))
        if result is None:
            raise IdempotencyConflict(
                "DUPLICATE_TRANSACTION", "Authorize.Net saw this charge already; look it up"
            )
        if result.amount != request.amount:
            raise IdempotencyConflict(
                "IDEMPOTENCY_KEY_REUSED", "this idempotency key was used for a different charge"
            )
        return result

    def _result(
        self,
        response_code: str,
        reason: str,
        reason_text: str,
        reference: str | None,
        amount: int,
        currency: str,
    ) -> ChargeResult:
        """A transaction's response code and reason as kassa's result."""
        if response_code == "1":
            return ChargeResult(
                ChargeOutcome.SUCCEEDED, reference, None, "Approved.", amount, currency
            )
        if response_code == "2":
            decline = DECLINE_CODES.get(reason, "card_declined")
            message = _DECLINE_MESSAGES.get(decline, "The payment was declined.")
            return ChargeResult(
                ChargeOutcome.DECLINED, reference, decline, message, amount, currency
            )
        if response_code == "4":
            return ChargeResult(
                ChargeOutcome.UNKNOWN,
                reference,
                None,
                "The payment is held for review by Authorize.Net's fraud filters.",
                amount,
                currency,
            )
        raise ChargeRefused(f"AUTHORIZE_NET_REASON_{reason or 'UNKNOWN'}", _safe_text(reason_text))

    @staticmethod
    def _reason(response: Mapping[str, Any]) -> tuple[str, str]:
        """The response reason code and text of a ``transactionResponse``."""
        for key, code, text in (
            ("errors", "errorCode", "errorText"),
            ("messages", "code", "description"),
        ):
            entries = response.get(key) or []
            if entries:
                return str(entries[0].get(code, "")), str(entries[0].get(text, ""))
        return "", ""

    # --- finding charges again ---------------------------------------------------------

    async def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """The charge made under ``idempotency_key``, found by its invoice number among the
        unsettled transactions and the settled batches of the last :data:`LOOKUP_DAYS` days."""
        reference = merchant_reference(idempotency_key)
        summary = await self._find_anywhere(reference)
        if summary is None:
            return None
        return await self._details_result(str(summary["transId"]))

    async def _find_for_customer(
        self, profile_id: str, payment_profile_id: str, invoice_number: str
    ) -> Mapping[str, Any] | None:
        """The payment profile's most recent transaction with ``invoice_number``."""
        return await self._search(
            "getTransactionListForCustomerRequest",
            {"customerProfileId": profile_id, "customerPaymentProfileId": payment_profile_id},
            invoice_number,
        )

    async def _find_anywhere(self, invoice_number: str) -> Mapping[str, Any] | None:
        found = await self._search("getUnsettledTransactionListRequest", {}, invoice_number)
        if found is not None:
            return found
        now = datetime.now(UTC).replace(microsecond=0)
        data = await self._call(
            "getSettledBatchListRequest",
            {
                "firstSettlementDate": (now - timedelta(days=LOOKUP_DAYS)).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                "lastSettlementDate": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
        self._require_ok(data, allow_empty=True)
        for batch in reversed(data.get("batchList") or []):
            found = await self._search(
                "getTransactionListRequest", {"batchId": str(batch["batchId"])}, invoice_number
            )
            if found is not None:
                return found
        return None

    async def _search(
        self, request_type: str, fields: dict[str, Any], invoice_number: str
    ) -> Mapping[str, Any] | None:
        """Page through a transaction list (newest first) for ``invoice_number``; a list whose
        owner does not exist (E00040: a deleted profile) has none."""
        page = 1
        while True:
            data = await self._call(
                request_type,
                {
                    **fields,
                    "sorting": {"orderBy": "submitTimeUTC", "orderDescending": "true"},
                    "paging": {"limit": str(PAGE_LIMIT), "offset": str(page)},
                },
            )
            if _messages(data)[1] == "E00040":
                return None
            self._require_ok(data, allow_empty=True)
            transactions = data.get("transactions") or []
            for transaction in transactions:
                if transaction.get("invoiceNumber") == invoice_number:
                    return dict(transaction)
            if len(transactions) < PAGE_LIMIT:
                return None
            page += 1

    async def _details(self, transaction_id: str) -> Mapping[str, Any] | None:
        data = await self._call("getTransactionDetailsRequest", {"transId": transaction_id})
        result, code, text = _messages(data)
        if result != "Ok":
            if code == "E00040":
                return None
            raise self._error(code, text)
        return dict(data["transaction"])

    async def _details_result(self, transaction_id: str) -> ChargeResult | None:
        """What became of the charge ``transaction_id``, from getTransactionDetails."""
        transaction = await self._details(transaction_id)
        if transaction is None:
            return None
        amount = self._minor(transaction.get("authAmount", transaction.get("settleAmount", 0)))
        status = str(transaction.get("transactionStatus", ""))
        reason = str(transaction.get("responseReasonCode", ""))
        if status in _TAKEN_STATUSES:
            code = "1"
        elif status in _HELD_STATUSES:
            code = "4"
        elif status == "voided":
            return ChargeResult(
                ChargeOutcome.DECLINED,
                transaction_id,
                "voided",
                "The payment was voided before it settled.",
                amount,
                self._currency,
            )
        else:
            code, reason = "2", reason if status == "declined" else "2"
        return self._result(code, reason, "", transaction_id, amount, self._currency)

    def _minor(self, value: object) -> int:
        """A decimal amount of the account's currency in minor units, exactly."""
        try:
            return parse_amount(format(Decimal(str(value)), "f"), self._currency)
        except (InvalidOperation, UserError):
            raise ProcessorError(
                "PROCESSOR_ERROR", "Authorize.Net sent an amount kassa cannot read"
            ) from None

    # --- refunds ------------------------------------------------------------------------

    async def refund(
        self, processor_reference: str, amount: int, idempotency_key: str
    ) -> RefundResult:
        """Refund a settled charge (part or all); void an unsettled one (all only)."""
        if amount <= 0:
            raise ChargeRefused("INVALID_AMOUNT", "the amount must be greater than zero")
        transaction = await self._details(processor_reference)
        if transaction is None:
            return RefundResult(False, None, "No such charge.")
        status = str(transaction.get("transactionStatus", ""))
        charged = self._minor(transaction.get("authAmount", 0))
        profile = transaction.get("profile") or {}
        profile_id = str(profile.get("customerProfileId", ""))
        payment_profile_id = str(profile.get("customerPaymentProfileId", ""))
        reference = refund_reference(idempotency_key)
        if status == "voided":
            # A void leaves no transaction of its own to recognise a replay by: the whole
            # amount is the void kassa made (billing never refunds more than was paid).
            if amount == charged:
                return RefundResult(True, processor_reference, "Voided before settlement.")
            return RefundResult(False, None, "The charge was voided before it settled.")
        if profile_id and payment_profile_id:
            earlier = await self._find_for_customer(profile_id, payment_profile_id, reference)
            if earlier is not None:
                refunded = self._minor(earlier.get("settleAmount", 0))
                if refunded != amount:
                    raise IdempotencyConflict(
                        "IDEMPOTENCY_KEY_REUSED",
                        "this idempotency key was used for a different refund",
                    )
                succeeded = earlier.get("transactionStatus") in _REFUND_STATUSES
                return RefundResult(succeeded, str(earlier["transId"]), "Refunded.")
        if status == "capturedPendingSettlement":
            if amount != charged:
                return RefundResult(
                    False,
                    None,
                    "Part of a charge can be refunded once it has settled (usually the next day).",
                )
            return await self._void(processor_reference, reference)
        if status != "settledSuccessfully":
            return RefundResult(False, None, "Only a settled or unsettled charge can be refunded.")
        if not (profile_id and payment_profile_id):
            return RefundResult(False, None, "The charge was not made from a stored profile.")
        data = await self._call(
            "createTransactionRequest",
            {
                "refId": reference,
                "transactionRequest": {
                    "transactionType": "refundTransaction",
                    "amount": format_amount(amount, self._currency),
                    "profile": {
                        "customerProfileId": profile_id,
                        "paymentProfile": {"paymentProfileId": payment_profile_id},
                    },
                    "refTransId": processor_reference,
                    "order": {
                        "invoiceNumber": reference,
                        "description": idempotency_key[:DESCRIPTION_MAX],
                    },
                },
            },
        )
        return self._refund_result(data, "Refunded.")

    async def _void(self, transaction_id: str, reference: str) -> RefundResult:
        data = await self._call(
            "createTransactionRequest",
            {
                "refId": reference,
                "transactionRequest": {
                    "transactionType": "voidTransaction",
                    "refTransId": transaction_id,
                },
            },
        )
        result = self._refund_result(data, "Voided before settlement.")
        return RefundResult(
            result.succeeded, transaction_id if result.succeeded else None, result.message
        )

    def _refund_result(self, data: Mapping[str, Any], done: str) -> RefundResult:
        response = data.get("transactionResponse")
        if not response:
            _, code, text = _messages(data)
            raise self._error(code, text)
        if str(response.get("responseCode")) == "1":
            return RefundResult(True, str(response.get("transId")), done)
        _, text = self._reason(response)
        return RefundResult(False, None, _safe_text(text) or "Authorize.Net refused the refund.")

    # --- notifications ------------------------------------------------------------------

    def parse_notification(self, request: IncomingRequest) -> Notification:
        """Verify ``X-ANET-Signature`` over the raw body, then read the webhook."""
        given = request.headers.get(SIGNATURE_HEADER, "")
        expected = signature(self._config.secret("signature_key"), request.body)
        if not hmac.compare_digest(expected.upper().encode(), given.strip().upper().encode()):
            raise ForgedNotification()
        try:
            event = json.loads(request.body.decode("utf-8-sig"), parse_float=Decimal)
            event_id = str(event["notificationId"])
            event_type = str(event["eventType"])
            payload = event.get("payload") or {}
            if not isinstance(payload, dict):
                raise TypeError("payload")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ProcessorError(
                "MALFORMED_NOTIFICATION", "the webhook is not Authorize.Net's JSON"
            ) from None
        kind = EVENT_KINDS.get(event_type, NotificationKind.IGNORED)
        if payload.get("entityName") != "transaction":
            kind = NotificationKind.IGNORED
        reference = str(payload.get("merchantReferenceId") or payload.get("invoiceNumber") or "")
        if (
            event_type == VOID_EVENT
            and kind != NotificationKind.IGNORED
            and not reference.startswith("~r")
        ):
            kind = NotificationKind.REVERSED  # taken back without kassa asking
        if event_type == _AUTHCAPTURE_EVENT and str(payload.get("responseCode", "1")) != "1":
            kind = (
                NotificationKind.IGNORED
                if str(payload.get("responseCode")) == "4"
                else NotificationKind.FAILED
            )
        amount = payload.get("authAmount")
        return Notification(
            event_id=event_id,
            kind=kind,
            processor_reference=str(payload["id"]) if payload.get("id") else None,
            idempotency_key=reference if reference and not reference.startswith("~") else None,
            amount=None if amount is None else self._minor(amount),
            currency=None if amount is None else self._currency,
            decline_code="fraud_declined" if kind == NotificationKind.FAILED else None,
            message=event_type,
        )

    def acknowledge(self, notification: Notification) -> NotificationReply:
        """Authorize.Net wants any 2xx; it retries otherwise."""
        return NotificationReply(status=200, body=b"")

    # --- the wire -----------------------------------------------------------------------

    @staticmethod
    def _parse_token(token: str) -> tuple[str, str]:
        match = _TOKEN_RE.match(token)
        if match is None:
            raise ChargeRefused("INVALID_TOKEN", "not an Authorize.Net payment profile token")
        return match.group(1), match.group(2)

    def _require_ok(self, data: Mapping[str, Any], allow_empty: bool = False) -> None:
        """Raise unless the answer is Ok (or, with ``allow_empty``, I00004: no records)."""
        result, code, text = _messages(data)
        if result != "Ok" and not (allow_empty and code == "I00004"):
            raise self._error(code, text)

    @staticmethod
    def _error(code: str, text: str) -> ProcessorError:
        """The ProcessorError for an Error answer; never the credentials, never card digits."""
        if code in {"E00007", "E00008"}:
            return ProcessorError(
                "AUTHENTICATION_FAILED",
                f"Authorize.Net refused the API Login ID and Transaction Key ({code})",
            )
        if code == "E00011":
            # Never read as "no such charge": that would let an unknown charge count as unmade.
            return ProcessorError(
                "ACCESS_DENIED",
                "Authorize.Net denied access (E00011): enable the Transaction Details API "
                "in the Merchant Interface",
            )
        return ProcessorError(f"AUTHORIZE_NET_{code or 'ERROR'}", f"{code}: {_safe_text(text)}")

    async def _call(
        self, request_type: str, fields: dict[str, Any], *, unknown_outcome: bool = False
    ) -> dict[str, Any]:
        """POST one API request and return its decoded answer.

        A timeout raises :class:`ProcessorTimeout`; so does a connection lost mid-call of a
        request that moves money (``unknown_outcome``), whose outcome is then unknown.
        """
        body = {
            request_type: {
                "merchantAuthentication": {
                    "name": self._config.secret("api_login_id"),
                    "transactionKey": self._config.secret("transaction_key"),
                },
                **fields,
            }
        }
        try:
            async with httpx.AsyncClient(
                timeout=self._timeout, verify=tls(), transport=self._transport
            ) as client:
                response = await client.post(self.endpoint, json=body)
        except httpx.TimeoutException:
            raise ProcessorTimeout(f"no answer from Authorize.Net to {request_type}") from None
        except httpx.ConnectError:
            raise ProcessorError(
                "PROCESSOR_UNAVAILABLE", "Authorize.Net cannot be reached"
            ) from None
        except httpx.TransportError:
            if unknown_outcome:
                raise ProcessorTimeout(f"the connection broke during {request_type}") from None
            raise ProcessorError(
                "PROCESSOR_UNAVAILABLE", "the connection to Authorize.Net broke"
            ) from None
        if response.status_code != 200:
            raise ProcessorError(
                "PROCESSOR_UNAVAILABLE", f"Authorize.Net answered HTTP {response.status_code}"
            )
        try:
            data = json.loads(response.content.decode("utf-8-sig"), parse_float=Decimal)
        except ValueError:
            raise ProcessorError("PROCESSOR_ERROR", "Authorize.Net's answer is not JSON") from None
        if not isinstance(data, dict):
            raise ProcessorError("PROCESSOR_ERROR", "Authorize.Net's answer is not an object")
        log.debug("authorize_net %s: %s", request_type, _messages(data)[:2])
        return data
