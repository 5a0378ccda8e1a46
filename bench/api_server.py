"""The two servers the API benchmark compares, as uvicorn app factories.

``kassa_app``: the real app, answering GraphQL.  ``plain_app``: the best hand-written
PostgreSQL endpoints a person would write for the same two jobs, the ceiling for what
Python, the driver and the database allow on this machine, so kassa's overhead is a ratio
to it:

* ``GET /dashboard/{customer_id}``: the dashboard query's answer (same fields, same global
  ids, same money strings) in two statements — the API key by its prefix, then one
  statement that reads the customer, its balance and its accounts, ten newest invoices and
  ten newest payments as JSON arrays built by PostgreSQL — with rows, never ORM objects,
  and the response's JSON built once.  Both run outside a transaction (no BEGIN/ROLLBACK
  round trips): the second is one statement, so it reads one consistent snapshot anyway.
* ``POST /accounts/{account_id}/charges``: ``postCharge`` by hand — the key, then one
  transaction of two statements: lock the customer (scoped to the key), then one statement
  whose data-modifying CTEs write the ledger transaction, its two balanced entries, both
  cached balances (refused past the range kassa keeps exact), the charge and the
  idempotency record.  A replayed key answers the first charge.  It skips nothing kassa
  must do: a faster path without the ledger or the authorization would be wrong, not fast.

Both use the engine kassa uses (SQLAlchemy Core over asyncpg, same pool); both check the
partner API key on every request as kassa does, and serve only keys of the provider or a
reseller (staff keys: the ones that may see the books and post charges).
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app import create_app
from billing import clock
from billing.db import Database
from billing.errors import UserError
from billing.idempotency import request_hash
from billing.ledger import system_owner_key
from billing.money import MAX_BALANCE, format_amount, parse_amount, validate_currency
from schema.relay import encode_id
from settings import Settings


def _settings() -> Settings:
    return Settings(
        database_url=os.environ["KASSA_DATABASE_URL"],
        environment="production",
        run_worker=False,
        graphiql=False,
        secret_key="bench",
    )


#: Database connections per worker process, for both apps alike: two apps of two workers
#: each stay well inside PostgreSQL's default 100 connections (kassa's default pool, 20 + 20
#: overflow, would not), and ten per worker is more than two cores keep busy.
POOL_SIZE = 10


def _database() -> Database:
    return Database(_settings(), pool_size=POOL_SIZE, max_overflow=0)


def kassa_app() -> Starlette:
    return create_app(_settings(), database=_database())


API_KEY = text(
    "SELECT id, secret_hash, revoked_at, reseller_id, distributor_id, scope "
    "FROM api_keys WHERE prefix = :prefix"
)

DASHBOARD = text("""
SELECT c.id, c.name, c.status, c.currency, c.credit_limit, b.balance,
  (SELECT coalesce(json_agg(json_build_array(a.id, a.number, a.product, a.status)
                            ORDER BY a.id), '[]')
     FROM accounts a WHERE a.customer_id = c.id) AS accounts,
  (SELECT coalesce(json_agg(json_build_array(i.id, i.number, i.status, i.total,
                                             i.amount_paid, i.due_date)
                            ORDER BY i.id DESC), '[]')
     FROM (SELECT id, number, status, total, amount_paid, due_date FROM invoices
            WHERE customer_id = c.id ORDER BY id DESC LIMIT 10) i) AS invoices,
  (SELECT coalesce(json_agg(json_build_array(p.id, p.amount, p.method, p.status,
                                             p.received_at)
                            ORDER BY p.id DESC), '[]')
     FROM (SELECT id, amount, method, status, received_at FROM payments
            WHERE customer_id = c.id ORDER BY id DESC LIMIT 10) p) AS payments
FROM customers c JOIN ledger_accounts b ON b.id = c.ledger_account_id
WHERE c.id = :customer_id
  AND (CAST(:reseller_id AS BIGINT) IS NULL OR c.reseller_id = :reseller_id)
""")

LOCK_CUSTOMER = text("""
SELECT c.id, c.currency, c.ledger_account_id, c.reseller_id, a.number AS account_number
FROM accounts a JOIN customers c ON c.id = a.customer_id
WHERE a.id = :account_id
  AND (CAST(:reseller_id AS BIGINT) IS NULL OR c.reseller_id = :reseller_id)
