"""``simulator``: an embedded, in-memory card processor for tests and the demo.

It behaves like a real processor's test mode, driven by the test card numbers Stripe
publishes (see ``TEST_CARDS``); any other Luhn-valid number is approved.  The number picks a
behaviour at tokenize time and is then thrown away: the simulator keeps only the token, brand,
last 4 digits, expiry and that behaviour, exactly what a real processor's customer may keep.

A token carries its card's display details and behaviour in itself (:func:`_token_for`),
so a card stored by one process (``kassa demo``) can be charged by another (``kassa serve``).
Charges and refunds live in a module-level store, one per ``namespace``, shared by every
instance in the process.  Tests use :func:`reset` or their own namespace to start clean.
With ``state_file`` they live in a small SQLite file instead (:class:`_FileStore`), which
outlives the process: the collection crash test kills runs with SIGKILL and still needs to
know every charge the "network" saw.

``latency_ms`` stands in for the round trip: half of it passes before the charge is booked and
half after, so a process killed during a call may already have charged the card — the case a
deterministic idempotency key and reconciliation by lookup exist for.

Made for a processor account (``config=``, a :class:`~billing.payment_systems.ProcessorConfig`)
the simulator also **calls back**, so the whole notification path is tested without any real
payment system: :func:`notification_request` writes the callback it would send (JSON, signed
with HMAC-SHA256 under the account's ``webhook_secret`` credential in the
``X-Simulator-Signature`` header), and :meth:`SimulatorProcessor.parse_notification` verifies
the signature before reading the body.  Stripe's 3-D Secure test number ``4000002760003184``
answers ACTION_REQUIRED with an ``action_url``; its outcome then arrives by notification.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from billing.errors import UserError
from billing.money import validate_currency
from billing.payment_systems import (
    Capability,
    ForgedNotification,
    IncomingRequest,
    MethodKind,
    Notification,
    NotificationKind,
    NotificationReply,
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
    ProcessorTimeout,
    RefundResult,
    card_brand,
    card_expired,
    validate_card,
)


@dataclass(frozen=True, slots=True)
class CardBehaviour:
    """What a charge to a card does: approve, decline with a code, or time out.

    A timeout still books the charge, modelling "the processor charged the card but we never
    heard back", which is exactly the case reconciliation by lookup exists for.
    """

    decline_code: str | None = None
    times_out: bool = False
    #: The issuer asks for 3-D Secure: nothing is charged until the customer completes it.
    requires_action: bool = False


_APPROVE = CardBehaviour()

#: Stripe's published test numbers and what they do here.
TEST_CARDS: dict[str, CardBehaviour] = {
    "4242424242424242": _APPROVE,
    "4000000000000002": CardBehaviour(decline_code="card_declined"),
    "4000000000009995": CardBehaviour(decline_code="insufficient_funds"),
    "4000000000000119": CardBehaviour(times_out=True),
    "4000002760003184": CardBehaviour(requires_action=True),
}

#: Customer-facing text per decline code.
_DECLINE_MESSAGES: dict[str, str] = {
    "card_declined": "The card was declined.",
    "insufficient_funds": "The card has insufficient funds.",
    "expired_card": "The card has expired.",
}


@dataclass(frozen=True, slots=True)
class _Card:
    """A tokenized card as the simulator knows it: no number, no CVC."""

    brand: str
    last4: str
    exp_month: int
    exp_year: int
    behaviour: CardBehaviour


#: Behaviours by the name a token spells them with.
_BEHAVIOUR_NAMES: dict[str, CardBehaviour] = {
    "approve": _APPROVE,
    "declined": TEST_CARDS["4000000000000002"],
    "insufficient": TEST_CARDS["4000000000009995"],
    "timeout": TEST_CARDS["4000000000000119"],
    "action": TEST_CARDS["4000002760003184"],
}
_TOKEN_RE = re.compile(
    r"^sim_tok_(?P<behaviour>[a-z]+)_(?P<brand>[a-z]+)_(?P<last4>\d{4})_"
    r"(?P<month>\d{2})(?P<year>\d{4})_[0-9a-f]{16}$"
)


def _token_for(card: _Card) -> str:
    """``sim_tok_<behaviour>_<brand>_<last4>_<MMYYYY>_<random>``: opaque to kassa, readable
    to the simulator in any process."""
    name = next(n for n, b in _BEHAVIOUR_NAMES.items() if b == card.behaviour)
    return (
        f"sim_tok_{name}_{card.brand}_{card.last4}_{card.exp_month:02d}{card.exp_year}_"
        f"{secrets.token_hex(8)}"
    )


def _card_of(token: str) -> _Card | None:
    match = _TOKEN_RE.match(token)
    if match is None or match["behaviour"] not in _BEHAVIOUR_NAMES:
        return None
    return _Card(
        brand=match["brand"],
        last4=match["last4"],
        exp_month=int(match["month"]),
        exp_year=int(match["year"]),
        behaviour=_BEHAVIOUR_NAMES[match["behaviour"]],
    )


@dataclass(slots=True)
class _Charge:
    """A booked charge plus what was asked, to recognise a reused idempotency key."""

    token: str
    amount: int
    currency: str
    result: ChargeResult
    refunded: int = 0


@dataclass(frozen=True, slots=True)
class _Refund:
    processor_reference: str
    amount: int
    result: RefundResult


@dataclass(slots=True)
class _Store:
    """One namespace's state.  The lock makes check-then-book atomic even across threads."""

    charges: dict[str, _Charge] = field(default_factory=dict)  # by idempotency key
    charges_by_reference: dict[str, _Charge] = field(default_factory=dict)
    refunds: dict[str, _Refund] = field(default_factory=dict)  # by idempotency key
    lock: threading.Lock = field(default_factory=threading.Lock)


