"""Price polling (billing.bitcoin_prices): saving HTTP rates schedules a poll; a poll stores
each price with its fetch time, through the real HTTP price source against a loopback
server (development allows private targets); a failure backs off and logs no URL; a polled
rate older than 30 minutes is not used, and a payment then waits with NO_BITCOIN_RATE."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billing import bitcoin, clock
from billing.bitcoin_payments import RATE_MAX_AGE, latest_rate
from billing.bitcoin_prices import POLL_EVERY, backoff, bitcoin_price_job, to_minor_per_btc
from billing.bitcoin_wallets import PRICE_JOB, PriceEndpoint, WalletInput, set_wallet
from billing.db import Database
from billing.models import BitcoinRateSource, Job, JobStatus, Rate
from settings import Settings
from tests.bitcoin_chain import LiveServer, serving
from tests.bitcoin_keys import TESTNET_VPUB
from tests.factories import T0, admin_viewer, freeze_clock
from wallets.prices import HttpPriceSource

KEY = "bitcoin_prices:provider"


class Prices:
    """A price server: USD at /usd (``data.amount``), EUR at /eur (``0.price``)."""

    def __init__(self) -> None:
        self.usd = "65000.125"
        self.failing = False

    def app(self) -> Starlette:
        async def usd(request: Request) -> Response:
            if self.failing:
                return Response("down", status_code=503)
            return JSONResponse({"data": {"amount": self.usd}})

        async def eur(request: Request) -> Response:
            return JSONResponse([{"price": 60000.5}])

        return Starlette(routes=[Route("/usd", usd), Route("/eur", eur)])


@pytest.fixture
def prices() -> Iterator[tuple[Prices, LiveServer]]:
    fake = Prices()
    with serving(fake.app()) as server:
        yield fake, server


@pytest.fixture
async def dev_db(settings: Settings, db: Database) -> AsyncIterator[Database]:
    """The test database as development sees it: http:// price endpoints on loopback are
    allowed there, and the price source fetches them."""
    database = Database(settings.with_(environment="development"))
    watcher = bitcoin.chain_watcher()
    bitcoin.use_chain(watcher, HttpPriceSource(allow_private=True))
    yield database
    await database.dispose()
    bitcoin.use_chain(watcher, HttpPriceSource(allow_private=False))


async def _set_http_rates(db: Database, server: LiveServer, query: str = "") -> None:
    await freeze_clock(db)
    async with db.transaction() as session:
        await set_wallet(
            session,
            admin_viewer(),
            WalletInput(
                TESTNET_VPUB,
                rate_source=BitcoinRateSource.HTTP,
                price_endpoints=[
                    PriceEndpoint("USD", f"{server.url}/usd{query}", "data.amount"),
                    PriceEndpoint("EUR", f"{server.url}/eur", "0.price"),
                ],
            ),
        )


async def _pending(db: Database) -> Job | None:
    async with db.session() as session:
        return await session.scalar(
            select(Job).where(Job.unique_key == KEY, Job.status == JobStatus.PENDING)
        )


async def _rates(db: Database) -> list[tuple[str, int, datetime]]:
    async with db.session() as session:
        rows = await session.scalars(select(Rate).order_by(Rate.id))
        return [(r.currency, r.minor_per_btc, r.fetched_at) for r in rows]


def test_a_price_is_rounded_half_up_to_the_minor_unit() -> None:
    from decimal import Decimal

    assert to_minor_per_btc(Decimal("65000.125"), "USD") == 6_500_013
    assert to_minor_per_btc(Decimal("65000.124"), "USD") == 6_500_012
    assert to_minor_per_btc(Decimal("9800000.4"), "JPY") == 9_800_000


def test_failures_back_off_up_to_half_an_hour() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [timedelta(minutes=m) for m in (1, 2, 4)]
    assert backoff(20) == timedelta(minutes=30)


async def test_saving_http_rates_schedules_a_poll_that_stores_prices(
    dev_db: Database, prices: tuple[Prices, LiveServer]
) -> None:
    _, server = prices
    await _set_http_rates(dev_db, server)
    job = await _pending(dev_db)
    assert job is not None and job.kind == PRICE_JOB and job.due_at == T0
    assert await _rates(dev_db) == []  # nothing until the first poll

    await bitcoin_price_job(dev_db, json.loads(job.payload), T0)
    assert sorted(await _rates(dev_db)) == [("EUR", 6_000_050, T0), ("USD", 6_500_013, T0)]
    job = await _pending(dev_db)
    assert job is not None and job.due_at == T0 + POLL_EVERY
    assert json.loads(job.payload)["failures"] == 0


async def test_a_polled_rate_is_used_for_thirty_minutes_only(
    dev_db: Database, prices: tuple[Prices, LiveServer]
) -> None:
    _, server = prices
    await _set_http_rates(dev_db, server)
    await bitcoin_price_job(dev_db, {"owner_key": "provider"}, T0)
    async with dev_db.session() as session:
        fresh = await latest_rate(session, None, "USD", T0 + RATE_MAX_AGE)
        stale = await latest_rate(session, None, "USD", T0 + RATE_MAX_AGE + timedelta(seconds=1))
    assert fresh is not None and fresh.minor_per_btc == 6_500_013
    assert stale is None


async def test_a_failing_endpoint_backs_off_stores_the_rest_and_logs_no_url(
    dev_db: Database, prices: tuple[Prices, LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    fake, server = prices
    await _set_http_rates(dev_db, server, query="?apikey=SECRET-KEY")
    fake.failing = True
    with caplog.at_level(logging.WARNING, logger="kassa.billing.bitcoin_prices"):
        await bitcoin_price_job(dev_db, {"owner_key": "provider"}, T0)
    assert [c for c, _, _ in await _rates(dev_db)] == ["EUR"]
    job = await _pending(dev_db)
    assert job is not None and job.due_at == T0 + backoff(1)
    assert json.loads(job.payload)["failures"] == 1
    assert "USD" in caplog.text and "503" in caplog.text
    assert "SECRET-KEY" not in caplog.text and server.url not in caplog.text

    later = T0 + backoff(1)
    await bitcoin_price_job(dev_db, json.loads(job.payload), later)
    job = await _pending(dev_db)
    assert job is not None and job.due_at == later + backoff(2)
    fake.failing = False
    await bitcoin_price_job(dev_db, json.loads(job.payload), later + backoff(2))
    job = await _pending(dev_db)
    assert job is not None and json.loads(job.payload)["failures"] == 0


async def test_switching_to_fixed_rates_retires_the_poll_and_a_fixed_rate_is_not_used_after(
    dev_db: Database, prices: tuple[Prices, LiveServer]
) -> None:
    _, server = prices
    await freeze_clock(dev_db)
    async with dev_db.transaction() as session:
        await set_wallet(
            session, admin_viewer(), WalletInput(TESTNET_VPUB, fixed_rates=[("USD", "1")])
        )
    await _set_http_rates(dev_db, server)
    async with dev_db.session() as session:
        now = await clock.now(session)
        # The old fixed rate is not used once rates come from the endpoints.
        assert await latest_rate(session, None, "USD", now) is None
    async with dev_db.transaction() as session:
        await set_wallet(
            session, admin_viewer(), WalletInput(TESTNET_VPUB, fixed_rates=[("USD", "2")])
        )
    await bitcoin_price_job(dev_db, {"owner_key": "provider"}, T0)
    assert await _pending(dev_db) is None
    assert [(c, m) for c, m, _ in await _rates(dev_db)] == [("USD", 100), ("USD", 200)]
