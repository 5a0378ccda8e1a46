"""The card-charge flow (billing/card_charges.py): intent, call, record, and the janitor.

A processor that "dies" (raises a BaseException the flow does not catch, as SIGKILL would end
the process) just before or just after the simulator books a charge stands in for a crash
between the steps; tests/test_collection_crash.py kills real processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime, timedelta
from itertools import pairwise
from typing import ClassVar

import pytest
from sqlalchemy import func, select, update

from billing import card_charges, jobs, payment_methods, payments
from billing.card_charges import JANITOR_JOB, next_check, run_janitor
from billing.db import Database
from billing.errors import UserError
from billing.models import (
    Job,
    JobStatus,
    LedgerTransaction,
    Payment,
    PaymentMethod,
    PaymentStatus,
    TransactionKind,
)
from billing.processing import ChargeRequest, ChargeResult, ProcessorTimeout
from processors import registry
from processors.simulator import SimulatorProcessor
from tests.factories import (
    APPROVE,
    DECLINE,
    T0,
    TIMEOUT,
    Party,
    admin_viewer,
    balance_of,
    card_details,
    new_party,
)

ADMIN = admin_viewer()
FIRST_CHECK = T0 + timedelta(minutes=5)


class Killed(BaseException):
    """The process dies here: nothing after it runs, no ``except Exception`` sees it."""


class DyingProcessor(SimulatorProcessor):
    """The simulator's card network, reached through a process that may die mid-call."""

    name = "dying"
    #: "before" the charge reaches the network, "after" it is booked there, or None.
    die: ClassVar[str | None] = None
    #: While set, lookups get no answer (the processor cannot be reached).
    unreachable: ClassVar[bool] = False

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        if DyingProcessor.die == "before":
            raise Killed
        result = await super().charge(request)
        if DyingProcessor.die == "after":
            raise Killed
        return result

    async def lookup(self, idempotency_key: str) -> ChargeResult | None:
        if DyingProcessor.unreachable:
            raise ProcessorTimeout("no route to the processor")
        return await super().lookup(idempotency_key)


@pytest.fixture(autouse=True)
def dying_processor(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry, "_registered", {})
    registry.register(DyingProcessor.name, DyingProcessor)
    yield
    DyingProcessor.die, DyingProcessor.unreachable = None, False


async def card_at(db: Database, party: Party, number: str = APPROVE) -> int:
    """Store a card that belongs to the dying processor (as if tokenized there)."""
    async with db.transaction() as session:
        card = await payment_methods.add_card(session, ADMIN, party.id, card_details(number))
        await session.execute(
            update(PaymentMethod)
            .where(PaymentMethod.id == card.id)
            .values(processor=DyingProcessor.name)
        )
    return card.id


async def top_up(db: Database, party: Party, amount: int = 100, key: str = "k") -> Payment:
    return await payments.pay_with_payment_method(
        db.transaction, ADMIN, party.id, amount, None, None, key
    )


async def payment_of(db: Database, payment_id: int) -> Payment:
    async with db.session() as session:
        payment = await session.get(Payment, payment_id)
    assert payment is not None
    return payment


async def only_payment(db: Database) -> Payment:
    async with db.session() as session:
        [payment] = (await session.scalars(select(Payment))).all()
    return payment


async def janitor_job(db: Database) -> Job | None:
    async with db.session() as session:
        job: Job | None = await session.scalar(
            select(Job).where(Job.kind == JANITOR_JOB, Job.status == JobStatus.PENDING)
        )
        return job


def network() -> list[tuple[str, ChargeResult]]:
    return SimulatorProcessor().charge_log()


async def payment_transactions(db: Database) -> int:
    async with db.session() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(LedgerTransaction)
                .where(LedgerTransaction.kind == TransactionKind.PAYMENT)
            )
            or 0
        )


# --- crashes ----------------------------------------------------------------------------------


