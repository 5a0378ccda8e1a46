"""A local Authorize.Net: the JSON API kassa's adapter speaks (``POST /xml/v1/request.api``),
in memory, for the tests and the demo.  It imports nothing of ``billing``, so it also runs
alone: ``uvicorn processors.fakes.authorize_net:app`` (credentials from the environment, see
:meth:`FakeAuthorizeNet.from_env`) or :func:`serve`.

Like the real gateway it answers every request type below with a UTF-8 byte-order mark before
the JSON, ``messages.resultCode`` ``Ok``/``Error``, ``E00007`` for credentials it does not
know, ``E00003`` (echoing the value, as the real one does) for a field over its schema limit
(``refId`` and ``invoiceNumber`` 20, ``description`` 255, ``merchantCustomerId`` 20,
``nameOnAccount`` 22), ``E00039`` for a duplicate profile (naming the existing id),
``E00040`` for an unknown record and reason code 11 for a duplicate charge inside the
``duplicateWindow``.

Request types: createCustomerProfile, createCustomerPaymentProfile, getCustomerPaymentProfile,
createTransaction (authCaptureTransaction from a profile, refundTransaction, voidTransaction),
getTransactionListForCustomer, getUnsettledTransactionList, getSettledBatchList,
getTransactionList, getTransactionDetails, and securePaymentContainer (what Accept.js calls;
the fake serves a small ``/v1/Accept.js`` that does it, and answers any origin, as the real
API does for the browser).  With ``transaction_details_api`` off the reporting calls answer
``E00011``, as for a merchant who has not enabled the Transaction Details API.

**What a charge does** (decided when the payment profile is stored, as the sandbox does):

* the sandbox's documented test cards (:data:`SANDBOX_CARDS`) and any other valid number
  approve;
* billing ZIP code ``46282`` declines (response code 2, reason 2), as in the sandbox's
  testing guide;
* an e-check over 100.00 declines (reason 2), as in the sandbox; up to 100.00 approves;
* numbers the sandbox has no trigger for are the fake's own (:data:`FAKE_CARDS`, the same
  numbers kassa's other fakes use): ``4000000000000002`` declines (reason 2),
  ``4000000000009995`` declines with reason 295 (partially approved: the card holds less than
  the amount — kassa's insufficient funds), ``4000000000000259`` is held for review
  (response code 4) and ``4000000000000119`` *hangs*: the charge is booked, then the answer
  waits ``hang_seconds`` so the client times out, and a lookup finds it.

Approved charges settle at once by default (``auto_settle``), so they can be refunded in
part; with ``auto_settle=False`` they wait for :meth:`FakeAuthorizeNet.settle`, and only a
void takes them back.

**Webhooks.**  :meth:`FakeAuthorizeNet.webhook` writes the notification Authorize.Net would
send about a transaction (``notificationId``, ``eventType``, ``eventDate``, ``webhookId``,
``payload`` with ``entityName`` ``transaction``) with its ``X-ANET-Signature`` header
(``sha512=`` + upper-case hex HMAC-SHA512 of the body under the signature key); ``POST
/_fake/webhook`` with ``{"transId", "eventType", "url"}`` sends one to ``url``, for the demo.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BOM = "\ufeff"

#: The sandbox's published test card numbers (testing guide): all approve.
SANDBOX_CARDS = (
    "370000000000002",
    "6011000000000012",
    "3088000000000017",
    "38000000000006",
    "4007000000027",
    "4012888818888",
    "4111111111111111",
    "5424000000000015",
    "2223000010309703",
    "2223000010309711",
)
APPROVE, DECLINE, INSUFFICIENT, HELD, HANG = "approve", "decline", "insufficient", "held", "hang"
#: The fake's own numbers for outcomes the sandbox has no card trigger for.
FAKE_CARDS = {
    "4000000000000002": DECLINE,
    "4000000000009995": INSUFFICIENT,
    "4000000000000259": HELD,
    "4000000000000119": HANG,
}
DECLINE_ZIP = "46282"
ECHECK_APPROVAL_LIMIT = Decimal("100.00")

_LIMITS = {
    "refId": 20,
    "invoiceNumber": 20,
    "description": 255,
    "merchantCustomerId": 20,
    "nameOnAccount": 22,
    "email": 255,
}
_CARD_TYPES = (
    ("4", "Visa"),
    ("34", "AmericanExpress"),
    ("37", "AmericanExpress"),
    ("5", "MasterCard"),
    ("2", "MasterCard"),
    ("6", "Discover"),
    ("35", "JCB"),
    ("30", "DinersClub"),
    ("36", "DinersClub"),
    ("38", "DinersClub"),
)
_OUTCOMES = {
    # behaviour: (responseCode, reason code, reason text, status)
    APPROVE: ("1", "1", "This transaction has been approved.", "capturedPendingSettlement"),
    HANG: ("1", "1", "This transaction has been approved.", "capturedPendingSettlement"),
    DECLINE: ("2", "2", "This transaction has been declined.", "declined"),
    INSUFFICIENT: (
        "2",
        "295",
        "The amount of this request was only partially approved on the given prepaid card.",
        "declined",
    ),
    HELD: (
        "4",
        "252",
        "Your order has been received. Thank you for your business!",
        "FDSPendingReview",
    ),
}


#: The Transaction Details API's request types.
_REPORTING = frozenset(
    {
        "getTransactionListForCustomerRequest",
        "getUnsettledTransactionListRequest",
        "getSettledBatchListRequest",
        "getTransactionListRequest",
        "getTransactionDetailsRequest",
    }
)


class _Refused(Exception):
    """An Error answer: ``messages`` with this code and text (and extra top-level fields)."""

    def __init__(self, code: str, text: str, **extra: Any) -> None:
        super().__init__(text)
        self.code, self.text, self.extra = code, text, extra


@dataclass
class PaymentProfile:
    id: str
    kind: str  # "card" or "bank"
    fingerprint: str
    last4: str
    card_type: str
    expiration: str
    behaviour: str
    zip: str = ""
    account_type: str = ""
    routing_last4: str = ""
    name_on_account: str = ""


@dataclass
class Profile:
    id: str
    merchant_customer_id: str
    description: str
    email: str
    payment_profiles: dict[str, PaymentProfile] = field(default_factory=dict)


@dataclass
class Transaction:
    trans_id: str
    kind: str  # authCaptureTransaction, refundTransaction
    ref_id: str
    invoice_number: str
    description: str
    amount: Decimal
    response_code: str
    reason_code: str
    reason_text: str
    status: str
    submitted: datetime
    profile_id: str
    payment_profile_id: str
    account_type: str
    account_number: str
    auth_code: str
    ref_trans_id: str = ""
    batch_id: str | None = None
    refunded: Decimal = Decimal(0)


@dataclass
class Batch:
    id: str
    settled: datetime
    transactions: list[str] = field(default_factory=list)


def _luhn(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def _card_type(number: str) -> str:
    return next(
        (
            name
            for prefix, name in sorted(_CARD_TYPES, key=lambda p: -len(p[0]))
            if number.startswith(prefix)
        ),
        "Visa",
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_DECIMAL_MARK = "__fake_anet_decimal__:"
_DECIMAL_RE = re.compile('"' + _DECIMAL_MARK + r'(-?[0-9.]+)"')


def dumps(value: Any) -> str:
    """JSON as Authorize.Net writes it: amounts as JSON numbers, exactly (no float)."""

    def decimal(item: Any) -> Any:
        if isinstance(item, Decimal):
            return f"{_DECIMAL_MARK}{item:f}"
        raise TypeError(type(item).__name__)

    return _DECIMAL_RE.sub(r"\1", json.dumps(value, default=decimal))


def signature(signature_key: str, body: bytes) -> str:
    """``X-ANET-Signature`` for ``body``: ``sha512=`` + upper-case hex HMAC-SHA512."""
    return "sha512=" + hmac.new(signature_key.encode(), body, hashlib.sha512).hexdigest().upper()


class FakeAuthorizeNet:
    """One merchant account's gateway: its credentials, profiles, transactions and batches."""

    def __init__(
        self,
        login: str = "fake-login",
        transaction_key: str = "fake-transaction-key",
        signature_key: str = "FAKESIGNATUREKEY",
        client_key: str = "fake-client-key",
        *,
        auto_settle: bool = True,
        hang_seconds: float = 3.0,
        state_file: str | None = None,
    ) -> None:
        self.login, self.transaction_key = login, transaction_key
        self.signature_key, self.client_key = signature_key, client_key
        self.auto_settle, self.hang_seconds = auto_settle, hang_seconds
        self.profiles: dict[str, Profile] = {}
        self.transactions: dict[str, Transaction] = {}
        self.batches: dict[str, Batch] = {}
        self.opaque: dict[str, tuple[str, str, str]] = {}  # dataValue -> (number, exp, code)
        self.requests: list[str] = []  # request types, in order
        #: Off, the reporting calls answer E00011 (access denied), as for a merchant who has
        #: not enabled the Transaction Details API.
        self.transaction_details_api = True
        self._issued = 0  # ids handed out so far (every kind counts from its own start)
        self._lock = threading.Lock()
        #: A JSON file the gateway's records are kept in (loaded now, written after every
        #: API call), so profiles the demo loader stored are still there for ``kassa serve``;
        #: None: memory only.
        self.state_file = state_file
        if state_file is not None and os.path.exists(state_file):
            self._load(state_file)

    @classmethod
    def from_env(cls) -> FakeAuthorizeNet:
        """Credentials from ``FAKE_ANET_API_LOGIN_ID``, ``FAKE_ANET_TRANSACTION_KEY``,
        ``FAKE_ANET_SIGNATURE_KEY`` and ``FAKE_ANET_CLIENT_KEY`` (else the defaults)."""
        defaults = cls()
        return cls(
            os.environ.get("FAKE_ANET_API_LOGIN_ID", defaults.login),
            os.environ.get("FAKE_ANET_TRANSACTION_KEY", defaults.transaction_key),
            os.environ.get("FAKE_ANET_SIGNATURE_KEY", defaults.signature_key),
            os.environ.get("FAKE_ANET_CLIENT_KEY", defaults.client_key),
        )

    @property
    def app(self) -> Starlette:
        """The gateway's routes; the API answers any origin, as the real one does for the
        Accept.js calls a customer's browser makes from the merchant's page."""
        return Starlette(
            routes=[
                Route("/xml/v1/request.api", self._endpoint, methods=["POST"]),
                Route("/v1/Accept.js", self._accept_js, methods=["GET"]),
                Route("/_fake/webhook", self._send_webhook, methods=["POST"]),
            ],
            middleware=[
                Middleware(
                    CORSMiddleware,
                    allow_origins=["*"],
                    allow_methods=["POST"],
                    allow_headers=["Content-Type"],
                )
            ],
        )

    def _id(self, start: int) -> str:
        self._issued += 1
        return str(start + self._issued)

    # --- state ------------------------------------------------------------------------------

    def _load(self, path: str) -> None:
        with open(path, encoding="utf-8") as file:
            state = json.load(file)
        self._issued = state["issued"]
        self.opaque = {value: (a, b, c) for value, (a, b, c) in state["opaque"].items()}
        for fields in state["profiles"]:
            payment_profiles = fields.pop("payment_profiles")
            profile = Profile(**fields)
            profile.payment_profiles = {
                key: PaymentProfile(**value) for key, value in payment_profiles.items()
            }
            self.profiles[profile.id] = profile
        for fields in state["transactions"]:
            transaction = Transaction(**fields)
            transaction.amount, transaction.refunded = (
                Decimal(fields["amount"]),
                Decimal(fields["refunded"]),
            )
            transaction.submitted = datetime.fromisoformat(fields["submitted"])
            self.transactions[transaction.trans_id] = transaction
        for fields in state["batches"]:
            batch = Batch(**fields)
            batch.settled = datetime.fromisoformat(fields["settled"])
            self.batches[batch.id] = batch

    def _persist(self) -> None:
        """Write the records to :attr:`state_file` (whole, then renamed into place)."""
        if self.state_file is None:
            return
        state = {
            "issued": self._issued,
            "opaque": self.opaque,
            "profiles": [asdict(p) for p in self.profiles.values()],
            "transactions": [asdict(t) for t in self.transactions.values()],
            "batches": [asdict(b) for b in self.batches.values()],
        }
        partial = f"{self.state_file}.partial"
        with open(partial, "w", encoding="utf-8") as file:
            json.dump(state, file, default=str)
        os.replace(partial, self.state_file)

    # --- HTTP -----------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        try:
            body = json.loads((await request.body()).decode("utf-8-sig"), parse_float=Decimal)
            ((request_type, fields),) = body.items()
        except (ValueError, AttributeError):
            return self._answer({}, _Refused("E00003", "Root element is missing."))
        self.requests.append(request_type)
        handler = getattr(self, "_" + request_type, None)
        try:
            if handler is None or not isinstance(fields, dict):
                raise _Refused("E00045", "The root node does not reference a valid XML namespace.")
            if request_type == "securePaymentContainerRequest":
                self._authenticate(fields, self.client_key, "clientKey")
            else:
                self._authenticate(fields, self.transaction_key, "transactionKey")
            self._check_limits(fields)
            if request_type in _REPORTING and not self.transaction_details_api:
                raise _Refused(
                    "E00011",
                    "Access denied. You do not have permissions to call the Transaction Details API.",
                )
            with self._lock:
                answer, hang = handler(fields)
                self._persist()
        except _Refused as refused:
            return self._answer(fields if isinstance(fields, dict) else {}, refused)
        if hang:
            await asyncio.sleep(self.hang_seconds)
        return self._answer(fields, None, answer)

    def _answer(
        self, fields: dict[str, Any], refused: _Refused | None, answer: dict[str, Any] | None = None
    ) -> Response:
        body: dict[str, Any] = dict(answer or {})
        if refused is not None:
            body.update(refused.extra)
        if fields.get("refId"):
            body["refId"] = fields["refId"]
        if refused is not None:
            body["messages"] = {
                "resultCode": "Error",
                "message": [{"code": refused.code, "text": refused.text}],
            }
        elif "messages" not in body:
            body["messages"] = {
                "resultCode": "Ok",
                "message": [{"code": "I00001", "text": "Successful."}],
            }
        return Response(BOM + dumps(body), media_type="application/json; charset=utf-8")

    def _authenticate(self, fields: dict[str, Any], secret: str, key_name: str) -> None:
        auth = fields.get("merchantAuthentication") or {}
        name_ok = hmac.compare_digest(str(auth.get("name", "")).encode(), self.login.encode())
        key_ok = hmac.compare_digest(str(auth.get(key_name, "")).encode(), secret.encode())
        if not (name_ok and key_ok):
            raise _Refused(
                "E00007", "User authentication failed due to invalid authentication values."
            )

    def _check_limits(self, value: Any) -> None:
        """E00003 for a field longer than the schema allows, naming the value as the real
        gateway's schema validator does."""
        if isinstance(value, dict):
            for key, item in value.items():
                limit = _LIMITS.get(key)
                if limit is not None and isinstance(item, str) and len(item) > limit:
                    raise _Refused(
                        "E00003",
                        f"The 'AnetApi/xml/v1/schema/AnetApiSchema.xsd:{key}' element is invalid - "
                        f"The value '{item}' is invalid according to its datatype 'String' - "
                        "The actual length is greater than the MaxLength value.",
                    )
                self._check_limits(item)
        elif isinstance(value, list):
            for item in value:
                self._check_limits(item)

    # --- customer profiles ------------------------------------------------------------------

    def _createCustomerProfileRequest(self, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        profile = fields.get("profile") or {}
        merchant_id = str(profile.get("merchantCustomerId", ""))
        description, email = str(profile.get("description", "")), str(profile.get("email", ""))
        if not (merchant_id or description or email):
            raise _Refused("E00041", "One or more fields in the profile must contain a value.")
        for existing in self.profiles.values():
            if (existing.merchant_customer_id, existing.description, existing.email) == (
                merchant_id,
                description,
                email,
            ) or (merchant_id and existing.merchant_customer_id == merchant_id):
                raise _Refused(
                    "E00039", f"A duplicate record with ID {existing.id} already exists."
                )
        created = Profile(self._id(500000000), merchant_id, description, email)
        self.profiles[created.id] = created
        return {
            "customerProfileId": created.id,
            "customerPaymentProfileIdList": [],
            "customerShippingAddressIdList": [],
            "validationDirectResponseList": [],
        }, False

    def _profile(self, profile_id: object) -> Profile:
        profile = self.profiles.get(str(profile_id))
        if profile is None:
            raise _Refused("E00040", "The record cannot be found.")
        return profile

    def _createCustomerPaymentProfileRequest(
        self, fields: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        profile = self._profile(fields.get("customerProfileId"))
        spec = fields.get("paymentProfile") or {}
        payment = spec.get("payment") or {}
        zip_code = str((spec.get("billTo") or {}).get("zip", ""))
        stored = self._payment_profile(payment, zip_code)
        for existing in profile.payment_profiles.values():
            if existing.fingerprint == stored.fingerprint:
                raise _Refused(
                    "E00039",
                    "A duplicate customer payment profile already exists.",
                    customerProfileId=profile.id,
                    customerPaymentProfileId=existing.id,
                )
        if fields.get("validationMode") == "liveMode" and stored.behaviour in {
            DECLINE,
            INSUFFICIENT,
        }:
            raise _Refused(
                "E00027",
                "This transaction has been declined.",
                validationDirectResponse="2,1,2,This transaction has been declined.",
            )
        profile.payment_profiles[stored.id] = stored
        return {"customerProfileId": profile.id, "customerPaymentProfileId": stored.id}, False

    def _payment_profile(self, payment: dict[str, Any], zip_code: str) -> PaymentProfile:
        """The stored form of ``payment``: no full card or account number is kept."""
        if "opaqueData" in payment:
            opaque = payment["opaqueData"] or {}
            found = self.opaque.pop(str(opaque.get("dataValue", "")), None)
            if found is None:
                raise _Refused("E00114", "Invalid OTS Token.")
            number, expiration, _ = found
            payment = {"creditCard": {"cardNumber": number, "expirationDate": expiration}}
        if "creditCard" in payment:
            card = payment["creditCard"] or {}
            number = str(card.get("cardNumber", ""))
            expiration = str(card.get("expirationDate", ""))
            if not (13 <= len(number) <= 16 and number.isdigit() and _luhn(number)):
                raise _Refused(
                    "E00003",
                    "The 'AnetApi/xml/v1/schema/AnetApiSchema.xsd:cardNumber' element is invalid - "
                    f"The value '{number}' is invalid according to its datatype.",
                )
            if not re.fullmatch(r"\d{4}-\d{2}", expiration):
                raise _Refused("E00003", "The 'expirationDate' element is invalid.")
            behaviour = FAKE_CARDS.get(number, APPROVE)
            if zip_code == DECLINE_ZIP:
                behaviour = DECLINE
            return PaymentProfile(
                self._id(600000000),
                "card",
                hashlib.sha256(f"{number}|{expiration}".encode()).hexdigest(),
                number[-4:],
                _card_type(number),
                expiration,
                behaviour,
                zip=zip_code,
            )
        if "bankAccount" in payment:
            bank = payment["bankAccount"] or {}
            routing, account = (
                str(bank.get("routingNumber", "")),
                str(bank.get("accountNumber", "")),
            )
            if not (len(routing) == 9 and routing.isdigit() and account.isdigit()):
                raise _Refused(
                    "E00003", "The 'routingNumber' or 'accountNumber' element is invalid."
                )
            return PaymentProfile(
                self._id(600000000),
                "bank",
                hashlib.sha256(f"{routing}|{account}".encode()).hexdigest(),
                account[-4:],
                "eCheck",
                "",
                APPROVE,
                account_type=str(bank.get("accountType", "checking")),
                routing_last4=routing[-4:],
                name_on_account=str(bank.get("nameOnAccount", "")),
            )
        raise _Refused("E00003", "The element 'payment' has incomplete content.")

    def _getCustomerPaymentProfileRequest(
        self, fields: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        profile = self._profile(fields.get("customerProfileId"))
        stored = profile.payment_profiles.get(str(fields.get("customerPaymentProfileId")))
        if stored is None:
            raise _Refused("E00040", "The record cannot be found.")
        unmask = str(fields.get("unmaskExpirationDate", "")).lower() == "true"
        if stored.kind == "card":
            payment = {
                "creditCard": {
                    "cardNumber": "XXXX" + stored.last4,
                    "expirationDate": stored.expiration if unmask else "XXXX",
                    "cardType": stored.card_type,
                }
            }
        else:
            payment = {
                "bankAccount": {
                    "accountType": stored.account_type,
                    "routingNumber": "XXXX" + stored.routing_last4,
                    "accountNumber": "XXXX" + stored.last4,
                    "nameOnAccount": stored.name_on_account,
                    "echeckType": "WEB",
                }
            }
        return {
            "paymentProfile": {
                "customerProfileId": profile.id,
                "customerPaymentProfileId": stored.id,
                "payment": payment,
            }
        }, False

    def _securePaymentContainerRequest(self, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Accept.js's call: card data in, a one-time ``opaqueData`` token out."""
        token = ((fields.get("data") or {}).get("token")) or {}
        number = str(token.get("cardNumber", ""))
        expiration = str(token.get("expirationDate", ""))  # MMYY
        if not (13 <= len(number) <= 16 and number.isdigit() and _luhn(number)):
            raise _Refused("E_WC_05", "Please provide valid credit card number.")
        if not re.fullmatch(r"\d{4}", expiration):
            raise _Refused("E_WC_08", "Expiration date must be in the future.")
        value = secrets.token_urlsafe(32)
        self.opaque[value] = (
            number,
            f"20{expiration[2:]}-{expiration[:2]}",
            str(token.get("cardCode", "")),
        )
        return {
            "opaqueData": {"dataDescriptor": "COMMON.ACCEPT.INAPP.PAYMENT", "dataValue": value}
        }, False

    # --- transactions ---------------------------------------------------------------------

    def _createTransactionRequest(self, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        spec = fields.get("transactionRequest") or {}
        kind = spec.get("transactionType")
        if kind == "authCaptureTransaction":
            return self._auth_capture(fields, spec)
        if kind == "refundTransaction":
            return self._refund(fields, spec), False
        if kind == "voidTransaction":
            return self._void(spec), False
        raise _Refused("E00003", f"The transactionType '{kind}' is not supported by the fake.")

    @staticmethod
    def _amount(spec: dict[str, Any]) -> Decimal:
        try:
            amount = Decimal(str(spec.get("amount")))
        except InvalidOperation:
            amount = Decimal(0)
        if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
            raise _unsuccessful("5", "A valid amount is required.")
        return amount

    def _auth_capture(
        self, fields: dict[str, Any], spec: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        amount = self._amount(spec)
        profile_spec = spec.get("profile") or {}
        profile = self._profile(profile_spec.get("customerProfileId"))
        payment_profile_id = str((profile_spec.get("paymentProfile") or {}).get("paymentProfileId"))
        stored = profile.payment_profiles.get(payment_profile_id)
        if stored is None:
            raise _Refused("E00040", "The record cannot be found.")
        order = spec.get("order") or {}
        invoice = str(order.get("invoiceNumber", ""))
        window = self._duplicate_window(spec)
        now = datetime.now(UTC)
        for earlier in self.transactions.values():
            if (
                earlier.kind == "authCaptureTransaction"
                and earlier.payment_profile_id == stored.id
                and earlier.amount == amount
                and earlier.invoice_number == invoice
                and now - earlier.submitted < timedelta(seconds=window)
            ):
                raise _unsuccessful(
                    "11", "A duplicate transaction has been submitted.", earlier.trans_id
                )
        behaviour = stored.behaviour
        if stored.kind == "bank" and amount > ECHECK_APPROVAL_LIMIT:
            behaviour = DECLINE
        code, reason, text, status = _OUTCOMES[behaviour]
        transaction = Transaction(
            trans_id=self._id(40000000000),
            kind="authCaptureTransaction",
            ref_id=str(fields.get("refId", "")),
            invoice_number=invoice,
            description=str(order.get("description", "")),
            amount=amount,
            response_code=code,
            reason_code=reason,
            reason_text=text,
            status=status,
            submitted=now,
            profile_id=profile.id,
            payment_profile_id=stored.id,
            account_type=stored.card_type,
            account_number="XXXX" + stored.last4,
            auth_code=secrets.token_hex(3).upper() if code in {"1", "4"} else "000000",
        )
        self.transactions[transaction.trans_id] = transaction
        if self.auto_settle and code == "1":
            self.settle_unlocked()
        response = _response(code, reason, text, transaction.trans_id)
        response.update(
            authCode=transaction.auth_code,
            accountNumber=transaction.account_number,
            accountType=transaction.account_type,
            profile={"customerProfileId": profile.id, "customerPaymentProfileId": stored.id},
        )
        if code == "1" or code == "4":
            return {"transactionResponse": response}, behaviour == HANG
        raise _Refused("E00027", "The transaction was unsuccessful.", transactionResponse=response)

    @staticmethod
    def _duplicate_window(spec: dict[str, Any]) -> int:
        settings = (spec.get("transactionSettings") or {}).get("setting") or []
        if isinstance(settings, dict):
            settings = [settings]
        for setting in settings:
            if setting.get("settingName") == "duplicateWindow":
                return int(str(setting.get("settingValue", "120")))
        return 120

    def _refund(self, fields: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        amount = self._amount(spec)
        original = self.transactions.get(str(spec.get("refTransId", "")))
        if original is None or original.kind != "authCaptureTransaction":
            raise _unsuccessful("16", "The transaction cannot be found.")
        profile_spec = spec.get("profile") or {}
        payment_profile_id = str(
            (profile_spec.get("paymentProfile") or {}).get("paymentProfileId", "")
        )
        card = (spec.get("payment") or {}).get("creditCard") or {}
        if not (
            (str(profile_spec.get("customerProfileId")), payment_profile_id)
            == (original.profile_id, original.payment_profile_id)
            or str(card.get("cardNumber", ""))[-4:] == original.account_number[-4:]
        ):
            raise _unsuccessful("54", _NOT_CREDITABLE)
        if original.status != "settledSuccessfully":
            raise _unsuccessful("54", _NOT_CREDITABLE)
        if original.refunded + amount > original.amount:
            raise _unsuccessful(
                "55",
                "The sum of credits against the referenced transaction would exceed "
                "original debit amount.",
            )
        original.refunded += amount
        order = spec.get("order") or {}
        refund = Transaction(
            trans_id=self._id(40000000000),
            kind="refundTransaction",
            ref_id=str(fields.get("refId", "")),
            invoice_number=str(order.get("invoiceNumber", "")),
            description=str(order.get("description", "")),
            amount=amount,
            response_code="1",
            reason_code="1",
            reason_text="This transaction has been approved.",
            status="refundPendingSettlement",
            submitted=datetime.now(UTC),
            profile_id=original.profile_id,
            payment_profile_id=original.payment_profile_id,
            account_type=original.account_type,
            account_number=original.account_number,
            auth_code="",
            ref_trans_id=original.trans_id,
        )
        self.transactions[refund.trans_id] = refund
        if self.auto_settle:
            self.settle_unlocked()
        return {
            "transactionResponse": _response(
                "1", "1", "This transaction has been approved.", refund.trans_id
            )
        }

    def _void(self, spec: dict[str, Any]) -> dict[str, Any]:
        original = self.transactions.get(str(spec.get("refTransId", "")))
        if original is None or original.status not in {
            "capturedPendingSettlement",
            "FDSPendingReview",
            "voided",
        }:
            raise _unsuccessful("16", "The transaction cannot be found.")
        original.status = "voided"
        return {
            "transactionResponse": _response(
                "1", "1", "This transaction has been approved.", original.trans_id
            )
        }

    def review(self, trans_id: str, approve: bool) -> None:
        """The merchant's decision on a transaction held for review (response code 4):
        approved, it is captured; declined, it is not."""
        with self._lock:
            held = self.transactions[trans_id]
            if approve:
                held.response_code, held.reason_code, held.reason_text, held.status = _OUTCOMES[
                    APPROVE
                ]
            else:
                held.response_code, held.reason_code = "2", "254"
                held.reason_text, held.status = (
                    "The transaction was declined after manual review.",
                    "declined",
                )
            if self.auto_settle:
                self.settle_unlocked()

    def settle(self) -> str | None:
        """Close a settlement batch with every transaction not yet in one; its id."""
        with self._lock:
            return self.settle_unlocked()

    def settle_unlocked(self) -> str | None:
        pending = [
            t
            for t in self.transactions.values()
            if t.batch_id is None and t.status != "FDSPendingReview"
        ]
        if not pending:
            return None
        batch = Batch(self._id(9000000), datetime.now(UTC))
        for transaction in pending:
            transaction.batch_id = batch.id
            transaction.status = {
                "capturedPendingSettlement": "settledSuccessfully",
                "refundPendingSettlement": "refundSettledSuccessfully",
            }.get(transaction.status, transaction.status)
            batch.transactions.append(transaction.trans_id)
        self.batches[batch.id] = batch
        return batch.id

    # --- reporting ------------------------------------------------------------------------

    def _summary(self, transaction: Transaction) -> dict[str, Any]:
        return {
            "transId": transaction.trans_id,
            "submitTimeUTC": _iso(transaction.submitted),
            "submitTimeLocal": _iso(transaction.submitted)[:-1],
            "transactionStatus": transaction.status,
            "invoiceNumber": transaction.invoice_number,
            "accountType": transaction.account_type,
            "accountNumber": transaction.account_number,
            "settleAmount": transaction.amount,
            "marketType": "eCommerce",
            "product": "Card Not Present",
            "profile": {
                "customerProfileId": transaction.profile_id,
                "customerPaymentProfileId": transaction.payment_profile_id,
            },
        }

    def _listing(
        self, fields: dict[str, Any], transactions: list[Transaction]
    ) -> tuple[dict[str, Any], bool]:
        sorting = fields.get("sorting") or {}
        descending = str(sorting.get("orderDescending", "false")).lower() == "true"
        ordered = sorted(
            transactions, key=lambda t: (t.submitted, int(t.trans_id)), reverse=descending
        )
        paging = fields.get("paging") or {}
        limit = int(str(paging.get("limit", 1000)))
        offset = int(str(paging.get("offset", 1)))
        page = ordered[(offset - 1) * limit : offset * limit]
        if not ordered:
            return {
                "messages": {
                    "resultCode": "Ok",
                    "message": [{"code": "I00004", "text": "No records found."}],
                }
            }, False
        return {
            "transactions": [self._summary(t) for t in page],
            "totalNumInResultSet": len(ordered),
        }, False

    def _getTransactionListForCustomerRequest(
        self, fields: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        profile = self._profile(fields.get("customerProfileId"))
        payment_profile_id = fields.get("customerPaymentProfileId")
        return self._listing(
            fields,
            [
                t
                for t in self.transactions.values()
                if t.profile_id == profile.id
                and (payment_profile_id is None or t.payment_profile_id == str(payment_profile_id))
            ],
        )

    def _getUnsettledTransactionListRequest(
        self, fields: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        return self._listing(fields, [t for t in self.transactions.values() if t.batch_id is None])

    def _getTransactionListRequest(self, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        batch = self.batches.get(str(fields.get("batchId")))
        if batch is None:
            raise _Refused("E00040", "The record cannot be found.")
        return self._listing(fields, [self.transactions[t] for t in batch.transactions])

    def _getSettledBatchListRequest(self, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        def moment(name: str, default: datetime) -> datetime:
            text = str(fields.get(name) or "")
            return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else default

        now = datetime.now(UTC)
        first = moment("firstSettlementDate", now - timedelta(days=1))
        last = moment("lastSettlementDate", now)
        if last - first > timedelta(days=31):
            raise _Refused("E00003", "The date range cannot exceed 31 days.")
        batches = [
            b for b in self.batches.values() if first <= b.settled <= last + timedelta(seconds=1)
        ]
        if not batches:
            return {
                "messages": {
                    "resultCode": "Ok",
                    "message": [{"code": "I00004", "text": "No records found."}],
                }
            }, False
        return {
            "batchList": [
                {
                    "batchId": b.id,
                    "settlementTimeUTC": _iso(b.settled),
                    "settlementState": "settledSuccessfully",
                    "paymentMethod": "creditCard",
                    "marketType": "eCommerce",
                    "product": "Card Not Present",
                }
                for b in batches
            ]
        }, False

    def _getTransactionDetailsRequest(self, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        transaction = self.transactions.get(str(fields.get("transId")))
        if transaction is None:
            raise _Refused("E00040", "The record cannot be found.")
        details: dict[str, Any] = {
            "transId": transaction.trans_id,
            "submitTimeUTC": _iso(transaction.submitted),
            "transactionType": transaction.kind,
            "transactionStatus": transaction.status,
            "responseCode": int(transaction.response_code),
            "responseReasonCode": int(transaction.reason_code),
            "responseReasonDescription": transaction.reason_text,
            "authCode": transaction.auth_code,
            "order": {
                "invoiceNumber": transaction.invoice_number,
                "description": transaction.description,
            },
            "authAmount": transaction.amount,
            "settleAmount": transaction.amount,
            "payment": {
                "creditCard": {
                    "cardNumber": transaction.account_number,
                    "expirationDate": "XXXX",
                    "cardType": transaction.account_type,
                }
            },
            "profile": {
                "customerProfileId": transaction.profile_id,
                "customerPaymentProfileId": transaction.payment_profile_id,
            },
        }
        if transaction.ref_trans_id:
            details["refTransId"] = transaction.ref_trans_id
        if transaction.batch_id:
            details["batch"] = {
                "batchId": transaction.batch_id,
                "settlementState": "settledSuccessfully",
            }
        return {"transaction": details}, False

    # --- webhooks and Accept.js --------------------------------------------------------------

    def webhook(
        self,
        trans_id: str,
        event_type: str,
        *,
        notification_id: str | None = None,
        amount: Decimal | None = None,
        merchant_reference: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The webhook Authorize.Net sends about ``trans_id`` and its headers, signed.

        ``merchant_reference`` overrides the ``merchantReferenceId`` (``""`` leaves it out, as
        for a void made in the Merchant Interface); ``amount`` overrides ``authAmount``.
        """
        transaction = self.transactions[trans_id]
        payload: dict[str, Any] = {
            "responseCode": int(transaction.response_code),
            "authCode": transaction.auth_code,
            "avsResponse": "Y",
            "authAmount": transaction.amount if amount is None else amount,
        }
        reference = transaction.ref_id if merchant_reference is None else merchant_reference
        if reference:
            payload["merchantReferenceId"] = reference
            payload["invoiceNumber"] = transaction.invoice_number
        payload.update(entityName="transaction", id=transaction.trans_id)
        event = {
            "notificationId": notification_id or str(uuid.uuid4()),
            "eventType": event_type,
            "eventDate": _iso(datetime.now(UTC)),
            "webhookId": "fake-webhook",
            "payload": payload,
        }
        body = dumps(event).encode()
        return body, {
            "content-type": "application/json",
            "x-anet-signature": signature(self.signature_key, body),
        }

    async def _send_webhook(self, request: Request) -> Response:
        spec = await request.json()
        try:
            body, headers = self.webhook(str(spec["transId"]), str(spec["eventType"]))
        except KeyError:
            return JSONResponse({"error": "unknown transaction"}, status_code=404)
        async with httpx.AsyncClient(timeout=10) as client:
            delivered = await client.post(str(spec["url"]), content=body, headers=headers)
        return JSONResponse({"status": delivered.status_code})

    async def _accept_js(self, request: Request) -> Response:
        """A small Accept.js: ``Accept.dispatchData(secureData, callback)`` posts the card to
        this fake's securePaymentContainerRequest and hands back ``opaqueData``."""
        root = str(request.scope.get("root_path", "")).rstrip("/")  # a Mount's prefix included
        endpoint = f"{request.url.scheme}://{request.url.netloc}{root}/xml/v1/request.api"
        script = _ACCEPT_JS.replace("__ENDPOINT__", json.dumps(endpoint))
        return Response(script, media_type="application/javascript")


_ACCEPT_JS = """window.Accept = {
  dispatchData: function (secureData, callback) {
    var card = secureData.cardData || {};
    var body = {securePaymentContainerRequest: {
      merchantAuthentication: {name: secureData.authData.apiLoginID, clientKey: secureData.authData.clientKey},
      data: {type: "TOKEN", id: String(Date.now()), token: {
        cardNumber: card.cardNumber, expirationDate: card.month + card.year.slice(-2), cardCode: card.cardCode}}}};
    fetch(__ENDPOINT__, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)})
      .then(function (r) { return r.text(); })
      .then(function (text) { callback(JSON.parse(text.replace(/^\\ufeff/, ""))); });
  }
};
"""


_NOT_CREDITABLE = "The referenced transaction does not meet the criteria for issuing a credit."


def _unsuccessful(reason: str, text: str, trans_id: str = "0") -> _Refused:
    """E00027 with a ``transactionResponse`` in error (response code 3) for ``reason``."""
    return _Refused(
        "E00027",
        "The transaction was unsuccessful.",
        transactionResponse=_response("3", reason, text, trans_id),
    )


def _response(code: str, reason: str, text: str, trans_id: str) -> dict[str, Any]:
    """A ``transactionResponse``: ``messages`` when approved or held, ``errors`` otherwise."""
    response: dict[str, Any] = {
        "responseCode": code,
        "authCode": "",
        "avsResultCode": "Y" if code in {"1", "4"} else "P",
        "cvvResultCode": "P",
        "transId": trans_id,
        "refTransID": "",
        "transHash": "",
        "testRequest": "0",
        "accountNumber": "",
        "accountType": "",
    }
    if code in {"1", "4"}:
        response["messages"] = [{"code": reason, "description": text}]
    else:
        response["errors"] = [{"errorCode": reason, "errorText": text}]
    return response


#: For ``uvicorn processors.fakes.authorize_net:app``.
fake = FakeAuthorizeNet.from_env()
app = fake.app


def serve(port: int = 8765, host: str = "127.0.0.1") -> None:
    """Run the fake (credentials from the environment) until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning")
