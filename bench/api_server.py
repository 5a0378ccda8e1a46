"""The two servers the API benchmark compares, as uvicorn app factories.

``kassa_app``: the real app, answering the dashboard GraphQL query.  ``plain_app``: a bare
Starlette JSON endpoint that runs the same SQL by hand (API-key check included) — the ceiling for what Python, the
driver and the database allow on this machine, so the GraphQL overhead is a ratio to it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app import create_app
from billing.api_keys import authenticate_api_key
from billing.db import Database
from billing.models import Account, Customer, Invoice, LedgerAccount, Payment
from billing.money import format_amount
from settings import Settings


def _settings() -> Settings:
    return Settings(
        database_url=os.environ["KASSA_DATABASE_URL"],
        environment="production",
        run_worker=False,
        graphiql=False,
        secret_key="bench",
    )


def kassa_app() -> Starlette:
    return create_app(_settings())


def _money(minor: int, currency: str) -> dict[str, str]:
    return {"amount": format_amount(minor, currency), "currency": currency}


async def _latest_ten(
    session: AsyncSession,
    model: type[Invoice] | type[Payment],
    customer_id: int,
    *columns: InstrumentedAttribute[Any],
) -> Sequence[Row[Any]]:
    """The id and ``columns`` of a customer's ten newest invoices or payments."""
    return (
        await session.execute(
            select(model.id, *columns)
            .where(model.customer_id == customer_id)
            .order_by(model.id.desc())
            .limit(10)
        )
    ).all()


def plain_app() -> Starlette:
    db = Database(_settings())

    async def dashboard(request: Request) -> JSONResponse:
        customer_id = int(request.path_params["customer_id"])
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        async with db.session() as session:
            if await authenticate_api_key(session, token) is None:
                return JSONResponse({"error": "unauthenticated"}, status_code=401)
            row = (
                await session.execute(
                    select(
                        Customer.id,
                        Customer.name,
                        Customer.status,
                        Customer.currency,
                        Customer.credit_limit,
                        LedgerAccount.balance,
                    )
                    .join(LedgerAccount, LedgerAccount.id == Customer.ledger_account_id)
                    .where(Customer.id == customer_id)
                )
            ).one()
            accounts = (
                await session.execute(
                    select(Account.id, Account.number, Account.product, Account.status)
                    .where(Account.customer_id == customer_id)
                    .order_by(Account.id)
                )
            ).all()
            invoices = await _latest_ten(
                session,
                Invoice,
                customer_id,
                Invoice.number,
                Invoice.status,
                Invoice.total,
                Invoice.amount_paid,
                Invoice.due_date,
            )
            payments = await _latest_ten(
                session,
                Payment,
                customer_id,
                Payment.amount,
                Payment.method,
                Payment.status,
                Payment.received_at,
            )
        currency = row.currency
        return JSONResponse(
            {
                "data": {
                    "customer": {
                        "id": row.id,
                        "name": row.name,
                        "status": row.status.value,
                        "balance": _money(row.balance, currency),
                        "availableFunds": _money(row.credit_limit - row.balance, currency),
                        "accounts": [
                            {
                                "id": a.id,
                                "number": a.number,
                                "product": a.product,
                                "status": a.status.value,
                            }
                            for a in accounts
                        ],
                        "invoices": [
                            {
                                "id": i.id,
                                "number": i.number,
                                "status": i.status.value,
                                "total": _money(i.total, currency),
                                "outstanding": _money(i.total - i.amount_paid, currency),
                                "dueDate": i.due_date.isoformat(),
                            }
                            for i in invoices
                        ],
                        "payments": [
                            {
                                "id": p.id,
                                "amount": _money(p.amount, currency),
                                "method": p.method.value,
                                "status": p.status.value,
                                "receivedAt": p.received_at.isoformat(),
                            }
                            for p in payments
                        ],
                    }
                }
            }
        )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await db.dispose()

    return Starlette(routes=[Route("/dashboard/{customer_id:int}", dashboard)], lifespan=lifespan)