async def test_crash_between_intent_and_call_leaves_an_intent_the_janitor_charges_once(
    db: Database,
) -> None:
    party = await new_party(db)
    await card_at(db, party)
    DyingProcessor.die = "before"
    with pytest.raises(Killed):
        await top_up(db, party)
    DyingProcessor.die = None
    pending = await only_payment(db)
    assert (pending.status, pending.processor, pending.processor_key) == (
        PaymentStatus.PENDING,
        DyingProcessor.name,
        f"payment-{pending.id}",
    )
    assert pending.next_check_at == FIRST_CHECK
    assert network() == []
    # The client retries: the same payment, still pending, and no charge of its own.
    assert (await top_up(db, party)).id == pending.id
    assert network() == []

    await jobs.advance_clock(db, FIRST_CHECK)
    [(key, result)] = network()  # never seen, so sent again: under the same key
    assert key == f"payment-{pending.id}"
    settled = await top_up(db, party)
    assert (settled.id, settled.status, settled.processor_reference) == (
        pending.id,
        PaymentStatus.COMPLETED,
        result.processor_reference,
    )
    assert settled.next_check_at is None
    async with db.session() as session:
        assert await balance_of(session, party.id) == -100
    assert await janitor_job(db) is None  # nothing left open: the janitor retired


async def test_crash_between_call_and_record_is_found_by_lookup_not_charged_again(
    db: Database,
) -> None:
    party = await new_party(db)
    await card_at(db, party)
    DyingProcessor.die = "after"
    with pytest.raises(Killed):
        await top_up(db, party)
    DyingProcessor.die = None
    assert (await only_payment(db)).status == PaymentStatus.PENDING
    assert len(network()) == 1  # the card was charged; kassa has the intent

    report = await run_janitor(db, FIRST_CHECK)
    assert (report.looked_up, report.resent, report.settled) == (1, 0, 1)
    payment = await only_payment(db)
    assert payment.status == PaymentStatus.COMPLETED
    assert len(network()) == 1
    assert await payment_transactions(db) == 1


async def test_the_janitor_settles_many_open_charges_in_one_batch(db: Database) -> None:
    parties = [await new_party(db, name=f"Payer {n}") for n in range(3)]
    for n, party in enumerate(parties):
        await card_at(db, party, TIMEOUT if n == 0 else APPROVE)
        DyingProcessor.die = "after" if n == 1 else "before" if n == 2 else None
        with suppress(Killed):  # the process "dies" for the second and third
            await top_up(db, party, key=f"k{n}")
        DyingProcessor.die = None
    report = await run_janitor(db, FIRST_CHECK)
    assert (report.looked_up, report.resent, report.settled) == (3, 1, 3)
    async with db.session() as session:
        statuses = (await session.scalars(select(Payment.status))).all()
    assert statuses == [PaymentStatus.COMPLETED] * 3
    assert len(network()) == 3


async def test_a_charge_that_is_not_due_for_a_check_is_left_alone(db: Database) -> None:
    party = await new_party(db)
    await card_at(db, party)
    DyingProcessor.die = "before"
    with pytest.raises(Killed):
        await top_up(db, party)
    DyingProcessor.die = None
    report = await run_janitor(db, FIRST_CHECK - timedelta(seconds=1))
    assert report.looked_up == 0
    assert network() == []
    job = await janitor_job(db)
    assert job is not None and job.due_at == FIRST_CHECK


# --- timeouts and the janitor's schedule ------------------------------------------------------


async def test_timeout_is_unknown_until_the_janitor_settles_it_exactly_once(db: Database) -> None:
    party = await new_party(db)
    await card_at(db, party, TIMEOUT)
    payment = await top_up(db, party)
    assert (payment.status, payment.transaction_id) == (PaymentStatus.UNKNOWN, None)
    assert payment.message is not None and "not confirmed" in payment.message
    async with db.session() as session:
        assert await balance_of(session, party.id) == 0

    await jobs.advance_clock(db, FIRST_CHECK + timedelta(minutes=1))
    assert (await payment_of(db, payment.id)).status == PaymentStatus.COMPLETED
    again = await run_janitor(db, FIRST_CHECK + timedelta(days=3))
    assert (again.looked_up, again.settled, again.still_open) == (0, 0, 0)
    assert await payment_transactions(db) == 1
    assert len(network()) == 1


