"""What a payment system can do, beyond charging a stored card: the platform's interface.

:mod:`billing.processing` is the card contract (tokenize, charge, look up, refund).  Real
payment systems differ in how money arrives — a stored token charged server to server, a page
the customer is sent to, a cash slip, a terminal network pushing payments in, an
out-of-process module answering later — and most of them tell kassa what happened by calling
it back.  This module names those differences so billing can ask a processor what it supports
instead of knowing processors by name:

* :class:`Capability` — the flows a processor declares in its ``capabilities`` attribute; the
  portal offers only what the customer's owner has configured *and* the processor can do.
* :class:`MethodKind` — the payment methods a processor account offers (card brands, e-check,
  direct debit).
* :class:`ProcessorConfig` — what a processor account hands its processor: credentials
  (decrypted only in memory), test or live mode, and where its API is (so tests and the demo
  point an adapter at its local fake).
* :class:`IncomingRequest` → :class:`Notification` — a callback as received and what it
  means.  :class:`NotifiedProcessor.parse_notification` verifies the signature *before*
  reading anything else and raises :class:`ForgedNotification` (answered 401, nothing
  written); billing applies a notification once per ``event_id``.
* :class:`BankAccountDetails` — an account for e-check, as sensitive as a card number and
  masked the same way.

Nothing here imports a processor: the modules in ``processors`` implement these protocols.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from billing.processing import (
    CardDetails,
    CardProcessor,
    CardToken,
    ChargeRefused,
    ChargeResult,
    ProcessorError,
)


class Capability(StrEnum):
    """A flow a processor supports."""

    #: Charge a stored token server to server, with or without the customer (recurring).
    TOKEN_CHARGE = "TOKEN_CHARGE"
    #: Cards are tokenized in the browser by the processor's script (Stripe.js, Accept.js), so
    #: the number never reaches kassa; see :class:`ClientTokenization`.
    CLIENT_TOKENIZATION = "CLIENT_TOKENIZATION"
    #: Bank accounts (e-check) can be stored and charged like cards.
    BANK_ACCOUNT = "BANK_ACCOUNT"
    #: The customer is sent to the system's page and the payment completes later.
    REDIRECT = "REDIRECT"
    #: A slip or voucher the customer pays in cash at a store.
    VOUCHER = "VOUCHER"
    #: Payments pushed in by a network (cash terminals) without kassa asking.
    INBOUND = "INBOUND"
    #: Results arrive asynchronously from an out-of-process module.
    ASYNC_RESULT = "ASYNC_RESULT"
    #: Incoming notifications can be parsed and verified (:class:`NotifiedProcessor`).
    NOTIFICATIONS = "NOTIFICATIONS"
    #: A payment's status can be asked for (``lookup``) when no notification came.
    STATUS_POLL = "STATUS_POLL"
    #: Completed payments can be refunded through the processor.
    REFUND = "REFUND"
    #: A direct-debit gateway (Debitsuccess): kassa on-boards the customer, submits one-off
    #: schedules when money is due and polls their statuses by date range
    #: (:class:`ScheduleGateway`, :mod:`billing.gateway_billing`).
    SCHEDULES = "SCHEDULES"


class MethodKind(StrEnum):
    """A payment method a processor account offers its customers."""

    VISA = "VISA"
    MASTERCARD = "MASTERCARD"
    AMEX = "AMEX"
    DISCOVER = "DISCOVER"
    MAESTRO = "MAESTRO"
    ECHECK = "ECHECK"
    DIRECT_DEBIT = "DIRECT_DEBIT"


#: The method kind of each card brand :func:`billing.processing.card_brand` names.
CARD_BRAND_KINDS: Mapping[str, MethodKind] = {
    "visa": MethodKind.VISA,
    "mastercard": MethodKind.MASTERCARD,
    "amex": MethodKind.AMEX,
    "discover": MethodKind.DISCOVER,
    "maestro": MethodKind.MAESTRO,
}


class Mode(StrEnum):
    """Whether a processor account moves real money."""

    TEST = "TEST"
    LIVE = "LIVE"


@dataclass(frozen=True, slots=True, repr=False)
class ProcessorConfig:
    """What a processor account gives its processor when one is made for it.

    ``credentials`` are the account's secrets (API keys, transaction keys, signing secrets),
    decrypted only for the call; ``repr`` names the keys and never the values.
    ``base_url`` overrides where the processor's API lives (its local fake in tests and the
    demo); ``None`` means the processor's own address for ``mode``.  ``account_id`` is the
    processor account's id, used to build callback addresses (``/callbacks/{account_id}``).
    """

    credentials: Mapping[str, str] = field(default_factory=dict)
    mode: Mode = Mode.TEST
    base_url: str | None = None
    account_id: int | None = None
    public_url: str | None = None

    def __repr__(self) -> str:
        return (
            f"ProcessorConfig(credentials=<{', '.join(sorted(self.credentials))}>, "
            f"mode={self.mode.value}, base_url={self.base_url!r}, account_id={self.account_id})"
        )

    def secret(self, name: str) -> str:
        """The credential ``name``; a missing one is the operator's configuration error."""
        value = self.credentials.get(name)
        if not value:
            raise ProcessorError("MISSING_CREDENTIAL", f"the processor account needs {name!r}")
        return value


