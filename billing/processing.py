"""The card-processor interface: what billing needs from whoever moves card money.

Billing defines this contract and the modules in ``processors`` implement it, so the
domain never imports a processor (the way Saleor's payment gateways are plug-ins behind one
interface).  Everything here is plain data plus a :class:`typing.Protocol`.

Two rules from the design shape it:

* No card number (PAN) or CVC is ever stored, logged or put in an error message.  A
  :class:`CardDetails` lives only long enough to be tokenized, and its ``repr`` masks it; from
  then on billing holds only a :class:`CardToken` (token, brand, last 4 digits, expiry).
* A charge carries a deterministic idempotency key.  A charge whose outcome is not known
  raises :class:`ProcessorTimeout`; the caller records it as ``UNKNOWN`` and later asks
  :meth:`CardProcessor.lookup` what happened instead of charging again.
* A failed call raises a :class:`ProcessorError` (one subclass per meaning), so billing
  never has to read a processor's failure as a GraphQL error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Protocol

from billing.errors import UserError

#: Shortest and longest card numbers issued under ISO/IEC 7812.
_MIN_PAN_LENGTH = 12
_MAX_PAN_LENGTH = 19


class ChargeOutcome(StrEnum):
    """What became of a charge.

    ``UNKNOWN`` is its own state (as in Kill Bill): the call timed out or crashed, so the card
    may or may not have been charged.  It is never retried blindly, only reconciled by lookup.
    """

    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"
    UNKNOWN = "UNKNOWN"
    #: The issuer wants the customer to authenticate (3-D Secure): nothing is charged until
    #: they complete it at ``ChargeResult.action_url``; the outcome then arrives by
    #: notification or lookup.
    ACTION_REQUIRED = "ACTION_REQUIRED"
    #: A direct-debit gateway accepted the request (a one-off schedule): nothing has moved
    #: yet, and the outcome arrives by the gateway's status poll
    #: (:mod:`billing.gateway_billing`), not by the card-charge janitor.
    SUBMITTED = "SUBMITTED"


@dataclass(frozen=True, slots=True, repr=False)
class CardDetails:
    """A card as the customer typed it: sensitive, handed to a processor and then dropped.

    The ``repr`` (and so ``str``, log lines and traceback locals) shows only the last four
    digits and never the CVC, because these objects end up in error reports sooner or later.
    """

    number: str
    exp_month: int
    exp_year: int
    cvc: str
    holder: str | None = None

    def __repr__(self) -> str:
        digits = normalize_card_number(self.number)
        masked = f"****{digits[-4:]}" if len(digits) >= _MIN_PAN_LENGTH else "****"
        return (
            f"CardDetails(number={masked!r}, exp={self.exp_month:02d}/{self.exp_year}, "
            f"cvc='***', holder={self.holder!r})"
        )


@dataclass(frozen=True, slots=True)
class CardToken:
    """What billing may keep about a card: the processor's token and display details."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """One charge of ``amount`` minor units of ``currency`` to a tokenized card.

    ``idempotency_key`` is deterministic (for example the charge attempt's id), so sending the
    same request again can never charge the card twice.
    """

    token: str
    amount: int
    currency: str
    idempotency_key: str
    description: str = ""
    #: The customer is at the keyboard (their Pay button) rather than kassa collecting on its
    #: own; processors that distinguish them (Stripe's off-session PaymentIntents) use it.
    on_session: bool = False
    #: The customer's local day the money is due (a direct-debit gateway's one-off schedule
    #: is debited on it); None for processors that charge at once.
    due_date: date | None = None


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """The processor's answer to a charge.

    ``processor_reference`` identifies the charge at the processor (needed to refund it);
    ``decline_code`` is the processor's machine-readable reason when ``status`` is DECLINED;
    ``message`` is safe to show to the customer.
    """

    status: ChargeOutcome
    processor_reference: str | None
    decline_code: str | None
    message: str
    amount: int
    currency: str
    #: Where the customer completes an ACTION_REQUIRED charge.
    action_url: str | None = None


@dataclass(frozen=True, slots=True)
class RefundResult:
    """The processor's answer to a refund; a refusal is a result, not an exception."""

    succeeded: bool
    processor_reference: str | None
    message: str


class ProcessorError(Exception):
    """A processor call that failed: the processor interface's own error, never a GraphQL one.

    ``code`` is machine-readable and ``message`` safe to show (no card data).  Billing decides
    what each kind means for a charge by its type, not by matching codes.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ChargeRefused(ProcessorError):
    """The processor refused the request before charging (an unusable token, a bad amount):
    nothing was charged, a decline in all but name."""


class IdempotencyConflict(ProcessorError):
    """The idempotency key was already used for a different request.  A charge may exist
    under it, so the caller looks the key up instead of concluding anything."""


class ProcessorTimeout(ProcessorError):
    """The charge's outcome is unknown: the processor may have charged the card or not.

    The caller records the charge as ``UNKNOWN`` and reconciles it later with
    :meth:`CardProcessor.lookup`, never by charging again under a new key.
    """

    def __init__(self, message: str) -> None:
        super().__init__("TIMEOUT", message)


class CardProcessor(Protocol):
    """What billing asks of a card processor.  Implementations live in ``processors``."""

    name: str

    async def tokenize(self, card: CardDetails) -> CardToken:
        """Exchange a card for a token.

        Raises :class:`UserError` for a card that cannot be valid (see :func:`validate_card`);
        the error never contains the card number or CVC.
        """
        ...

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge a tokenized card, once per ``request.idempotency_key``.

        A replay with the same key returns the first result without charging again; the same
        key with a different token, amount or currency raises :class:`IdempotencyConflict`.
        Raises :class:`ChargeRefused` for a request refused before any charge and
        :class:`ProcessorTimeout` when the outcome is unknown; a declined card is a result.
        """
        ...

    async def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """The result of the charge made under ``idempotency_key``.

        ``None`` means the processor never saw that charge, so it is safe to treat it as not
        made.
        """
        ...

    async def refund(
        self, processor_reference: str, amount: int, idempotency_key: str
    ) -> RefundResult:
        """Refund ``amount`` minor units of an earlier charge, once per ``idempotency_key``.

        A refusal is a result; a request that cannot be made raises :class:`ProcessorError`.
        """
        ...


class ProcessorDirectory(Protocol):
    """Where billing finds the processors it charges through.

    Billing cannot import ``processors`` (the layers test forbids it), so the process's
    entry points (``app.create_app``, the ``kassa`` command, the test and benchmark set-up)
    hand a directory to :func:`use_directory` once at start-up.
    """

    @property
    def default_card_processor(self) -> str:
        """The name of the processor new cards are tokenized with."""
        ...

    def processor_named(self, name: str) -> CardProcessor:
        """The processor called ``name``; ``UserError`` ``UNKNOWN_PROCESSOR`` if none is."""
        ...


_directory: ProcessorDirectory | None = None


def use_directory(directory: ProcessorDirectory) -> None:
    """Make ``directory`` the one billing asks for processors from (once per process)."""
    global _directory
    _directory = directory


def _current_directory() -> ProcessorDirectory:
    if _directory is None:
        raise RuntimeError("no processor directory: the entry point must call use_directory")
    return _directory


def processor_named(name: str) -> CardProcessor:
    """The processor called ``name``: a stored card is charged, and a payment looked up and
    refunded, at the processor that made it."""
    return _current_directory().processor_named(name)


def default_card_processor() -> CardProcessor:
    """The processor new cards are tokenized with."""
    directory = _current_directory()
    return directory.processor_named(directory.default_card_processor)


def normalize_card_number(number: str) -> str:
    """``number`` without the spaces and dashes people type between digit groups."""
    return number.replace(" ", "").replace("-", "")


def luhn_valid(number: str) -> bool:
    """Whether ``number`` (digits only) passes the Luhn mod-10 check every card number has.

    It catches a mistyped digit before a processor is asked, which keeps typos from counting
    as declines.
    """
    if not number or not number.isascii() or not number.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


#: Maestro's issuer prefixes (among them the UK's Switch/Maestro 6759 and 676770/676774)
#: outside the ranges that Mastercard and Discover claim first.
_MAESTRO_PREFIXES = (
    "50",
    "56",
    "57",
    "58",
    "6304",
    "6759",
    "6761",
    "6762",
    "6763",
    "676770",
    "676774",
)


def card_brand(number: str) -> str:
    """The card network by the issuer prefix (IIN): visa, mastercard, amex, discover,
    maestro or unknown."""
    digits = normalize_card_number(number)
    if not digits.isascii() or not digits.isdigit():
        return "unknown"
    if digits.startswith("4"):
        return "visa"
    if digits[:2] in {"34", "37"}:
        return "amex"
    if "51" <= digits[:2] <= "55" or (len(digits) >= 4 and "2221" <= digits[:4] <= "2720"):
        return "mastercard"
    if digits.startswith(("6011", "65")) or "644" <= digits[:3] <= "649":
        return "discover"
    if digits.startswith(_MAESTRO_PREFIXES):
        return "maestro"
    return "unknown"


def card_expired(exp_month: int, exp_year: int, today: date) -> bool:
    """Whether a card is expired on ``today``; a card is good through its expiry month."""
    return (exp_year, exp_month) < (today.year, today.month)


def validate_card(card: CardDetails, today: date) -> str:
    """Check a card as any processor would before tokenizing it; return its bare digits.

    Shared here so every processor refuses the same cards with the same codes.  The messages
    name the problem, never the digits.
    """
    digits = normalize_card_number(card.number)
    if not _MIN_PAN_LENGTH <= len(digits) <= _MAX_PAN_LENGTH or not luhn_valid(digits):
        raise UserError("INVALID_CARD_NUMBER", "the card number is not valid", "cardNumber")
    if not 1 <= card.exp_month <= 12 or not 1000 <= card.exp_year <= 9999:
        raise UserError(
            "INVALID_EXPIRY", "the expiry must be a month 1-12 and a four-digit year", "expiry"
        )
    if card_expired(card.exp_month, card.exp_year, today):
        raise UserError("CARD_EXPIRED", "the card has expired", "expiry")
    cvc_length = 4 if card_brand(digits) == "amex" else 3
    if len(card.cvc) != cvc_length or not card.cvc.isascii() or not card.cvc.isdigit():
        raise UserError("INVALID_CVC", f"the security code must be {cvc_length} digits", "cvc")
    return digits