FOR UPDATE OF c
""")

REVENUE_BOOK = text(
    "SELECT id FROM ledger_accounts "
    "WHERE kind = 'REVENUE' AND owner_key = :owner_key AND currency = :currency"
)

POST_CHARGE = text("""
WITH txn AS (
  INSERT INTO ledger_transactions (kind, customer_id, description, created_at)
  VALUES ('CHARGE', :customer_id, :description, :now) RETURNING id
), entries AS (
  INSERT INTO ledger_entries (transaction_id, ledger_account_id, account_id, amount, currency)
  SELECT txn.id, leg.book, :account_id, leg.amount, :currency
  FROM txn, (VALUES (CAST(:customer_book AS BIGINT), CAST(:amount AS BIGINT)),
                    (CAST(:revenue_book AS BIGINT), -CAST(:amount AS BIGINT))) AS leg(book, amount)
), books AS (
  UPDATE ledger_accounts SET balance = balance + leg.amount
  FROM (VALUES (CAST(:customer_book AS BIGINT), CAST(:amount AS BIGINT)),
               (CAST(:revenue_book AS BIGINT), -CAST(:amount AS BIGINT))) AS leg(book, amount)
  WHERE ledger_accounts.id = leg.book
    AND balance + leg.amount BETWEEN -CAST(:max AS BIGINT) AND CAST(:max AS BIGINT)
  RETURNING ledger_accounts.id
), charge AS (
  INSERT INTO charges (customer_id, account_id, account_number, kind, description, amount,
                       currency, service_at, posted_at, status, transaction_id)
  SELECT :customer_id, :account_id, :account_number, 'ONE_OFF', :description, :amount,
         :currency, :now, :now, 'POSTED', txn.id FROM txn
  RETURNING id
), remembered AS (
  INSERT INTO idempotency_records (scope, key, request_hash, result_kind, result_id,
                                   created_at)
  SELECT :scope, :key, :request_hash, 'charge', charge.id, :now FROM charge
)
SELECT charge.id, (SELECT count(*) FROM books) AS books_moved FROM charge
""")

REPLAY = text(
    "SELECT result_kind, request_hash, result_id FROM idempotency_records "
    "WHERE scope = :scope AND key = :key"
)
CHARGE_AMOUNT = text("SELECT amount, currency FROM charges WHERE id = :id")


class Refused(Exception):
    """A request answered with ``status`` and a GraphQL-like error ``code``."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


def _money(minor: int, currency: str) -> dict[str, str]:
    return {"amount": format_amount(minor, currency), "currency": currency}


async def _staff_key(connection: AsyncConnection, request: Request) -> Any:
    """The live staff API key the request's bearer token belongs to, else :class:`Refused`."""
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != "kassa":
        raise Refused(401, "INVALID_API_KEY")
    key = (await connection.execute(API_KEY, {"prefix": parts[1]})).one_or_none()
    expected = key.secret_hash if key is not None else ""
    given = hashlib.sha256(parts[2].encode()).hexdigest()
    if key is None or not hmac.compare_digest(given, expected) or key.revoked_at is not None:
        raise Refused(401, "INVALID_API_KEY")
    if key.distributor_id is not None:
        raise Refused(403, "FORBIDDEN")
    return key


def _dashboard_json(row: Any) -> dict[str, Any]:
    currency = row.currency
    return {
        "data": {
            "customer": {
                "id": encode_id("Customer", row.id),
                "name": row.name,
                "status": row.status,
                "balance": _money(row.balance, currency),
                "availableFunds": _money(row.credit_limit - row.balance, currency),
                "accounts": [
                    {
                        "id": encode_id("Account", pk),
                        "number": number,
                        "product": product,
                        "status": status,
                    }
                    for pk, number, product, status in row.accounts
                ],
                "invoices": [
                    {
                        "id": encode_id("Invoice", pk),
                        "number": number,
                        "status": status,
                        "total": _money(total, currency),
                        "outstanding": _money(0 if status == "VOID" else total - paid, currency),
                        "dueDate": due,
                    }
                    for pk, number, status, total, paid, due in row.invoices
                ],
                "payments": [
                    {
                        "id": encode_id("Payment", pk),
                        "amount": _money(amount, currency),
                        "method": method,
                        "status": status,
                        "receivedAt": received,
                    }
                    for pk, amount, method, status, received in row.payments
                ],
            }
        }
    }


