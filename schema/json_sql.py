"""The API's leaf values rendered by PostgreSQL, exactly as the API renders them in Python.

For :mod:`schema.json_reads`, which has PostgreSQL build a whole answer's JSON: each
function here is the SQL twin of one Python rendering, and ``tests/test_json_reads.py``
holds every twin to its original on values at the edges (negative amounts, every
currency's decimals, instants with and without microseconds, ids of 18 digits).

* a global id, :func:`schema.relay.encode_id`: ``base64("Type:pk")``;
* an amount, :func:`billing.money.format_amount`: a plain decimal string with exactly the
  currency's decimals;
* an instant, GraphQL's ``DateTime`` (``datetime.isoformat`` of an aware UTC value): the
  microseconds only when there are any, the offset ``+00:00``;
* a day, GraphQL's ``Date`` (``date.isoformat``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Numeric, String, case, cast, func, literal_column
from sqlalchemy.sql.elements import ColumnElement

from billing.money import CURRENCY_DECIMALS

#: The decimals most currencies have; the others are named in the amount's ``CASE``.
_USUAL_DECIMALS = 2


def constant(value: str) -> ColumnElement[str]:
    """A constant string written into the SQL: only this module's own and GraphQL names
    (a response key, a type's name), which hold no quote."""
    if "'" in value:
        raise ValueError(f"not a constant for SQL: {value!r}")
    return literal_column(f"'{value}'", String)


def number(value: int) -> ColumnElement[int]:
    """A constant integer written into the SQL."""
    return literal_column(str(int(value)), BigInteger)


def global_id(type_name: str, pk: ColumnElement[Any]) -> ColumnElement[str]:
    """``encode_id(type_name, pk)``.  PostgreSQL's base64 breaks lines after 76 characters;
    an id (a type's name and at most 19 digits) is far shorter."""
    text = constant(f"{type_name}:") + cast(pk, String)
    return func.encode(func.convert_to(text, constant("UTF8")), constant("base64"), type_=String)


def amount(minor: ColumnElement[int], currency: ColumnElement[str]) -> ColumnElement[str]:
    """``format_amount(minor, currency)``: the integer for a currency without decimals;
    otherwise minor units times the currency's unit (``0.01`` for cents) as a ``numeric``,
    whose product has exactly as many decimals as its factors: ``-50`` is ``-0.50``."""
    units: dict[int, list[ColumnElement[str]]] = {}
    for code, decimals in sorted(CURRENCY_DECIMALS.items()):
        units.setdefault(decimals, []).append(constant(code))
    whole = units.pop(0, [])
    units.pop(_USUAL_DECIMALS)
    usual = _unit(_USUAL_DECIMALS)
    unit = case(
        *((currency.in_(codes), _unit(decimals)) for decimals, codes in sorted(units.items())),
        else_=usual,
    )
    return case(
        (currency.in_(whole), cast(minor, String)),
        else_=cast(cast(minor, Numeric) * unit, String),
    )


def _unit(decimals: int) -> ColumnElement[Decimal]:
    """One minor unit of a currency with ``decimals`` decimals, as a ``numeric`` constant."""
    return literal_column(f"0.{'0' * (decimals - 1)}1", Numeric)


def instant(value: ColumnElement[Any]) -> ColumnElement[str]:
    """An aware UTC instant as ``datetime.isoformat`` writes it: no fraction when the
    microseconds are zero."""
    text = func.to_char(
        func.timezone(constant("UTC"), value), constant('YYYY-MM-DD"T"HH24:MI:SS.US+00:00')
    )
    return func.replace(text, constant(".000000+"), constant("+"), type_=String)


def day(value: ColumnElement[Any]) -> ColumnElement[str]:
    """A date as ``date.isoformat`` writes it."""
    return func.to_char(value, constant("YYYY-MM-DD"), type_=String)