class _FileStore:
    """The simulator's charges and refunds in an SQLite file, shared by every process.

    Each booking is one ``BEGIN IMMEDIATE`` transaction (check the key, then book), so two
    processes cannot book one key twice, and a committed booking survives SIGKILL.
    """

    def __init__(self, path: str, namespace: str) -> None:
        self._namespace = namespace
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS charges (namespace TEXT, key TEXT, token TEXT, "
            "amount INTEGER, currency TEXT, status TEXT, reference TEXT, decline_code TEXT, "
            "message TEXT, refunded INTEGER DEFAULT 0, PRIMARY KEY (namespace, key))"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS refunds (namespace TEXT, key TEXT, reference TEXT, "
            "amount INTEGER, succeeded INTEGER, refund_reference TEXT, message TEXT, "
            "PRIMARY KEY (namespace, key))"
        )
        self.lock = threading.Lock()

    @staticmethod
    def _result(row: tuple[Any, ...]) -> ChargeResult:
        """A ``charges`` row's columns of :data:`_RESULT` as the result they stored."""
        status, reference, decline_code, message, amount, currency = row
        return ChargeResult(
            ChargeOutcome(status), reference, decline_code, str(message), int(amount), str(currency)
        )

    _RESULT = "status, reference, decline_code, message, amount, currency"

    def booked(self, key: str) -> tuple[str, int, str, ChargeResult] | None:
        row = self._db.execute(
            f"SELECT token, amount, currency, {self._RESULT} FROM charges "
            "WHERE namespace = ? AND key = ?",
            (self._namespace, key),
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2], self._result(row[3:]))

    def book(self, key: str, token: str, result: ChargeResult) -> None:
        self._db.execute(
            "INSERT INTO charges (namespace, key, token, amount, currency, status, reference, "
            "decline_code, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self._namespace,
                key,
                token,
                result.amount,
                result.currency,
                result.status.value,
                result.processor_reference,
                result.decline_code,
                result.message,
            ),
        )

    def log(self) -> list[tuple[str, ChargeResult]]:
        rows = self._db.execute(
            f"SELECT key, {self._RESULT} FROM charges WHERE namespace = ? ORDER BY rowid",
            (self._namespace,),
        ).fetchall()
        return [(row[0], self._result(row[1:])) for row in rows]

    def refund(self, key: str, reference: str, amount: int) -> RefundResult:
        row = self._db.execute(
            "SELECT reference, amount, succeeded, refund_reference, message FROM refunds "
            "WHERE namespace = ? AND key = ?",
            (self._namespace, key),
        ).fetchone()
        if row is not None:
            if (row[0], row[1]) != (reference, amount):
                raise IdempotencyConflict(
                    "IDEMPOTENCY_KEY_REUSED", "this idempotency key was used for a different refund"
                )
            return RefundResult(bool(row[2]), row[3], row[4])
        charge = self._db.execute(
            "SELECT status, amount, refunded FROM charges WHERE namespace = ? AND reference = ?",
            (self._namespace, reference),
        ).fetchone()
        if charge is None:
            result = RefundResult(False, None, "No such charge.")
        elif charge[0] != ChargeOutcome.SUCCEEDED.value:
            result = RefundResult(False, None, "Only a succeeded charge can be refunded.")
        elif amount > charge[1] - charge[2]:
            result = RefundResult(
                False,
                None,
                f"The refund exceeds the {charge[1] - charge[2]} minor units left to refund.",
            )
        else:
            self._db.execute(
                "UPDATE charges SET refunded = refunded + ? WHERE namespace = ? AND reference = ?",
                (amount, self._namespace, reference),
            )
            result = RefundResult(True, f"sim_re_{secrets.token_hex(12)}", "Refunded.")
        self._db.execute(
            "INSERT INTO refunds VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                self._namespace,
                key,
                reference,
                amount,
                int(result.succeeded),
                result.processor_reference,
                result.message,
            ),
        )
        return result

    def transaction(self) -> _FileTransaction:
        return _FileTransaction(self)


