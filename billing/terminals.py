"""Cash terminals: networks of street machines that take a customer's cash and push the
payment into kassa through ``/terminal/v1`` (the HTTP side is ``resolvers/terminals.py``;
integrators read ``docs/terminals.md``).

A network is a processor account whose processor is ``cash_terminal``
(``processors/cash_terminal.py``): administrators create it, set its ``signing_secret``
(sealed at rest, never shown back), the currencies it takes with a minimum in each, and
enable or disable it.  It belongs to the provider or to one reseller, and reaches the
customers that owner's processor accounts reach (:func:`_reaches`): a reseller's network only
that reseller's customers; the provider's network the provider's own, and a reseller's only
where that reseller lets its customers pay through the provider's accounts.

**Authentication** (:func:`authenticate`).  Every request names its network
(``X-Terminal-Network``: the processor account's id), a Unix time in seconds
(``X-Terminal-Timestamp``) and ``X-Terminal-Signature``: HMAC-SHA256 with the network's
secret over ``METHOD\\nPATH\\nTIMESTAMP\\n`` followed by the raw body, in lower-case hex
(:func:`sign`).  A timestamp more than :data:`WINDOW` from kassa's wall clock is refused, and
so is a signature already used (``terminal_requests``, unique per network and signature; rows
are pruned once their timestamp is past the window, when the timestamp check alone refuses
them).  The wall clock, not billing's test clock, judges freshness: the network's clock is a
real one.  A retried request is signed again, with a new timestamp.

**The operations**, each in the caller's one transaction (any refusal writes nothing):

* :func:`check` — a customer by kassa customer id or account number → exists, the name on
  their invoices, their currency, and the amount due: what their open invoices still need
  (billed and unpaid; charges of the running period are not due yet, and credit already
  settled what it could).  An unknown, closed or out-of-reach customer is ``exists: false``
  and nothing else.
* :func:`pay` — a cash payment: amount (a decimal string in the currency's units, read as
  every kassa amount is), currency (the customer's, and one the network takes, at least its
  minimum), the network's transaction id and time.  It is one TERMINAL payment booked as
  staff's cash is (:func:`billing.payments.book_received`: customer −, processor book +,
  invoices settled oldest first) under the processor key ``terminal:<account>:<txn id>``.
  The same transaction id again returns the first payment when it names the same customer,
  amount and currency, and is refused (TRANSACTION_ID_REUSED) when it names others.
* :func:`status` — what kassa did with a network transaction id (for the network's own
  reconciliation); UNKNOWN when kassa never booked it.
* :func:`reconciliation` — the CSV of what kassa credited through the network on one UTC
  day, by when kassa booked it.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, customers, ledger, metrics, money, payments, processor_accounts
from billing.access import Viewer
from billing.errors import NotFound, UserError
from billing.models import (
    Account,
    Customer,
    CustomerStatus,
    Payment,
    PaymentChannel,
    PaymentStatus,
    ProcessorAccount,
    Reseller,
    TerminalPayment,
    TerminalRequest,
)
from billing.payment_systems import IncomingRequest
from billing.settlement import open_invoices

#: The registry name of a terminal network's processor, and the credential it signs with.
PROCESSOR = "cash_terminal"
SECRET_CREDENTIAL = "signing_secret"
#: The request headers (lower-case, as :class:`IncomingRequest` keeps them).
NETWORK_HEADER = "x-terminal-network"
TIMESTAMP_HEADER = "x-terminal-timestamp"
SIGNATURE_HEADER = "x-terminal-signature"
#: How far a request's timestamp may be from kassa's clock, either way.
WINDOW = timedelta(minutes=5)
#: The largest body any operation needs (a check or a payment is a few hundred bytes).
MAX_BODY = 4096
#: A network's transaction id: what its reconciliation prints, so printable and short.
_TXN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
_DIGITS_RE = re.compile(r"[0-9]{1,18}")
#: What :func:`status` and the reconciliation call a booked payment's state.
_STATES = {PaymentStatus.COMPLETED: "CREDITED"}


class Unauthenticated(UserError):
    """A request whose signature is missing, wrong, too old or too new, or already used:
    answered 401."""


class UnknownNetwork(UserError):
    """No cash terminal network has this id: answered 404."""

    def __init__(self) -> None:
        super().__init__("UNKNOWN_NETWORK", "no terminal network has this id", "X-Terminal-Network")


class NetworkDisabled(UserError):
    """The network's account is disabled: it takes no new payments (403); its status queries
    and reconciliations still answer."""


class TransactionIdReused(UserError):
    """A transaction id already booked with another customer, amount or currency: 409."""


def transaction_id_reused() -> TransactionIdReused:
    """The refusal of a transaction id booked with other arguments (here, or by a request
    that raced this one for another customer and won the unique processor key)."""
    return TransactionIdReused(
        "TRANSACTION_ID_REUSED",
        "this transaction id was booked with another customer, amount or currency",
        "transaction_id",
    )


def signing_string(method: str, path: str, timestamp: str, body: bytes) -> bytes:
    """What a request's signature covers: ``METHOD\\nPATH\\nTIMESTAMP\\n`` + the raw body."""
    return f"{method.upper()}\n{path}\n{timestamp}\n".encode() + body


