"""The collection run survives SIGKILL at any point: no invoice is charged twice, none is
forgotten.

Each round starts a run in a subprocess (``tests/collection_crash_worker.py``) against this
test's database and kills it with SIGKILL a random moment after it is ready — while claiming,
while charges are on the wire (the simulator books a charge half-way through its latency, so
some are charged with no answer recorded), while recording.  The simulator keeps its charges
in an SQLite file, the stand-in for the card network's memory, which outlives every kill.
After the rounds, runs go to the end until every attempt has its outcome, and then the card
network, the attempts, the payments and the invoices must all agree.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from billing import clock
from billing.collection import SettingsInput
from billing.customers import create_customer_class
from billing.db import Database
from billing.invoices import close_period_out_of_turn
from billing.models import (
    AttemptStatus,
    CardCharging,
    CollectionAttempt,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Payment,
)
from billing.payment_methods import add_card
from billing.processing import ChargeOutcome
from processors.simulator import SimulatorProcessor
from settings import Settings
from tests.factories import (
    APPROVE,
    DECLINE,
    TIMEOUT,
    admin_viewer,
    card_details,
    make_account,
    make_charge_at,
    make_customer,
)

INVOICES = 150
KILLS = 22
LATENCY_MS = 60
NOW = datetime(2029, 6, 1, 10, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def _card_for(n: int) -> str:
    """Mostly approving cards; every 10th declines, every 15th times out (then is found)."""
    return DECLINE if n % 10 == 3 else TIMEOUT if n % 15 == 7 else APPROVE


async def _seed(db: Database) -> dict[int, str]:
    """INVOICES customers, each with a card and an out-of-turn invoice charged upon issue;
    returns each invoice's card number."""
    cards = {}
    async with db.transaction() as session:
        await clock.freeze(session, NOW)
        cls = await create_customer_class(
            session,
            admin_viewer(),
            "Crash",
            0,
            7,
            {InvoiceKind.OUT_OF_TURN: SettingsInput(card_charging=CardCharging.ON_ISSUE)},
        )
    for n in range(INVOICES):
        async with db.transaction() as session:
            customer = await make_customer(session, class_id=cls.id, auto_payment=True)
            account = await make_account(session, customer)
            await add_card(session, admin_viewer(), customer.id, card_details(_card_for(n)))
            await make_charge_at(session, account, 1000 + n, NOW)
            invoice = await close_period_out_of_turn(session, admin_viewer(), customer.id)
            cards[invoice.id] = _card_for(n)
    return cards


async def _run(settings: Settings, state_file: Path, kill_after: float | None) -> bool:
    """One run in a subprocess, SIGKILLed ``kill_after`` seconds after it is ready (or let
    finish when None).  Returns whether it got to the end."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.collection_crash_worker",
        settings.database_url,
        str(state_file),
        str(LATENCY_MS),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    ready = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    assert ready.strip() == b"ready", ready
    if kill_after is not None:
        try:
            done = await asyncio.wait_for(process.stdout.readline(), timeout=kill_after)
        except TimeoutError:
            process.send_signal(signal.SIGKILL)
            await process.wait()
            return False
        await process.wait()
        return done.startswith(b"done")
    done = await asyncio.wait_for(process.stdout.readline(), timeout=120)
    assert await process.wait() == 0
    return done.startswith(b"done")


async def test_killed_runs_never_charge_twice_and_forget_nothing(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    cards = await _seed(db)
    state_file = tmp_path / "card-network.sqlite"
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    killed = 0
    for _ in range(KILLS):
        killed += not await _run(settings, state_file, chance.uniform(0.02, 0.45))
    assert killed >= 20, f"only {killed} runs were killed mid-way (seed {seed})"
    for _ in range(3):  # a timeout met in the last run is reconciled by the next
        assert await _run(settings, state_file, None)

    async with db.session() as session:
        attempts = {a.id: a for a in (await session.scalars(select(CollectionAttempt))).all()}
        invoices = {i.id: i for i in (await session.scalars(select(Invoice))).all()}
        payments = (
            await session.scalars(select(Payment).where(Payment.processor.is_not(None)))
        ).all()
    network = SimulatorProcessor(state_file=str(state_file)).charge_log()

    # The card network: one charge per attempt key at most, one success per invoice at most.
    keys = Counter(key for key, _ in network)
    assert max(keys.values()) == 1
    succeeded = Counter(
        attempts[int(key.removeprefix("attempt-"))].invoice_id
        for key, result in network
        if result.status == ChargeOutcome.SUCCEEDED
    )
    assert max(succeeded.values()) == 1, f"an invoice was charged twice (seed {seed})"

    # Nothing forgotten: every attempt has its outcome, every payable invoice is paid once.
    assert {a.status for a in attempts.values()} <= {
        AttemptStatus.SUCCEEDED,
        AttemptStatus.FAILED,
    }, f"seed {seed}"
    by_invoice = Counter(p.invoice_id for p in payments)
    for invoice_id, card in cards.items():
        invoice = invoices[invoice_id]
        if card == DECLINE:
            assert (invoice.status, by_invoice[invoice_id]) == (InvoiceStatus.UNPAID, 0)
            assert succeeded[invoice_id] == 0
        else:
            assert (invoice.status, by_invoice[invoice_id], succeeded[invoice_id]) == (
                InvoiceStatus.PAID,
                1,
                1,
            ), f"invoice {invoice_id} (seed {seed})"
    charged = sum(r.amount for _, r in network if r.status == ChargeOutcome.SUCCEEDED)
    assert (
        charged
        == sum(p.amount for p in payments)
        == sum(i.total for i in invoices.values() if cards[i.id] != DECLINE)
    )