def plain_app() -> Starlette:
    db = _database()
    revenue_books: dict[tuple[str, str], int] = {}

    async def dashboard(request: Request) -> Response:
        customer_id = int(request.path_params["customer_id"])
        async with db.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            try:
                key = await _staff_key(connection, request)
            except Refused as refused:
                return JSONResponse({"error": refused.code}, status_code=refused.status)
            row = (
                await connection.execute(
                    DASHBOARD, {"customer_id": customer_id, "reseller_id": key.reseller_id}
                )
            ).one_or_none()
        if row is None:
            return JSONResponse({"data": {"customer": None}})
        return JSONResponse(_dashboard_json(row))

    async def revenue_book(connection: AsyncConnection, reseller_id: int | None, cur: str) -> int:
        """The revenue book's id, read once per process (books are never deleted)."""
        owner = (system_owner_key(reseller_id), cur)
        if owner not in revenue_books:
            found = await connection.scalar(REVENUE_BOOK, {"owner_key": owner[0], "currency": cur})
            if found is None:
                raise Refused(409, "NO_REVENUE_BOOK")  # kassa makes it on the first charge
            revenue_books[owner] = found
        return revenue_books[owner]

    async def post_charge(
        connection: AsyncConnection, request: Request, account_id: int, body: dict[str, Any]
    ) -> tuple[int, int, str]:
        """Check the key and post the charge in one transaction; returns the charge's id,
        amount and currency (the first charge's, for a replayed idempotency key)."""
        currency = validate_currency(str(body["currency"]))
        amount = parse_amount(str(body["amount"]), currency)
        description = str(body["description"]).strip()
        idempotency_key = str(body["idempotencyKey"]).strip()
        if amount <= 0 or not description or len(description) > 500 or not idempotency_key:
            raise Refused(400, "BAD_INPUT")
        arguments = {
            "account": account_id,
            "kind": "ONE_OFF",
            "description": description,
            "amount": amount,
            "currency": currency,
            "service_at": None,
        }
        scope = ""
        try:
            async with connection.begin():
                key = await _staff_key(connection, request)
                if key.scope != "READ_WRITE":
                    raise Refused(403, "FORBIDDEN")
                scope = f"key:{key.id}"
                customer = (
                    await connection.execute(
                        LOCK_CUSTOMER, {"account_id": account_id, "reseller_id": key.reseller_id}
                    )
                ).one_or_none()
                if customer is None:
                    raise Refused(404, "NOT_FOUND")
                if customer.currency != currency:
                    raise Refused(400, "CURRENCY_MISMATCH")
                revenue = await revenue_book(connection, customer.reseller_id, currency)
                posted = (
                    await connection.execute(
                        POST_CHARGE,
                        {
                            "customer_id": customer.id,
                            "account_id": account_id,
                            "account_number": customer.account_number,
                            "customer_book": customer.ledger_account_id,
                            "revenue_book": revenue,
                            "amount": amount,
                            "currency": currency,
                            "description": description,
                            "now": clock.wall_now(),
                            "max": MAX_BALANCE,
                            "scope": scope,
                            "key": idempotency_key,
                            "request_hash": request_hash(arguments),
                        },
                    )
                ).one()
                if posted.books_moved != 2:
                    raise Refused(400, "BALANCE_OUT_OF_RANGE")  # rolls the whole CTE back
                return posted.id, amount, currency
        except IntegrityError:
            # The idempotency key was used before: answer the first charge, if it matches.
            async with connection.begin():
                record = (
                    await connection.execute(REPLAY, {"scope": scope, "key": idempotency_key})
                ).one_or_none()
                if record is None or record.result_kind != "charge":
                    raise
                if record.request_hash != request_hash(arguments):
                    raise Refused(400, "IDEMPOTENCY_KEY_REUSED") from None
                first = (await connection.execute(CHARGE_AMOUNT, {"id": record.result_id})).one()
                return record.result_id, first.amount, first.currency

    async def charges(request: Request) -> Response:
        account_id = int(request.path_params["account_id"])
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "BAD_JSON"}, status_code=400)
        async with db.engine.connect() as connection:
            try:
                charge_id, amount, currency = await post_charge(
                    connection, request, account_id, body
                )
            except Refused as refused:
                return JSONResponse({"error": refused.code}, status_code=refused.status)
            except UserError as refused:  # an amount or currency kassa would refuse
                return JSONResponse({"error": refused.code}, status_code=400)
            except (KeyError, TypeError):  # a field missing, or a body that is no object
                return JSONResponse({"error": "BAD_INPUT"}, status_code=400)
        charge = {"id": encode_id("Charge", charge_id), "amount": _money(amount, currency)}
        return JSONResponse({"data": {"postCharge": {"charge": charge, "errors": []}}})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        gc.collect()
        gc.freeze()  # as kassa's app does (app.py): fair to both
        yield
        await db.dispose()

    return Starlette(
        routes=[
            Route("/dashboard/{customer_id:int}", dashboard),
            Route("/accounts/{account_id:int}/charges", charges, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
