"""Exact money: integer minor units plus an ISO 4217 code.

Floats never appear here.  Decimal strings are parsed strictly (no more decimals than the
currency has), percentages are applied once and rounded half-up, and splits always add back
up to the whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from billing.errors import UserError

#: Minor-unit exponent per currency.  Anything not listed is refused rather than guessed.
CURRENCY_DECIMALS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "HUF": 2,
    "RON": 2,
    "BGN": 2,
    "TRY": 2,
    "MXN": 2,
    "BRL": 2,
    "ARS": 2,
    "ZAR": 2,
    "NGN": 2,
    "GHS": 2,
    "KES": 2,
    "INR": 2,
    "PHP": 2,
    "SGD": 2,
    "HKD": 2,
    "CNY": 2,
    "ILS": 2,
    "AED": 2,
    "SAR": 2,
    "EGP": 2,
    "UAH": 2,
    "GEL": 2,
    "KZT": 2,
    "JPY": 0,
    "KRW": 0,
    "CLP": 0,
    "ISK": 0,
    "VND": 0,
    "XOF": 0,
    "XAF": 0,
    "UGX": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
    "BTC": 8,
}

#: The whole grammar of an amount: ASCII digits, then perhaps a point and more ASCII digits,
#: perhaps after a minus sign (which only an opening balance accepts: every other amount
#: must be positive, a rule its service enforces).  ``\d`` would also take Arabic-Indic or
#: full-width digits (``"١٢"`` is 12 to ``int``), and ``Decimal`` would also take ``"1_000"``,
#: ``"+5"`` and ``"1e3"``: a partner sending any of them has a bug we must not guess around.
_DECIMAL_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")
#: Only these are trimmed from around an amount or a currency code (a form field's stray
#: space); ``str.strip()`` would also trim Unicode spaces.
_ASCII_SPACE = " \t\r\n"

#: The largest single amount kassa accepts, in minor units of any currency: ten billion
#: dollars in cents, ten thousand bitcoin in satoshi.  No subscription bill comes near it,
#: and it keeps a million maximal movements away from :data:`MAX_BALANCE`.
MAX_AMOUNT = 10**12

#: The largest balance a ledger book may hold either way, in minor units.  Both databases
#: store 64-bit integers (up to about 9.2 × 10¹⁸) exactly; past them SQLite silently turns a
#: balance into a float and PostgreSQL fails the statement.  Stopping well short of that
#: also keeps every sum ``kassa check`` takes exact.
MAX_BALANCE = 10**18


def decimals_of(currency: str) -> int:
    """The number of minor-unit decimals of ``currency``; unknown codes are a user error."""
    try:
        return CURRENCY_DECIMALS[currency]
    except KeyError:
        raise UserError("INVALID_CURRENCY", f"unknown currency {currency!r}", "currency") from None


def validate_currency(currency: str, field: str = "currency") -> str:
    """The ISO 4217 code ``currency`` names, upper-cased: every input that takes a currency
    goes through here, so ``"usd"`` is USD everywhere and ``"ınr"`` (a dotless ı, which
    ``upper()`` turns into I) or full-width letters are refused everywhere."""
    code = (currency or "").strip(_ASCII_SPACE)
    if not _CURRENCY_RE.fullmatch(code) or code.upper() not in CURRENCY_DECIMALS:
        raise UserError("INVALID_CURRENCY", f"unknown currency {currency!r}", field)
    return code.upper()


def parse_amount(text: str, currency: str, field: str = "amount") -> int:
    """Parse a decimal string such as ``"12.50"`` into minor units (``1250`` for USD).

    More decimals than the currency has is an error, not a rounding: a partner sending
    ``"1.005"`` USD has a bug we must not hide.  ``currency`` is read as
    :func:`validate_currency` reads it.
    """
    currency = validate_currency(currency)
    digits = decimals_of(currency)
    raw = (text or "").strip(_ASCII_SPACE)
    if not _DECIMAL_RE.fullmatch(raw):
        raise UserError("INVALID_AMOUNT", f"{text!r} is not a decimal amount", field)
    if "." in raw and len(raw.split(".", 1)[1]) > digits:
        raise UserError(
            "TOO_MANY_DECIMALS", f"{currency} amounts have at most {digits} decimals", field
        )
    try:
        value = Decimal(raw).scaleb(digits)
    except InvalidOperation:  # pragma: no cover - the regex already guards this
        raise UserError("INVALID_AMOUNT", f"{text!r} is not a decimal amount", field) from None
    if abs(value) > MAX_AMOUNT:
        raise UserError(
            "AMOUNT_TOO_LARGE",
            f"amounts are at most {format_amount(MAX_AMOUNT, currency)} {currency}",
            field,
        )
    return int(value)


def parse_positive_amount(text: str, currency: str, field: str = "amount") -> int:
    """Like :func:`parse_amount` but the amount must be greater than zero."""
    minor = parse_amount(text, currency, field)
    if minor <= 0:
        raise UserError("AMOUNT_NOT_POSITIVE", "amount must be greater than zero", field)
    return minor


@lru_cache(maxsize=4096)
def format_amount(minor: int, currency: str) -> str:
    """Minor units back to a plain decimal string with exactly the currency's decimals.

    Remembered: a page or an API answer shows the same few amounts again and again (a
    dashboard's ~60 a request), and looking one up costs a tenth of formatting it.
    """
    digits = decimals_of(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(int(minor)), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}" if digits else f"{sign}{whole}"


def apply_rate(minor: int, rate: Decimal | str) -> int:
    """``minor × rate`` rounded once, half-up (away from zero on a tie), to a minor unit.

    ``rate`` is a fraction (``Decimal("0.075")`` for 7.5 %), given as Decimal or string so no
    float ever enters the computation.
    """
    product = Decimal(int(minor)) * Decimal(rate)
    return int(product.quantize(Decimal(1), rounding=ROUND_HALF_UP))


#: A percentage is stored in basis points: ``10000`` is 100.00 %.
BASIS_POINTS = 10_000


def parse_percent(text: str, field: str) -> int:
    """A percentage such as ``"15"``, ``"12.5"`` or ``"12.25"`` in basis points (1225).

    The same ASCII grammar as an amount, with at most two decimals (a basis point), from
    0 to 100 inclusive: a negative or larger rate is ``OUT_OF_RANGE``, never clamped.
    """
    raw = (text or "").strip(_ASCII_SPACE)
    if not _DECIMAL_RE.fullmatch(raw):
        raise UserError("INVALID_PERCENT", f"{text!r} is not a decimal percentage", field)
    if "." in raw and len(raw.split(".", 1)[1]) > 2:
        raise UserError("TOO_MANY_DECIMALS", "percentages have at most 2 decimals", field)
    value = Decimal(raw).scaleb(2)
    if not 0 <= value <= BASIS_POINTS:
        raise UserError("OUT_OF_RANGE", "a percentage is between 0 and 100", field)
    return int(value)


def format_percent(basis_points: int) -> str:
    """Basis points back to a percentage with two decimals: 1225 → ``"12.25"``."""
    whole, frac = divmod(basis_points, 100)
    return f"{whole}.{frac:02d}"


#: An exchange rate has at most this many decimals and is below this bound: enough for any
#: pair of currencies (1 USD is about 16,000 IDR; 1 IDR about 0.0000625 USD), and small
#: enough that a converted :data:`MAX_AMOUNT` stays far from :data:`MAX_BALANCE`.
RATE_DECIMALS = 10
MAX_RATE = Decimal(10**6)


def parse_rate(text: str, field: str = "rate") -> Decimal:
    """An exchange rate such as ``"0.92"`` or ``"16250"``: how many units of one currency
    one unit of another is worth, exactly.

    The same ASCII grammar as an amount, no sign, at most :data:`RATE_DECIMALS` decimals,
    greater than zero and below :data:`MAX_RATE` (``OUT_OF_RANGE``, never clamped).
    """
    raw = (text or "").strip(_ASCII_SPACE)
    if not _DECIMAL_RE.fullmatch(raw) or raw.startswith("-"):
        raise UserError("INVALID_RATE", f"{text!r} is not a decimal rate", field)
    if "." in raw and len(raw.split(".", 1)[1]) > RATE_DECIMALS:
        raise UserError("TOO_MANY_DECIMALS", f"rates have at most {RATE_DECIMALS} decimals", field)
    value = Decimal(raw)
    if not 0 < value < MAX_RATE:
        raise UserError("OUT_OF_RANGE", f"a rate is above 0 and below {MAX_RATE}", field)
    return value


def format_rate(rate: Decimal) -> str:
    """A rate as plain digits without trailing zeros: ``Decimal("0.9200")`` → ``"0.92"``."""
    return format(rate.normalize(), "f")


def convert(minor: int, rate: Decimal, from_currency: str, to_currency: str) -> int:
    """``minor`` units of ``from_currency`` in minor units of ``to_currency`` at ``rate``
    (one unit of the first is ``rate`` of the second), rounded once, half-up: 10.00 EUR at
    1.0857 is 10.857 → 10.86 USD; 1,000 JPY at 0.0062 is 6.20 USD."""
    shift = decimals_of(to_currency) - decimals_of(from_currency)
    return apply_rate(minor, rate.scaleb(shift))


def basis_points_split(gross: int, basis_points: int) -> tuple[int, int]:
    """:func:`percent_split` with the rate in basis points (exact: ``bps × 10⁻⁴``)."""
    return percent_split(gross, Decimal(basis_points).scaleb(-4))


def percent_split(gross: int, rate: Decimal | str) -> tuple[int, int]:
    """Split ``gross`` into ``(net, part)`` where ``part = gross × rate`` half-up.

    ``net + part == gross`` always holds, because net is what is left, not a second rounding.
    """
    part = apply_rate(gross, rate)
    return gross - part, part


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` so the parts add up exactly to ``total``.

    Largest-remainder method: each part is floored, then the leftover minor units go to the
    parts with the largest remainders (earliest first on ties).
    """
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if any(w < 0 for w in weights) or sum(weights) == 0:
        raise ValueError("weights must be non-negative and not all zero")
    weight_sum = sum(weights)
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    parts = [magnitude * w // weight_sum for w in weights]
    remainders = [magnitude * w % weight_sum for w in weights]
    leftover = magnitude - sum(parts)
    for index in sorted(range(len(weights)), key=lambda i: -remainders[i])[:leftover]:
        parts[index] += 1
    return [sign * p for p in parts]


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units of one currency."""

    amount: int
    currency: str

    def __str__(self) -> str:
        return f"{format_amount(self.amount, self.currency)} {self.currency}"

    @property
    def decimal(self) -> str:
        return format_amount(self.amount, self.currency)
