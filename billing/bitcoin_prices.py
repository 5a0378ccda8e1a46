"""Polling the price endpoints of owners whose exchange rates come from HTTP.

One job per such owner (unique key :func:`billing.bitcoin_wallets.price_job_key`), scheduled
when the owner saves HTTP rates and every :data:`POLL_EVERY` after.  It asks the wired
:class:`billing.bitcoin.PriceSource` (``wallets.prices``: https only, public addresses, no
redirects, 256 KiB) for every endpoint and stores each price as a new ``rates`` row with the
time it was fetched.  When an endpoint fails, the prices that did come are still stored and
the job is tried again sooner than it would wait for a normal poll, then backing off
(:func:`backoff`) up to :data:`BACKOFF_MAX`; the failure is logged by currency, never with
the URL (which may carry the endpoint's API key).

What a rate is good for is decided in :func:`billing.bitcoin_payments.latest_rate`: a polled
rate older than :data:`billing.bitcoin_payments.RATE_MAX_AGE` is not used, so a payment that
arrives while the endpoint is down waits (``NO_BITCOIN_RATE``, a run failure retried by the
next scan) instead of being converted at an old price.

The fetch runs outside any transaction (a detached job): an endpoint taking its full timeout
holds no database connection.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select

from billing import bitcoin, money
from billing.bitcoin import PriceUnavailable
from billing.bitcoin_wallets import PRICE_JOB, price_endpoints_of, price_job_key
from billing.db import Database
from billing.jobs import detached_handler, reschedule, schedule
from billing.models import BitcoinRateSource, BitcoinSettings, Job, JobStatus, Rate

log = logging.getLogger("kassa.billing.bitcoin_prices")

#: How often prices are fetched while the endpoints answer.
POLL_EVERY = timedelta(minutes=5)
#: The first retry after a failure; it doubles with each failure in a row.
RETRY_FIRST = timedelta(minutes=1)
BACKOFF_MAX = timedelta(minutes=30)


def backoff(failures: int) -> timedelta:
    """How long to wait after ``failures`` polls in a row that did not get every price."""
    return min(RETRY_FIRST * (1 << min(failures - 1, 16)), BACKOFF_MAX)


def to_minor_per_btc(price: Decimal, currency: str) -> int:
    """A price of one bitcoin in ``currency`` as minor units, half-up: 65000.005 → 6500001."""
    minor = (price.scaleb(money.decimals_of(currency))).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(minor)


@dataclass
class PollReport:
    stored: int = 0
    failed: int = 0


async def poll_owner(db: Database, owner_key: str, now: datetime) -> PollReport | None:
    """Fetch and store the owner's prices; None when it no longer polls (no settings, or
    its rates are fixed now)."""
    async with db.session() as session:
        row = await session.get(BitcoinSettings, owner_key)
        if row is None or row.rate_source != BitcoinRateSource.HTTP:
            return None
        endpoints = price_endpoints_of(session, row)
    source = bitcoin.price_source()
    report = PollReport()
    fetched: list[Rate] = []
    for endpoint in endpoints:
        try:
            if source is None:
                raise PriceUnavailable("no price source is configured")
            price = await source.price(endpoint.url, endpoint.json_path)
            minor = to_minor_per_btc(price, endpoint.currency)
            if minor <= 0:
                raise PriceUnavailable("the price rounds to nothing")
        except PriceUnavailable as error:
            report.failed += 1
            log.warning(
                "bitcoin price for %s of %s not fetched: %s", endpoint.currency, owner_key, error
            )
            continue
        fetched.append(
            Rate(
                owner_key=owner_key,
                currency=endpoint.currency,
                minor_per_btc=minor,
                source=BitcoinRateSource.HTTP,
                fetched_at=now,
            )
        )
    if fetched:
        async with db.transaction() as session:
            session.add_all(fetched)
    report.stored = len(fetched)
    return report


async def _set_next(db: Database, owner_key: str, due_at: datetime | None, failures: int) -> None:
    key = price_job_key(owner_key)
    async with db.transaction() as session:
        if due_at is None:

            async def never(_: Any) -> None:
                return None

            await reschedule(session, PRICE_JOB, key, never)
            return
        job = await session.scalar(
            select(Job).where(Job.unique_key == key, Job.status == JobStatus.PENDING)
        )
        payload = {"owner_key": owner_key, "failures": failures}
        if job is None:
            await schedule(session, PRICE_JOB, due_at, payload, unique_key=key)
        else:
            job.due_at = due_at
            job.payload = json.dumps({**json.loads(job.payload), **payload})


@detached_handler(PRICE_JOB)
async def bitcoin_price_job(db: Database, payload: dict[str, Any], now: datetime) -> None:
    owner_key = str(payload["owner_key"])
    report = await poll_owner(db, owner_key, now)
    if report is None:
        await _set_next(db, owner_key, None, 0)
    elif report.failed:
        failures = int(payload.get("failures", 0)) + 1
        await _set_next(db, owner_key, now + backoff(failures), failures)
    else:
        await _set_next(db, owner_key, now + POLL_EVERY, 0)