@dataclass(frozen=True, slots=True)
class Payer:
    """Who a payment method is stored for: a processor keeps its own customer record (Stripe
    Customer, Authorize.Net customer profile) under kassa's customer id."""

    customer_id: int
    name: str
    email: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class BankAccountDetails:
    """A bank account for e-check as the customer typed it: sensitive, handed to a processor
    and dropped, exactly like :class:`~billing.processing.CardDetails`."""

    routing_number: str
    account_number: str
    holder: str
    account_type: str = "checking"

    def __repr__(self) -> str:
        return (
            f"BankAccountDetails(routing_number='***', account_number="
            f"'****{self.account_number[-4:]}', holder={self.holder!r}, "
            f"account_type={self.account_type!r})"
        )


@dataclass(frozen=True, slots=True)
class ClientTokenization:
    """How the portal's card form tokenizes in the browser: the script to load (configurable,
    so tests point it at the fake) and the public, non-secret settings it needs."""

    script_url: str
    public_settings: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    """A callback as it arrived: nothing in it is trusted until the processor verified it.

    ``headers`` have lower-case names; ``body`` is the raw bytes the signature covers.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)


class NotificationKind(StrEnum):
    """What a verified notification says happened to a payment."""

    #: The money arrived: a PENDING payment becomes COMPLETED.
    SUCCEEDED = "SUCCEEDED"
    #: The payment failed or was canceled: PENDING becomes FAILED.
    FAILED = "FAILED"
    #: A completed payment was taken back (chargeback, return): its credit is reversed.
    REVERSED = "REVERSED"
    #: A refund kassa asked for was made.
    REFUNDED = "REFUNDED"
    #: Verified, but about nothing kassa tracks (acknowledged and otherwise ignored).
    IGNORED = "IGNORED"
    #: An unsigned "something changed" (Remita, Payarena): it proves nothing, so billing asks
    #: the system for the payment's status (``redirect_status``) before anything counts.
    CHECK_STATUS = "CHECK_STATUS"
    #: The system asks, before taking the customer's cash, whether kassa accepts the payment
    #: (PayNearMe's authorization call): billing decides and answers through
    #: :meth:`AuthorizingProcessor.answer_authorization`.
    AUTHORIZATION = "AUTHORIZATION"


@dataclass(frozen=True, slots=True)
class Notification:
    """A verified notification: which payment, what happened, and how much.

    ``event_id`` is the processor's own id for the event, the key it is applied once under.
    The payment is found by ``idempotency_key`` (the key kassa sent, e.g. ``attempt-12``) or
    else by ``processor_reference``.  ``amount``/``currency`` are what the processor says
    moved; one that differs from the payment's is refused and flagged, never credited.
    """

    event_id: str
    kind: NotificationKind
    processor_reference: str | None = None
    idempotency_key: str | None = None
    amount: int | None = None
    currency: str | None = None
    decline_code: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class NotificationReply:
    """The answer a processor expects to its callback (a status, a body, its content type)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"