def test_checks_come_after_five_minutes_an_hour_then_daily() -> None:
    opened = datetime(2026, 3, 16, 12, 0, tzinfo=T0.tzinfo)
    five = opened + timedelta(minutes=5)
    hour = five + timedelta(hours=1)
    assert next_check(opened, opened) == five
    assert next_check(opened, five) == hour
    assert next_check(opened, hour) == hour + timedelta(days=1)
    # A janitor that was down for days resumes on the daily marks, without a burst.
    assert next_check(opened, hour + timedelta(days=3, hours=2)) == hour + timedelta(days=4)


async def test_the_janitor_asks_again_on_its_schedule_and_never_charges_anew(
    db: Database,
) -> None:
    party = await new_party(db)
    await card_at(db, party, TIMEOUT)
    payment = await top_up(db, party)
    DyingProcessor.unreachable = True
    marks = [FIRST_CHECK, FIRST_CHECK + timedelta(hours=1)]
    marks.append(marks[-1] + timedelta(days=1))
    marks.append(marks[-1] + timedelta(days=1))
    for at, following in pairwise(marks):
        await jobs.advance_clock(db, at)
        still = await payment_of(db, payment.id)
        assert (still.status, still.next_check_at) == (PaymentStatus.UNKNOWN, following)
        job = await janitor_job(db)
        assert job is not None and job.due_at == following
    assert len(network()) == 1
    DyingProcessor.unreachable = False
    await jobs.advance_clock(db, marks[-1])
    assert (await payment_of(db, payment.id)).status == PaymentStatus.COMPLETED
    assert len(network()) == 1


# --- answers ----------------------------------------------------------------------------------


async def test_a_decline_is_failed_at_once_and_leaves_nothing_for_the_janitor(
    db: Database,
) -> None:
    party = await new_party(db)
    await card_at(db, party, DECLINE)
    payment = await top_up(db, party)
    assert (payment.status, payment.decline_code, payment.next_check_at) == (
        PaymentStatus.FAILED,
        "card_declined",
        None,
    )
    error = payments.payment_error(payment)
    assert error is not None and error.code == "CARD_DECLINED"
    report = await run_janitor(db, FIRST_CHECK)
    assert (report.looked_up, report.still_open) == (0, 0)
    assert await janitor_job(db) is None
    assert await payment_transactions(db) == 0


async def test_a_request_the_processor_refuses_is_a_decline(db: Database) -> None:
    party = await new_party(db)
    card_id = await card_at(db, party)
    async with db.transaction() as session:
        await session.execute(
            update(PaymentMethod).where(PaymentMethod.id == card_id).values(token="forged")
        )
    payment = await top_up(db, party)
    assert (payment.status, payment.decline_code) == (PaymentStatus.FAILED, "invalid_token")
    assert network() == []


async def test_a_replay_returns_the_same_payment_and_other_arguments_are_refused(
    db: Database,
) -> None:
    party = await new_party(db)
    await card_at(db, party)
    first = await top_up(db, party, 100, key="same")
    again = await top_up(db, party, 100, key="same")
    assert (again.id, again.status) == (first.id, PaymentStatus.COMPLETED)
    with pytest.raises(UserError) as refused:
        await top_up(db, party, 200, key="same")
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert len(network()) == 1


async def test_the_flow_can_run_inside_one_transaction_for_the_demo(db: Database) -> None:
    party = await new_party(db)
    await card_at(db, party)
    async with db.transaction() as session:
        payment = await payments.pay_with_payment_method(
            card_charges.within(session), ADMIN, party.id, 100, None, None, "k"
        )
        assert payment.status == PaymentStatus.COMPLETED
    async with db.session() as session:
        assert await balance_of(session, party.id) == -100