class _FileTransaction:
    """``with store.transaction():`` — one immediate (write-locked) SQLite transaction."""

    def __init__(self, store: _FileStore) -> None:
        self._store = store

    def __enter__(self) -> None:
        self._store.lock.acquire()
        self._store._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        try:
            self._store._db.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self._store.lock.release()


_file_stores: dict[tuple[str, str], _FileStore] = {}
_stores: dict[str, _Store] = {}
_stores_lock = threading.Lock()


def _store_for(namespace: str) -> _Store:
    with _stores_lock:
        return _stores.setdefault(namespace, _Store())


def _file_store_for(path: str, namespace: str) -> _FileStore:
    with _stores_lock:
        store = _file_stores.get((path, namespace))
        if store is None:
            store = _file_stores[(path, namespace)] = _FileStore(path, namespace)
        return store


def reset(namespace: str | None = None) -> None:
    """Forget every token, charge and refund in ``namespace`` (all namespaces by default).

    In-memory stores only: a ``state_file`` is the caller's to delete.
    """
    with _stores_lock:
        if namespace is None:
            _stores.clear()
        else:
            _stores.pop(namespace, None)


def _apply_refund(store: _Store, processor_reference: str, amount: int) -> RefundResult:
    """Refund ``amount`` of the charge ``processor_reference``; the caller holds the lock."""
    booked = store.charges_by_reference.get(processor_reference)
    if booked is None:
        return RefundResult(False, None, "No such charge.")
    if booked.result.status is not ChargeOutcome.SUCCEEDED:
        return RefundResult(False, None, "Only a succeeded charge can be refunded.")
    refundable = booked.amount - booked.refunded
    if amount > refundable:
        return RefundResult(
            False, None, f"The refund exceeds the {refundable} minor units left to refund."
        )
    booked.refunded += amount
    return RefundResult(True, f"sim_re_{secrets.token_hex(12)}", "Refunded.")


def _utc_today() -> date:
    return datetime.now(UTC).date()


#: The header the simulator signs its callbacks in: ``t=<unix time>,v1=<hex HMAC-SHA256 of
#: "<t>." + body>`` under the account's ``webhook_secret``.
SIGNATURE_HEADER = "x-simulator-signature"
#: An older signature is refused, so a captured callback cannot be replayed later.
SIGNATURE_TOLERANCE_SECONDS = 300
#: The simulator's event types and what they mean.
EVENT_KINDS: dict[str, NotificationKind] = {
    "charge.succeeded": NotificationKind.SUCCEEDED,
    "charge.failed": NotificationKind.FAILED,
    "charge.reversed": NotificationKind.REVERSED,
    "charge.refunded": NotificationKind.REFUNDED,
}
_EVENT_TYPES = {kind: event for event, kind in EVENT_KINDS.items()}


def _signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()


def notification_request(
    secret: str,
    kind: NotificationKind,
    *,
    event_id: str,
    idempotency_key: str | None = None,
    reference: str | None = None,
    amount: int | None = None,
    currency: str | None = None,
    path: str = "/callbacks/0",
    timestamp: int | None = None,
) -> IncomingRequest:
    """The callback the simulator sends about a charge, signed with ``secret``: what the
    tests and ``docs/payments.md`` post to ``/callbacks/{account}``."""
    body = json.dumps(
        {
            "id": event_id,
            "type": _EVENT_TYPES.get(kind, "charge.updated"),
            "charge": {
                "idempotency_key": idempotency_key,
                "reference": reference,
                "amount": amount,
                "currency": currency,
            },
        },
        sort_keys=True,
    ).encode()
    at = int(datetime.now(UTC).timestamp()) if timestamp is None else timestamp
    header = f"t={at},v1={_signature(secret, at, body)}"
    return IncomingRequest(
        "POST", path, {"content-type": "application/json", SIGNATURE_HEADER: header}, body
    )


