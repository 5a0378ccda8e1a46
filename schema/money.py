"""Money as the API shows it: a decimal string and a currency, never a float.

Amounts come in as decimal strings and are parsed against the currency they are meant in
(:func:`billing.money.parse_amount`), so ``"1.005"`` USD is refused with
``TOO_MANY_DECIMALS`` rather than rounded.
"""

from __future__ import annotations

import strawberry

from billing.money import format_amount


@strawberry.type(description="An exact amount: `amount` is a decimal string in `currency`.")
class Money:
    amount: str
    currency: str

    @classmethod
    def of(cls, minor: int, currency: str) -> Money:
        """From integer minor units (cents, satoshi) of ``currency``."""
        return cls(amount=format_amount(minor, currency), currency=currency)
