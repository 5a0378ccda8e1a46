"""Card charges survive SIGKILL at any point: no card is charged twice, no charge is
forgotten — in the collection run and in the ``payInvoice``/``topUp`` mutations alike.

Each round starts a worker in a subprocess (``tests/collection_crash_worker.py``) against
this test's database and kills it with SIGKILL a random moment after it is ready — while
claiming or opening an intent, while charges are on the wire (the simulator books a charge
half-way through its latency, so some are charged with no answer recorded), while recording.
The simulator keeps its charges in an SQLite file, the stand-in for the card network's
memory, which outlives every kill.  After the rounds, runs go to the end (the mutations are
sent again with their idempotency keys, as a client retrying would), the card-charge janitor
reconciles what the kills left open, and then the card network, the attempts, the payments
and the invoices must all agree: every charge the network made is a COMPLETED payment, once.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
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
    IdempotencyRecord,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Payment,
    PaymentStatus,
)
from billing.payment_methods import add_card
from billing.processing import ChargeOutcome
from processors.simulator import SimulatorProcessor
from schema.relay import encode_id
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
#: Customers paying by hand (payInvoice or topUp, alternately) and the kills among them.
PAYERS = 40
PAY_KILLS = 8
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


async def _seed_payers(db: Database, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """PAYERS customers with a card and an invoice nobody collects (no class: never charged);
    the even ones pay the invoice, the odd ones top up.  Returns the operations' file and
    each operation's card number by idempotency key."""
    ops: list[dict[str, object]] = []
    cards = {}
    for n in range(PAYERS):
        async with db.transaction() as session:
            customer = await make_customer(session)
            account = await make_account(session, customer)
            await add_card(session, admin_viewer(), customer.id, card_details(_card_for(n)))
            await make_charge_at(session, account, 700 + n, NOW)
            invoice = await close_period_out_of_turn(session, admin_viewer(), customer.id)
        key = f"payer-{n}"
        if n % 2 == 0:
            kind, fields = "payInvoice", {"invoiceId": str(encode_id("Invoice", invoice.id))}
        else:
            kind = "topUp"
            fields = {
                "customerId": str(encode_id("Customer", customer.id)),
                "amount": f"{5 + n}.00",
            }
        ops.append({"kind": kind, "input": {**fields, "idempotencyKey": key}})
        cards[key] = _card_for(n)
    path = tmp_path / "payments.json"
    path.write_text(json.dumps(ops))
    return path, cards


async def _run(settings: Settings, state_file: Path, kill_after: float | None, *mode: str) -> bool:
    """One worker in a subprocess (``mode``: collect, pay or janitor and its argument),
    SIGKILLed ``kill_after`` seconds after it is ready (or let finish when None).  Returns
    whether it got to the end."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.collection_crash_worker",
        settings.database_url,
        str(state_file),
        str(LATENCY_MS),
        *mode,
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
    ops, payer_cards = await _seed_payers(db, tmp_path)
    state_file = tmp_path / "card-network.sqlite"
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    # Each round a collection run and then a janitor (a day later each time, so every open
    # charge is due for its check) are killed mid-way.
    killed = 0
    for day in range(1, KILLS + 1):
        killed += not await _run(settings, state_file, chance.uniform(0.02, 0.45), "collect")
        day_on = (NOW + timedelta(days=day)).isoformat()
        killed += not await _run(settings, state_file, chance.uniform(0.02, 0.3), "janitor", day_on)
    assert killed >= KILLS, f"only {killed} runs were killed mid-way (seed {seed})"
    killed = 0
    for _ in range(PAY_KILLS):
        killed += not await _run(settings, state_file, chance.uniform(0.05, 0.6), "pay", str(ops))
    assert killed >= PAY_KILLS - 2, f"only {killed} payers were killed mid-way (seed {seed})"
    # Restart: the run goes to the end, the client sends its requests again, and the janitor
    # settles what the kills and the timeouts left open.
    assert await _run(settings, state_file, None, "collect")
    assert await _run(settings, state_file, None, "pay", str(ops))
    for day in range(KILLS + 1, KILLS + 4):
        at = NOW + timedelta(days=day)
        assert await _run(settings, state_file, None, "janitor", at.isoformat())

    async with db.session() as session:
        attempts = {a.id: a for a in (await session.scalars(select(CollectionAttempt))).all()}
        invoices = {i.id: i for i in (await session.scalars(select(Invoice))).all()}
        payments = (
            await session.scalars(select(Payment).where(Payment.processor.is_not(None)))
        ).all()
        keys = dict(
            (
                await session.execute(
                    select(IdempotencyRecord.key, IdempotencyRecord.result_id).where(
                        IdempotencyRecord.key.like("payer-%")
                    )
                )
            ).all()
        )
    network = SimulatorProcessor(state_file=str(state_file)).charge_log()
    by_key = {p.processor_key: p for p in payments}

    # The card network: one charge per key, and each is the payment kassa opened under it;
    # every charge it made is a COMPLETED payment of that amount, every other one is not.
    assert max(Counter(key for key, _ in network).values()) == 1
    assert {p.status for p in payments} <= {PaymentStatus.COMPLETED, PaymentStatus.FAILED}
    for key, result in network:
        payment = by_key[key]
        made = result.status == ChargeOutcome.SUCCEEDED
        assert (payment.status == PaymentStatus.COMPLETED) == made, f"{key} (seed {seed})"
        assert (payment.amount, payment.processor_reference) == (
            result.amount,
            result.processor_reference,
        )
    completed = [p for p in payments if p.status == PaymentStatus.COMPLETED]
    assert {p.processor_key for p in completed} <= {key for key, _ in network}
    charged = sum(r.amount for _, r in network if r.status == ChargeOutcome.SUCCEEDED)
    assert charged == sum(p.amount for p in completed)

    # Collection: every attempt has its outcome, every payable invoice is paid once.
    charged_for = Counter(
        attempts[int(key.removeprefix("attempt-"))].invoice_id
        for key, result in network
        if key.startswith("attempt-") and result.status == ChargeOutcome.SUCCEEDED
    )
    assert {a.status for a in attempts.values()} <= {
        AttemptStatus.SUCCEEDED,
        AttemptStatus.FAILED,
    }, f"seed {seed}"
    for invoice_id, card in cards.items():
        invoice = invoices[invoice_id]
        paid = [p for p in completed if p.invoice_id == invoice_id]
        if card == DECLINE:
            assert (invoice.status, paid, charged_for[invoice_id]) == (InvoiceStatus.UNPAID, [], 0)
        else:
            assert (invoice.status, len(paid), charged_for[invoice_id]) == (
                InvoiceStatus.PAID,
                1,
                1,
            ), f"invoice {invoice_id} (seed {seed})"
    assert sum(
        p.amount for p in completed if (p.processor_key or "").startswith("attempt-")
    ) == sum(i.total for i in invoices.values() if i.id in cards and cards[i.id] != DECLINE)

    # payInvoice/topUp: each request made one payment, whatever the kills, and its outcome
    # is the card's — the approving and the timing-out ones charged once, the declined never.
    assert set(keys) == set(payer_cards), f"seed {seed}"
    for key, card in payer_cards.items():
        payment = next(p for p in payments if p.id == keys[key])
        expected = PaymentStatus.FAILED if card == DECLINE else PaymentStatus.COMPLETED
        assert payment.status == expected, f"{key} (seed {seed})"
    assert len([p for p in payments if (p.processor_key or "").startswith("payment-")]) == PAYERS