class ForgedNotification(ProcessorError):
    """The callback's signature is missing, wrong or too old: answered 401, nothing written."""

    def __init__(self, message: str = "the notification's signature does not verify") -> None:
        super().__init__("FORGED_NOTIFICATION", message)


@runtime_checkable
class NotifiedProcessor(Protocol):
    """A processor that calls kassa back (:attr:`Capability.NOTIFICATIONS`)."""

    def parse_notification(self, request: IncomingRequest) -> Notification:
        """Verify ``request``'s signature, then read it.

        Raises :class:`ForgedNotification` before looking at the content when the signature
        does not verify (or is older than the processor's tolerance).
        """
        ...

    def acknowledge(self, notification: Notification) -> NotificationReply:
        """The reply the processor expects once the notification was applied (or was a
        duplicate, which is acknowledged the same way so the processor stops resending)."""
        ...


@runtime_checkable
class ProfileProcessor(Protocol):
    """A processor that keeps its own customer record and stores methods under it (Stripe,
    Authorize.Net CIM): cards and bank accounts are tokenized for a :class:`Payer`."""

    async def tokenize_for(self, card: CardDetails, payer: Payer) -> CardToken:
        """Like ``tokenize``, for ``payer``'s processor-side customer (made on first use)."""
        ...

    async def store_bank_account(self, account: BankAccountDetails, payer: Payer) -> CardToken:
        """Store an e-check account; the token's ``brand`` is ``"echeck"`` and ``last4`` the
        account number's last four digits (expiry 0/0: bank accounts do not expire)."""
        ...

    async def adopt_client_token(self, client_token: str, payer: Payer) -> CardToken:
        """Keep a card the browser tokenized (:attr:`Capability.CLIENT_TOKENIZATION`)."""
        ...

    def client_tokenization(self) -> ClientTokenization | None:
        """The browser-side tokenization settings, or None when the processor has none."""
        ...


@dataclass(frozen=True, slots=True)
class RedirectRequest:
    """A payment the customer completes on the system's own page (:attr:`Capability.REDIRECT`).

    ``idempotency_key`` is the payment's key at kassa (``payment-<id>``): a second start under
    it must not open a second payment at the system.  ``return_url`` is where the system sends
    the customer back (never trusted by itself: the outcome comes from a verified notification
    or a status query), ``cancel_url`` where it sends them when they give up, ``notify_url``
    kassa's ``/callbacks/{account}`` for systems that take it per payment.  ``phone`` is the
    payer's, for systems that require one (Remita).
    """

    idempotency_key: str
    amount: int
    currency: str
    description: str
    payer: Payer
    return_url: str
    cancel_url: str
    notify_url: str
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class RedirectStart:
    """Where to send the customer, and the system's id for the payment.

    ``form_fields`` is set for systems that are entered by a form POST to ``url`` (the portal
    renders an auto-submitting form); otherwise the customer is sent to ``url`` with a GET.
    ``expires_at`` is when an abandoned payment stops being payable (None: kassa's default).
    """

    url: str
    external_id: str
    form_fields: Mapping[str, str] | None = None
    expires_at: datetime | None = None


@runtime_checkable
class RedirectProcessor(Protocol):
    """A system the customer is sent to (PayPal, Skrill, Payarena, Remita): no stored method,
    no recurring charge; the outcome is confirmed by notification or status query."""

    async def start_redirect(self, request: RedirectRequest) -> RedirectStart:
        """Open the payment at the system; raises :class:`~billing.errors.UserError` for what
        the customer must fix first (a missing phone, an amount below the minimum) before any
        call, and :class:`~billing.processing.ProcessorError` when the system refuses."""
        ...

    async def complete_return(self, start: RedirectStart, query: Mapping[str, str]) -> ChargeResult:
        """What became of the payment when the customer came back with ``query``.

        The query is only a hint: the result comes from the system (PayPal captures the
        approved order; the others are asked for the status).  ``UNKNOWN`` means still
        pending; ``DECLINED`` canceled or failed.
        """
        ...

    async def redirect_status(self, start: RedirectStart) -> ChargeResult:
        """The payment's status at the system, for expiry and reconciliation."""
        ...


