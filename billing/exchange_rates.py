"""Exchange rates: what one unit of a currency is worth in another, as the provider's
administrators set it.

kassa fetches no rates: a distributor may serve customers of another currency only once a
rate from the customers' currency to its own is set (:func:`billing.commissions.split_for`
converts with it), and anything else is ``CURRENCY_MISMATCH``.  The rates are
installation-wide — one table for the provider and its resellers — so only the provider's
own administrators set them; every administrator may read them.  A rate is kept as the exact
decimal string it was given and read back as a ``Decimal``: no float anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock
from billing.access import Viewer, require_provider_admin, require_staff
from billing.errors import UserError
from billing.models import ExchangeRate
from billing.money import format_rate, parse_rate, validate_currency


async def set_exchange_rate(
    session: AsyncSession, viewer: Viewer, from_currency: str, to_currency: str, rate: str
) -> ExchangeRate:
    """Set (or change) the rate from one currency to another; sales and collections from
    then on convert at it, those already booked keep the rate they recorded."""
    require_provider_admin(viewer)
    source = validate_currency(from_currency, "from")
    target = validate_currency(to_currency, "to")
    if source == target:
        raise UserError("SAME_CURRENCY", "a rate converts between two currencies", "to")
    value = format_rate(parse_rate(rate))
    now = await clock.now(session)
    row = await session.scalar(
        select(ExchangeRate).where(
            ExchangeRate.from_currency == source, ExchangeRate.to_currency == target
        )
    )
    if row is None:
        row = ExchangeRate(from_currency=source, to_currency=target, rate=value, updated_at=now)
        session.add(row)
    else:
        row.rate, row.updated_at = value, now
    await session.flush()
    return row


async def exchange_rates(session: AsyncSession, viewer: Viewer) -> Sequence[ExchangeRate]:
    """Every rate set, by currency pair; for administrators."""
    require_staff(viewer)
    query = select(ExchangeRate).order_by(ExchangeRate.from_currency, ExchangeRate.to_currency)
    return (await session.scalars(query)).all()


async def rate_for(session: AsyncSession, from_currency: str, to_currency: str) -> Decimal | None:
    """The rate set from one currency to the other, or ``None`` when none is."""
    text = await session.scalar(
        select(ExchangeRate.rate).where(
            ExchangeRate.from_currency == from_currency, ExchangeRate.to_currency == to_currency
        )
    )
    return None if text is None else Decimal(text)
