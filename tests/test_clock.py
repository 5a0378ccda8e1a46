"""The test clock: frozen, or running with wall time at an offset so that scheduled work falls
due by itself.  Wall time is a fake the tests move, so minutes pass without sleeping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from billing import clock, jobs
from billing.db import Database
from billing.errors import UserError
from billing.models import Payment, PaymentStatus
from schema.relay import encode_id
from tests.factories import T0, TIMEOUT, freeze_clock, issue_invoice, new_party, store_card
from tests.graphql_support import Api

pytest_plugins = ["tests.graphql_fixtures"]

CLOCK = "testClock { now frozen running }"


@dataclass
class Wall:
    """A wall clock that moves only when told."""

    at: datetime

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> Wall:
    fake = Wall(datetime(2027, 5, 3, 8, 0, tzinfo=UTC))
    monkeypatch.setattr(clock, "wall_now", fake)
    return fake


async def _now(db: Database) -> datetime:
    async with db.session() as session:
        return await clock.now(session)


async def test_a_clock_never_set_is_the_wall_clock(db: Database, wall: Wall) -> None:
    assert await _now(db) == wall.at
    async with db.session() as session:
        assert not await clock.is_frozen(session)


async def test_a_running_clock_goes_on_from_where_it_stood_with_wall_time(
    db: Database, wall: Wall
) -> None:
    await freeze_clock(db, T0)
    wall.advance(timedelta(hours=3))
    assert await _now(db) == T0  # frozen: wall time passes it by
    async with db.transaction() as session:
        await clock.run(session)
    assert await _now(db) == T0
    wall.advance(timedelta(minutes=10))
    assert await _now(db) == T0 + timedelta(minutes=10)
    async with db.transaction() as session:
        assert await clock.stop(session) == T0 + timedelta(minutes=10)
    wall.advance(timedelta(days=1))
    assert await _now(db) == T0 + timedelta(minutes=10)


async def test_a_running_clock_is_not_frozen_back_in_time(db: Database, wall: Wall) -> None:
    await freeze_clock(db, T0)
    async with db.transaction() as session:
        await clock.run(session)
    wall.advance(timedelta(minutes=5))
    with pytest.raises(UserError) as refused:
        async with db.transaction() as session:
            await clock.freeze(session, T0 + timedelta(minutes=4))
    assert refused.value.code == "CLOCK_BACKWARDS"
    async with db.transaction() as session:
        await clock.freeze(session, T0 + timedelta(minutes=5))
    assert await _now(db) == T0 + timedelta(minutes=5)


async def _payment_id(db: Database, invoice_id: int) -> int:
    async with db.session() as session:
        payment_id = await session.scalar(
            select(Payment.id).where(Payment.invoice_id == invoice_id)
        )
    assert payment_id is not None
    return payment_id


async def _payment_status(db: Database, payment_id: int) -> PaymentStatus:
    async with db.session() as session:
        status = await session.scalar(select(Payment.status).where(Payment.id == payment_id))
    assert status is not None
    return status


async def test_a_timed_out_card_payment_settles_by_itself_once_the_clock_runs(
    db: Database, api: Api, wall: Wall
) -> None:
    """The demo's case: the reconciliation is scheduled minutes ahead of the payment."""
    party = await new_party(db)
    await store_card(db, party, TIMEOUT)
    invoice = await issue_invoice(db, party, 2500)
    paid = await api.mutate(
        "payInvoice",
        {"invoiceId": encode_id("Invoice", invoice.id), "idempotencyKey": "pay-1"},
        "payment { id status }",
    )
    assert paid["payment"]["status"] == "UNKNOWN", paid
    payment_id = await _payment_id(db, invoice.id)

    # Frozen, the check never falls due however long one waits.
    wall.advance(timedelta(hours=1))
    await jobs.run_due(db)
    assert await _payment_status(db, payment_id) == PaymentStatus.UNKNOWN

    started = await api.mutate("advanceTestClock", {"running": True}, CLOCK)
    assert started["errors"] == [] and started["testClock"]["running"] is True
    for _ in range(15):  # the worker's rounds, a minute of wall time apart
        wall.advance(timedelta(minutes=1))
        await jobs.run_due(db)
        if await _payment_status(db, payment_id) == PaymentStatus.COMPLETED:
            break
    else:
        pytest.fail("the payment was still not settled after 15 minutes")
    assert T0 < await _now(db) <= T0 + timedelta(minutes=15)


async def test_advance_test_clock_keeps_the_mode_or_sets_it(
    db: Database, api: Api, wall: Wall
) -> None:
    await freeze_clock(db, T0)
    later = T0 + timedelta(days=2)
    moved = await api.mutate("advanceTestClock", {"to": later.isoformat()}, CLOCK)
    assert moved["testClock"] == {"now": later.isoformat(), "frozen": True, "running": False}

    running = await api.mutate("advanceTestClock", {"running": True}, CLOCK)
    assert running["testClock"] == {"now": later.isoformat(), "frozen": False, "running": True}
    wall.advance(timedelta(minutes=30))
    furthest = later + timedelta(days=1)
    moved = await api.mutate("advanceTestClock", {"to": furthest.isoformat()}, CLOCK)
    assert moved["testClock"]["running"] is True  # moved on, and still running from there
    wall.advance(timedelta(minutes=1))
    assert await _now(db) == furthest + timedelta(minutes=1)

    frozen = await api.mutate("advanceTestClock", {"running": False}, CLOCK)
    assert frozen["testClock"] == {
        "now": (furthest + timedelta(minutes=1)).isoformat(),
        "frozen": True,
        "running": False,
    }
    back = await api.mutate("advanceTestClock", {"to": later.isoformat()}, CLOCK)
    assert [error["code"] for error in back["errors"]] == ["CLOCK_BACKWARDS"]