@runtime_checkable
class CheckedRedirect(Protocol):
    """A redirect system that needs something of the payer or the amount (Remita: a phone,
    an e-mail, 50 NGN) and can say so without a call, so billing refuses before it writes."""

    def check_redirect(self, request: RedirectRequest) -> None:
        """Raise :class:`~billing.errors.UserError` for what the customer must fix first."""
        ...


@runtime_checkable
class AuthorizingProcessor(Protocol):
    """A system that asks kassa before it takes a payment (:attr:`NotificationKind.AUTHORIZATION`)."""

    def answer_authorization(
        self, notification: Notification, accepted: bool, reason: str = ""
    ) -> NotificationReply:
        """The reply that accepts or refuses the payment ``notification`` asks about."""
        ...


@dataclass(frozen=True, slots=True)
class Slip:
    """A standing cash slip (:attr:`Capability.VOUCHER`): printed once, paid at a store any
    number of times.  ``payment_identifier`` is what the store scans (the barcode's content)
    and what callbacks name; ``external_id`` the system's own id for the order."""

    payment_identifier: str
    external_id: str
    #: Where the customer can pay (store chains), as the system lists them.
    where_to_pay: tuple[str, ...] = ()
    #: The system's own printable slip, if it hosts one.
    slip_url: str | None = None


@runtime_checkable
class VoucherProcessor(Protocol):
    """A system that hands the customer a slip to pay in cash (PayNearMe)."""

    async def create_slip(self, payer: Payer, currency: str, reference: str) -> Slip:
        """Open a standing order for ``payer``; ``reference`` is kassa's (``slip-<customer>``),
        so asking again returns the same order instead of a second one."""
        ...


def reject_mismatch(notification: Notification, amount: int, currency: str) -> str | None:
    """Why ``notification`` may not settle a payment of ``amount`` ``currency``, or None.

    A notification that names no amount is trusted to mean the payment's own (processors that
    only send a status); one that names a different amount or currency is refused.
    """
    if notification.currency is not None and notification.currency.upper() != currency:
        return f"the notification is in {notification.currency}, the payment in {currency}"
    if notification.amount is not None and notification.amount != amount:
        return f"the notification is for {notification.amount}, the payment for {amount}"
    return None


@dataclass(frozen=True, slots=True)
class GatewayAccount:
    """A customer's account at a direct-debit gateway: the gateway's customer id, the
    account id its API addresses (kept as the payment method's token) and the account
    reference it shows people."""

    customer_id: str
    account_id: str
    account_reference: str


@dataclass(frozen=True, slots=True)
class PaymentForm:
    """The gateway's hosted form for entering a payment method, usable once until
    ``valid_to`` (minutes, not hours)."""

    url: str
    valid_to: datetime


@dataclass(frozen=True, slots=True)
class GatewayMethod:
    """What the gateway says of the account's payment method: never more than its kind
    (``bank_account`` or ``card``) and last four digits."""

    kind: str
    last4: str


@dataclass(frozen=True, slots=True)
class ScheduleStatus:
    """One schedule's status as a status poll reported it.  ``status`` is the gateway's own
    name (Unattempted, Pending, Retry, InRetry, Failed, Cleared, Settled, Unbillable);
    ``external_identifier`` is kassa's key the schedule was submitted under."""

    external_identifier: str
    schedule_id: str
    status: str
    status_date: date
    amount: int
    error_code: str | None = None


class ScheduleRefused(ChargeRefused):
    """The gateway refused a schedule at submission because the account cannot be debited
    (a payment stop: a lost or stolen card, a closed account, no authority).  Nothing more is
    submitted for the customer until the payment method is replaced."""


