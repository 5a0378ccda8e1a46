"""The demo ``make run`` loads: believable history in every status, loaded once, ledger sound."""

from __future__ import annotations

from sqlalchemy import func, select

from kassa.billing import api_keys
from kassa.billing.demo import load_demo
from kassa.billing.models import Customer, Distributor, Invoice, InvoiceStatus, Payment
from kassa.db import Database


async def _counts(db: Database) -> dict[str, int]:
    async with db.session() as session:
        return {
            model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)))
            for model in (Customer, Invoice, Payment, Distributor)
        }


async def test_demo_has_invoices_in_every_status_and_loads_only_once(db: Database) -> None:
    logins, first_key = await load_demo(db)
    assert {role for role, _, _ in logins} == {"administrator", "customer", "distributor"}
    async with db.session() as session:
        statuses = set((await session.scalars(select(Invoice.status).distinct())).all())
        methods = set((await session.scalars(select(Payment.method).distinct())).all())
        assert await api_keys.authenticate_api_key(session, first_key) is not None
    assert statuses == set(InvoiceStatus)
    assert len(methods) == 4
    counts = await _counts(db)
    assert counts["customers"] == 20 and counts["distributors"] == 1

    again_logins, second_key = await load_demo(db)
    assert again_logins == logins
    assert second_key != first_key
    assert await _counts(db) == counts