def sign(secret: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    """The ``X-Terminal-Signature`` of a request: HMAC-SHA256, lower-case hex."""
    message = signing_string(method, path, timestamp, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _refused(code: str, message: str) -> Unauthenticated:
    return Unauthenticated(code, message, "X-Terminal-Signature")


async def authenticate(
    session: AsyncSession, request: IncomingRequest, wall: datetime
) -> ProcessorAccount:
    """The network that signed ``request``, once its signature verified and was recorded as
    used; :class:`UnknownNetwork` or :class:`Unauthenticated` otherwise (see the module's
    docstring).  ``wall`` is the real time now."""
    headers = request.headers
    network = headers.get(NETWORK_HEADER, "").strip()
    if not _DIGITS_RE.fullmatch(network):
        raise UnknownNetwork()
    account = await session.get(ProcessorAccount, int(network))
    if account is None or account.processor != PROCESSOR:
        raise UnknownNetwork()
    stamp = headers.get(TIMESTAMP_HEADER, "").strip()
    given = headers.get(SIGNATURE_HEADER, "").strip().lower()
    if not stamp or not given:
        raise _refused("MISSING_SIGNATURE", "the request is not signed")
    if not _DIGITS_RE.fullmatch(stamp):
        raise _refused("INVALID_TIMESTAMP", "X-Terminal-Timestamp is Unix time in seconds")
    signed_at = datetime.fromtimestamp(int(stamp), UTC)
    if abs(wall - signed_at) > WINDOW:
        raise _refused(
            "STALE_TIMESTAMP",
            f"the timestamp is more than {WINDOW.seconds // 60} minutes from kassa's clock",
        )
    secret = processor_accounts.credentials_of(session, account).get(SECRET_CREDENTIAL)
    expected = sign(secret, request.method, request.path, stamp, request.body) if secret else ""
    if not (secret and _SIGNATURE_RE.fullmatch(given) and hmac.compare_digest(expected, given)):
        raise _refused("BAD_SIGNATURE", "the signature does not verify")
    if not await _first_use(session, account.id, given, signed_at, wall):
        raise _refused("REPLAYED", "this signature was used already: sign each request anew")
    return account


async def _first_use(
    session: AsyncSession, account_id: int, signature: str, signed_at: datetime, wall: datetime
) -> bool:
    """Record the signature as used (after pruning what the window refuses anyway); False
    when it was recorded before."""
    await session.execute(delete(TerminalRequest).where(TerminalRequest.signed_at < wall - WINDOW))
    dialect = session.bind.dialect.name  # type: ignore[union-attr]
    insert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(TerminalRequest)
    row_id = await session.scalar(
        insert.values(processor_account_id=account_id, signature=signature, signed_at=signed_at)
        .on_conflict_do_nothing(index_elements=["processor_account_id", "signature"])
        .returning(TerminalRequest.id)
    )
    return row_id is not None


# --- reading the body -----------------------------------------------------------------------


def read_body(body: bytes) -> dict[str, Any]:
    """The JSON object a request carries (INVALID_JSON otherwise)."""
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise UserError("INVALID_JSON", "the body is not JSON", "body") from None
    if not isinstance(data, dict):
        raise UserError("INVALID_JSON", "the body is a JSON object", "body")
    return data


def _text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise UserError("INVALID_VALUE", f"{name} is a string", name)
    return str(value).strip() or None


def _transaction_id(data: dict[str, Any]) -> str:
    value = _text(data, "transaction_id")
    if value is None or not _TXN_ID_RE.fullmatch(value):
        raise UserError(
            "INVALID_TRANSACTION_ID",
            "transaction_id is 1-64 letters, digits and . _ : / - (starting with a letter "
            "or digit)",
            "transaction_id",
        )
    return value


def _transaction_time(data: dict[str, Any], wall: datetime) -> datetime:
    value = _text(data, "transaction_time")
    try:
        when = datetime.fromisoformat(value or "")
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise UserError(
            "INVALID_TIME",
            "transaction_time is an ISO 8601 time with its UTC offset",
            "transaction_time",
        )
    if when - wall > WINDOW:
        raise UserError("INVALID_TIME", "transaction_time is in the future", "transaction_time")
    return when.astimezone(UTC)


# --- whom a network reaches -----------------------------------------------------------------


async def _reaches(session: AsyncSession, account: ProcessorAccount, customer: Customer) -> bool:
    """Whether ``customer`` may pay through the network (the routing rule of
    :mod:`billing.processor_accounts`: the customer's own owner's accounts, then the
    provider's where the customer's reseller allows it)."""
    if customer.status == CustomerStatus.CLOSED:
        return False
    if account.owner_key == ledger.system_owner_key(customer.reseller_id):
        return True
    if account.owner_key != ledger.system_owner_key(None):
        return False
    return bool(
        await session.scalar(
            select(Reseller.processor_fallback).where(Reseller.id == customer.reseller_id)
        )
    )


async def _customer(
    session: AsyncSession, account: ProcessorAccount, data: dict[str, Any]
) -> Customer | None:
    """The customer ``data`` names (``customer``: kassa's id, or ``account``: an account
    number) if the network reaches them, else None: an out-of-reach customer looks exactly
    like one that does not exist."""
    customer_id, number = _text(data, "customer"), _text(data, "account")
    if (customer_id is None) == (number is None):
        raise UserError("INVALID_CUSTOMER", "give either customer or account", "customer")
    if customer_id is not None:
        if not _DIGITS_RE.fullmatch(customer_id):
            return None
        query = select(Customer).where(Customer.id == int(customer_id))
    else:
        query = select(Customer).join(Account, Account.customer_id == Customer.id)
        query = query.where(Account.number == number)
    found = await session.scalar(query)
    return found if found is not None and await _reaches(session, account, found) else None


# --- the operations -------------------------------------------------------------------------


async def check(
    session: AsyncSession, account: ProcessorAccount, data: dict[str, Any]
) -> dict[str, Any]:
    """Who the customer is, as far as a terminal's screen needs (module docstring)."""
    customer = await _customer(session, account, data)
    if customer is None:
        return {"exists": False}
    due = sum(invoice.outstanding for invoice in await open_invoices(session, customer.id))
    return {
        "exists": True,
        "customer": str(customer.id),
        "display_name": customer.name,
        "currency": customer.currency,
        "amount_due": money.format_amount(due, customer.currency),
    }


@dataclass(frozen=True, slots=True)
class Paid:
    """A terminal payment as :func:`pay` booked it (or found it booked)."""

    payment: Payment
    terminal: TerminalPayment
    #: The transaction id was booked before: this is the first request's payment.
    duplicate: bool


def processor_key(account: ProcessorAccount, transaction_id: str) -> str:
    """The payment's unique processor key: one payment per network transaction id."""
    return f"terminal:{account.id}:{transaction_id}"


async def _booked(
    session: AsyncSession, account: ProcessorAccount, transaction_id: str
) -> tuple[Payment, TerminalPayment] | None:
    row = (
        await session.execute(
            select(Payment, TerminalPayment)
            .join(TerminalPayment, TerminalPayment.payment_id == Payment.id)
            .where(Payment.processor_key == processor_key(account, transaction_id))
            .execution_options(populate_existing=True)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def pay(
    session: AsyncSession, account: ProcessorAccount, data: dict[str, Any], wall: datetime
) -> Paid:
    """Book the cash a customer paid at one of the network's terminals (module docstring)."""
    if not account.enabled:
        raise NetworkDisabled("NETWORK_DISABLED", "this terminal network takes no payments", None)
    transaction_id = _transaction_id(data)
    network_time = _transaction_time(data, wall)
    currency = money.validate_currency(_text(data, "currency") or "")
    amount = money.parse_amount(_text(data, "amount") or "", currency)
    found = await _customer(session, account, data)
    if found is None:
        raise UserError("UNKNOWN_CUSTOMER", "no such customer here", "customer")
    # The customer's lock serialises two deliveries of one transaction: the second waits for
    # the first to commit, then finds its payment.
    [customer] = await customers.lock_customers(session, {found.id})
    booked = await _booked(session, account, transaction_id)
    if booked is not None:
        payment, terminal = booked
        if (payment.customer_id, payment.amount, payment.currency) != (
            customer.id,
            amount,
            currency,
        ):
            raise transaction_id_reused()
        return Paid(payment, terminal, duplicate=True)
    if amount <= 0:
        raise UserError("AMOUNT_NOT_POSITIVE", "amount must be greater than zero", "amount")
    if currency != customer.currency:
        raise UserError(
            "CURRENCY_MISMATCH", f"the customer pays in {customer.currency}", "currency"
        )
    if currency not in account.minimums:
        raise UserError(
            "CURRENCY_NOT_ACCEPTED", f"this network takes no payments in {currency}", "currency"
        )
    processor_accounts.check_minimum(account, amount, currency)
    now = await clock.now(session)
    payment = Payment(
        customer_id=customer.id,
        method=PaymentChannel.TERMINAL,
        amount=amount,
        currency=currency,
        refunded_amount=0,
        status=PaymentStatus.PENDING,
        reference=f"{account.name}, txn {transaction_id}",
        received_at=now,
        processor=PROCESSOR,
        processor_account_id=account.id,
        processor_key=processor_key(account, transaction_id),
    )
    session.add(payment)
    await session.flush()
    terminal = TerminalPayment(
        payment_id=payment.id, network_txn_id=transaction_id, network_time=network_time
    )
    session.add(terminal)
    await payments.book_received(session, customer, payment, now)
    metrics.PAYMENTS.labels(PaymentChannel.TERMINAL, "completed").inc()
    return Paid(payment, terminal, duplicate=False)


def _state(payment: Payment) -> str:
    return _STATES.get(payment.status, payment.status.value)


def describe(paid: Paid) -> dict[str, Any]:
    """A booked payment as the API shows it (the answer to *pay* and to *status*)."""
    payment, terminal = paid.payment, paid.terminal
    return {
        "status": _state(payment),
        "transaction_id": terminal.network_txn_id,
        "transaction_time": terminal.network_time.isoformat(),
        "payment_id": str(payment.id),
        "customer": str(payment.customer_id),
        "amount": money.format_amount(payment.amount, payment.currency),
        "currency": payment.currency,
        "credited_at": payment.received_at.isoformat(),
    }


async def status(
    session: AsyncSession, account: ProcessorAccount, data: dict[str, Any]
) -> dict[str, Any]:
    """What kassa did with one of the network's transactions: UNKNOWN when it never booked
    it, else its payment (CREDITED, or VOIDED/REFUNDED/... when staff undid it since)."""
    transaction_id = _transaction_id(data)
    booked = await _booked(session, account, transaction_id)
    if booked is None:
        return {"status": "UNKNOWN", "transaction_id": transaction_id}
    payment, terminal = booked
    return describe(Paid(payment, terminal, duplicate=False))


#: The reconciliation's columns.
CSV_COLUMNS = (
    "transaction_id",
    "transaction_time",
    "payment_id",
    "customer",
    "amount",
    "currency",
    "credited_at",
    "status",
)


def reconciliation_day(data: dict[str, Any]) -> date:
    """The ``date`` a reconciliation asks for (YYYY-MM-DD)."""
    value = _text(data, "date")
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        raise UserError("INVALID_DATE", "date is YYYY-MM-DD", "date") from None


async def reconciliation(session: AsyncSession, account: ProcessorAccount, day: date) -> str:
    """Every payment kassa credited through the network on ``day`` (UTC, by when kassa booked
    it), oldest first, as CSV with :data:`CSV_COLUMNS`; ``status`` is the payment's state
    now (a payment staff voided since still shows, as VOIDED)."""
    start = datetime.combine(day, time(), UTC)
    rows = await session.execute(
        select(Payment, TerminalPayment)
        .join(TerminalPayment, TerminalPayment.payment_id == Payment.id)
        .where(
            Payment.processor_account_id == account.id,
            Payment.received_at >= start,
            Payment.received_at < start + timedelta(days=1),
        )
        .order_by(Payment.received_at, Payment.id)
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for payment, terminal in rows.all():
        shown = describe(Paid(payment, terminal, duplicate=False))
        writer.writerow([shown[column] for column in CSV_COLUMNS])
    return out.getvalue()


async def reconciliation_for_staff(
    session: AsyncSession, viewer: Viewer, account_id: int, day: date
) -> str:
    """:func:`reconciliation` for an administrator of the network's owner (the network must
    be one the viewer administers, else NOT_FOUND)."""
    account = await processor_accounts.get_account(session, viewer, account_id)
    if account.processor != PROCESSOR:
        raise NotFound("terminal network", "accountId")
    network = await session.get(ProcessorAccount, account_id)
    assert network is not None
    return await reconciliation(session, network, day)