@runtime_checkable
class ScheduleGateway(Protocol):
    """A direct-debit gateway (:attr:`Capability.SCHEDULES`).  Its ``charge`` submits a
    one-off schedule for ``request.due_date`` under ``request.idempotency_key`` to the account
    in ``request.token`` and answers :attr:`~billing.processing.ChargeOutcome.SUBMITTED`
    (or raises :class:`ScheduleRefused`); its ``lookup`` finds a schedule by that key."""

    async def enroll(self, payer: Payer, starts: date) -> GatewayAccount:
        """Create the customer and its account at the gateway, the account's external
        reference being kassa's customer id."""
        ...

    async def payment_form(self, account_id: str, return_url: str) -> PaymentForm:
        """A one-time token's hosted form where the customer enters a payment method and is
        sent back to ``return_url``."""
        ...

    async def payment_method(self, account_id: str) -> GatewayMethod | None:
        """The account's payment method as the gateway holds it; None when it has none."""
        ...

    async def payment_statuses(self, start: date, end: date) -> list[ScheduleStatus]:
        """Every schedule whose status changed between ``start`` and ``end`` (at most
        :data:`MAX_POLL_DAYS` apart), with its current status."""
        ...


#: The longest date range a status poll may ask for (Debitsuccess: within 31 days; 30 here).
MAX_POLL_DAYS = 30


@dataclass(frozen=True, slots=True)
class ProcessorInfo:
    """What an installed processor declares: its registry name, the flows it supports and
    the payment methods it can take.  Billing checks a processor account against it (an
    e-check offer needs :attr:`Capability.BANK_ACCOUNT`) without importing the processor."""

    name: str
    capabilities: frozenset[Capability]
    method_kinds: frozenset[MethodKind]


class ProcessorCatalog(Protocol):
    """Where billing finds installed processors by name and makes one for a processor
    account.  Like :class:`billing.processing.ProcessorDirectory` it is handed over once at
    start-up (:func:`use_catalog`), because billing cannot import ``processors``."""

    def describe(self, name: str) -> ProcessorInfo | None:
        """What processor ``name`` declares; None when no such processor is installed (or it
        cannot be loaded)."""
        ...

    def installed(self) -> list[ProcessorInfo]:
        """Every processor that loads, by name."""
        ...

    def processor_for(self, name: str, config: ProcessorConfig) -> CardProcessor:
        """A processor ``name`` configured for one processor account."""
        ...


_catalog: ProcessorCatalog | None = None


def use_catalog(catalog: ProcessorCatalog) -> None:
    """Make ``catalog`` the one billing asks (once per process, beside ``use_directory``)."""
    global _catalog
    _catalog = catalog


def collects_by_schedule(processor: str) -> bool:
    """Whether ``processor`` is a direct-debit gateway (:attr:`Capability.SCHEDULES`): its
    payments are DIRECT_DEBIT one-off schedules settled by a status poll.  False when no
    catalog was handed over (a process that only charges the default processor)."""
    info = _catalog.describe(processor) if _catalog is not None else None
    return info is not None and Capability.SCHEDULES in info.capabilities


def catalog() -> ProcessorCatalog:
    """The catalog the entry point handed over."""
    if _catalog is None:
        raise RuntimeError("no processor catalog: the entry point must call use_catalog")
    return _catalog


__all__ = [
    "CARD_BRAND_KINDS",
    "MAX_POLL_DAYS",
    "AuthorizingProcessor",
    "BankAccountDetails",
    "Capability",
    "ClientTokenization",
    "ForgedNotification",
    "GatewayAccount",
    "GatewayMethod",
    "IncomingRequest",
    "MethodKind",
    "Mode",
    "Notification",
    "NotificationKind",
    "NotificationReply",
    "NotifiedProcessor",
    "Payer",
    "PaymentForm",
    "ProcessorCatalog",
    "ProcessorConfig",
    "ProcessorInfo",
    "ProfileProcessor",
    "RedirectProcessor",
    "RedirectRequest",
    "RedirectStart",
    "ScheduleGateway",
    "ScheduleRefused",
    "ScheduleStatus",
    "Slip",
    "VoucherProcessor",
    "catalog",
    "collects_by_schedule",
    "reject_mismatch",
    "use_catalog",
]