class SimulatorProcessor:
    """The simulator, implementing :class:`billing.processing.CardProcessor`.

    ``namespace`` separates independent worlds in one process (a demo and a test run);
    ``latency_ms`` makes every call wait that long, for benchmarks; ``today`` lets a test clock
    decide when cards expire; ``state_file`` keeps charges and refunds in that SQLite file
    instead of in memory, so they outlive the process.  ``config`` is the processor
    account's (its ``webhook_secret`` signs callbacks; ``base_url`` is where the 3-D Secure
    page of an ACTION_REQUIRED charge would be).
    """

    name = "simulator"
    capabilities = frozenset(
        {
            Capability.TOKEN_CHARGE,
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
        namespace: str = "default",
        latency_ms: int = 0,
        today: Callable[[], date] = _utc_today,
        state_file: str | None = None,
        config: ProcessorConfig | None = None,
    ) -> None:
        self._namespace = namespace
        self._latency_ms = latency_ms
        self._today = today
        self._file = None if state_file is None else _file_store_for(state_file, namespace)
        self._config = config or ProcessorConfig()

    def parse_notification(self, request: IncomingRequest) -> Notification:
        """Verify the ``X-Simulator-Signature`` (HMAC-SHA256 under ``webhook_secret``, at
        most :data:`SIGNATURE_TOLERANCE_SECONDS` old) before reading the body."""
        secret = self._config.secret("webhook_secret")
        fields = dict(
            part.split("=", 1)
            for part in request.headers.get(SIGNATURE_HEADER, "").split(",")
            if "=" in part
        )
        try:
            timestamp = int(fields.get("t", ""))
        except ValueError:
            raise ForgedNotification() from None
        expected = _signature(secret, timestamp, request.body)
        if not hmac.compare_digest(expected, fields.get("v1", "")):
            raise ForgedNotification()
        if abs(datetime.now(UTC).timestamp() - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
            raise ForgedNotification("the notification's signature is too old")
        event = json.loads(request.body)
        charge = event.get("charge") or {}
        return Notification(
            event_id=str(event["id"]),
            kind=EVENT_KINDS.get(str(event.get("type")), NotificationKind.IGNORED),
            processor_reference=charge.get("reference"),
            idempotency_key=charge.get("idempotency_key"),
            amount=charge.get("amount"),
            currency=charge.get("currency"),
        )

    def acknowledge(self, notification: Notification) -> NotificationReply:
        """The simulator, like Stripe, wants any 2xx; it gets a small JSON receipt."""
        return NotificationReply(200, b'{"received": true}', "application/json")

    async def tokenize(self, card: CardDetails) -> CardToken:
        """Validate ``card`` and return a token that carries its display details and behaviour."""
        await self._network_delay()
        digits = validate_card(card, self._today())
        remembered = _Card(
            brand=card_brand(digits),
            last4=digits[-4:],
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            behaviour=TEST_CARDS.get(digits, _APPROVE),
        )
        token = _token_for(remembered)
        return CardToken(
            token=token,
            brand=remembered.brand,
            last4=remembered.last4,
            exp_month=remembered.exp_month,
            exp_year=remembered.exp_year,
        )

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge once per idempotency key; a timeout card books the charge, then raises."""
        await self._network_delay(half=True)
        if request.amount <= 0:
            raise ChargeRefused("INVALID_AMOUNT", "the amount must be greater than zero")
        try:
            currency = validate_currency(request.currency)
        except UserError as error:
            raise ChargeRefused(error.code, error.message) from None
        if self._file is not None:
            result, card = self._book_in_file(request, currency)
        else:
            result, card = self._book(request, currency)
        await self._network_delay(half=True)
        if card is not None and card.behaviour.times_out:
            raise ProcessorTimeout(
                f"no answer for charge {request.idempotency_key!r}; reconcile it by lookup"
            )
        return result

    def _book_in_file(
        self, request: ChargeRequest, currency: str
    ) -> tuple[ChargeResult, _Card | None]:
        """:meth:`_book` against the ``state_file`` store."""
        assert self._file is not None
        with self._file.transaction():
            booked = self._file.booked(request.idempotency_key)
            if booked is not None:
                if booked[:3] != (request.token, request.amount, currency):
                    raise IdempotencyConflict(
                        "IDEMPOTENCY_KEY_REUSED",
                        "this idempotency key was used for a different charge",
                    )
                return booked[3], None
            card = _card_of(request.token)
            if card is None:
                raise ChargeRefused("INVALID_TOKEN", "unknown card token")
            result = self._decide(card, f"sim_ch_{secrets.token_hex(12)}", request.amount, currency)
            self._file.book(request.idempotency_key, request.token, result)
        return result, card

    def _book(self, request: ChargeRequest, currency: str) -> tuple[ChargeResult, _Card | None]:
        """Book the charge once per key: (result, card), the card None for a replay."""
        store = self._store
        with store.lock:
            booked = store.charges.get(request.idempotency_key)
            if booked is not None:
                if (booked.token, booked.amount, booked.currency) != (
                    request.token,
                    request.amount,
                    currency,
                ):
                    raise IdempotencyConflict(
                        "IDEMPOTENCY_KEY_REUSED",
                        "this idempotency key was used for a different charge",
                    )
                return booked.result, None
            card = _card_of(request.token)
            if card is None:
                raise ChargeRefused("INVALID_TOKEN", "unknown card token")
            reference = f"sim_ch_{secrets.token_hex(12)}"
            result = self._decide(card, reference, request.amount, currency)
            booked = _Charge(request.token, request.amount, currency, result)
            store.charges[request.idempotency_key] = booked
            store.charges_by_reference[reference] = booked
        return result, card

    async def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """The booked result under ``idempotency_key``, or None if no charge was booked."""
        await self._network_delay()
        if self._file is not None:
            with self._file.transaction():
                found = self._file.booked(idempotency_key)
            return None if found is None else found[3]
        store = self._store
        with store.lock:
            booked = store.charges.get(idempotency_key)
        return None if booked is None else booked.result

    async def refund(
        self, processor_reference: str, amount: int, idempotency_key: str
    ) -> RefundResult:
        """Refund part or all of a succeeded charge; never more than is left to refund."""
        await self._network_delay()
        if amount <= 0:
            raise ChargeRefused("INVALID_AMOUNT", "the amount must be greater than zero")
        if self._file is not None:
            with self._file.transaction():
                return self._file.refund(idempotency_key, processor_reference, amount)
        store = self._store
        with store.lock:
            done = store.refunds.get(idempotency_key)
            if done is not None:
                if (done.processor_reference, done.amount) != (processor_reference, amount):
                    raise IdempotencyConflict(
                        "IDEMPOTENCY_KEY_REUSED",
                        "this idempotency key was used for a different refund",
                    )
                return done.result
            result = _apply_refund(store, processor_reference, amount)
            store.refunds[idempotency_key] = _Refund(processor_reference, amount, result)
        return result

    def charges(self) -> list[ChargeResult]:
        """Every charge booked in this namespace, oldest first: what the card network saw."""
        return [result for _, result in self.charge_log()]

    def charge_log(self) -> list[tuple[str, ChargeResult]]:
        """Every charge booked in this namespace with its idempotency key, oldest first."""
        if self._file is not None:
            with self._file.transaction():
                return self._file.log()
        store = self._store
        with store.lock:
            return [(key, booked.result) for key, booked in store.charges.items()]

    @property
    def _store(self) -> _Store:
        """This namespace's store, looked up per call so a :func:`reset` is seen at once."""
        return _store_for(self._namespace)

    def _decide(self, card: _Card, reference: str, amount: int, currency: str) -> ChargeResult:
        """The outcome a real processor would give this card today."""
        decline_code = card.behaviour.decline_code
        if card.behaviour.requires_action:
            return ChargeResult(
                status=ChargeOutcome.ACTION_REQUIRED,
                processor_reference=reference,
                decline_code=None,
                message="The card's issuer asks the customer to confirm this payment.",
                amount=amount,
                currency=currency,
                action_url=f"{self._config.base_url or 'https://simulator.invalid'}/3ds/{reference}",
            )
        if decline_code is None and card_expired(card.exp_month, card.exp_year, self._today()):
            decline_code = "expired_card"
        if decline_code is not None:
            return ChargeResult(
                status=ChargeOutcome.DECLINED,
                processor_reference=reference,
                decline_code=decline_code,
                message=_DECLINE_MESSAGES.get(decline_code, "The card was declined."),
                amount=amount,
                currency=currency,
            )
        return ChargeResult(
            status=ChargeOutcome.SUCCEEDED,
            processor_reference=reference,
            decline_code=None,
            message="Approved.",
            amount=amount,
            currency=currency,
        )

    async def _network_delay(self, half: bool = False) -> None:
        """Stand in for a round trip to a remote processor when ``latency_ms`` is set (with
        ``half``, for one way of it)."""
        if self._latency_ms > 0:
            await asyncio.sleep(self._latency_ms / (2000 if half else 1000))
