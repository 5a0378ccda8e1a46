"""``/terminal/v1/…``: the API cash terminal networks call (:mod:`billing.terminals`; for
integrators, ``docs/terminals.md``), and the administrators' copy of a network's daily
reconciliation (GraphQL ``terminalReconciliation``).

Every operation is a signed ``POST`` with a JSON body, answered in JSON (the reconciliation
in CSV), in one transaction: the signature is verified and recorded as used, then the
operation runs; any refusal rolls everything back, so nothing is written.  Refusals are
``{"error": {"code", "message", "field"}}`` with

* 401 — a missing, wrong, stale (or future) or replayed signature;
* 403 — a disabled network paying;
* 404 — an unknown network;
* 409 — a transaction id booked before with another customer, amount or currency;
* 413 — a body over :data:`billing.terminals.MAX_BODY` bytes;
* 422 — anything else the request got wrong (JSON, amount, currency, customer, time);
* 429 — the network made more than ``Settings.terminal_rate_limit`` signed requests in the
  last minute (:class:`resolvers.rate_limits.SlidingWindow`, per process), with
  ``Retry-After`` in seconds.  Only requests whose signature verified count, so nobody can
  spend a network's allowance by naming it; the refused request is not run and, like every
  refusal, writes nothing (its signature is not recorded as used).

Log lines name the network and the refusal's code, never the body or the signature.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from billing import clock, terminals
from billing.db import Database
from billing.errors import UserError
from billing.models import ProcessorAccount
from billing.payment_systems import IncomingRequest
from resolvers.context import Context
from resolvers.rate_limits import SlidingWindow
from schema.relay import decode_id
from settings import Settings

log = logging.getLogger("kassa.terminals")

PREFIX = "/terminal/v1"

#: An operation: the verified network and the request's JSON → the response.
Operation = Callable[[AsyncSession, ProcessorAccount, dict[str, Any]], Awaitable[Response]]

_STATUSES: list[tuple[type[UserError], int]] = [
    (terminals.Unauthenticated, 401),
    (terminals.NetworkDisabled, 403),
    (terminals.UnknownNetwork, 404),
    (terminals.TransactionIdReused, 409),
    (UserError, 422),
]


def _refusal(error: UserError) -> JSONResponse:
    code = next(status for kind, status in _STATUSES if isinstance(error, kind))
    body = {"error": {"code": error.code, "message": error.message, "field": error.field}}
    return JSONResponse(body, status_code=code)


async def _check(
    session: AsyncSession, account: ProcessorAccount, data: dict[str, Any]
) -> Response:
    return JSONResponse(await terminals.check(session, account, data))


async def _pay(session: AsyncSession, account: ProcessorAccount, data: dict[str, Any]) -> Response:
    paid = await terminals.pay(session, account, data, clock.wall_now())
    return JSONResponse({**terminals.describe(paid), "duplicate": paid.duplicate})


async def _status(
    session: AsyncSession, account: ProcessorAccount, data: dict[str, Any]
) -> Response:
    return JSONResponse(await terminals.status(session, account, data))


async def _reconciliation(
    session: AsyncSession, account: ProcessorAccount, data: dict[str, Any]
) -> Response:
    day = terminals.reconciliation_day(data)
    text = await terminals.reconciliation(session, account, day)
    return PlainTextResponse(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="kassa-{account.id}-{day}.csv"'},
    )


def _network_id(given: str) -> str:
    """``X-Terminal-Network`` as billing reads it: the processor account's number, given as
    such or as the API's id of the account (what an administrator sees in GraphQL)."""
    try:
        return str(decode_id(given.strip(), "ProcessorAccount"))
    except UserError:
        return given


async def _body(request: Request) -> bytes | None:
    """The request's body, or None once it passes :data:`billing.terminals.MAX_BODY` bytes
    (read no further than that, whatever Content-Length says)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > terminals.MAX_BODY:
            return None
    return body


class _RateLimited(Exception):
    """Raised inside the request's transaction, so it rolls back."""

    def __init__(self, network: int, retry_after: int) -> None:
        self.network, self.retry_after = network, retry_after


def _too_many(network: int, retry_after: int) -> JSONResponse:
    log.warning("terminal network %s: over its rate limit", network)
    message = f"too many requests: try again in {retry_after} s"
    error = {"code": "RATE_LIMITED", "message": message, "field": None}
    return JSONResponse(
        {"error": error}, status_code=429, headers={"Retry-After": str(retry_after)}
    )


def _endpoint(
    operation: Operation, limits: SlidingWindow
) -> Callable[[Request], Awaitable[Response]]:
    """The HTTP handler of ``operation``: authenticate, count against the network's rate
    limit, run, commit — or refuse, writing nothing."""

    async def handle(request: Request) -> Response:
        database: Database = request.app.state.db
        body = await _body(request)
        if body is None:
            message = f"the body is over {terminals.MAX_BODY} bytes"
            error = {"code": "BODY_TOO_LARGE", "message": message, "field": "body"}
            return JSONResponse({"error": error}, status_code=413)
        headers = {name.lower(): value for name, value in request.headers.items()}
        network = _network_id(headers.get(terminals.NETWORK_HEADER, ""))
        headers[terminals.NETWORK_HEADER] = network
        incoming = IncomingRequest(request.method, request.url.path, headers, body)
        try:
            async with database.transaction() as session:
                account = await terminals.authenticate(session, incoming, clock.wall_now())
                settings: Settings = request.app.state.settings
                wait = limits.admit(account.id, settings.terminal_rate_limit)
                if wait:
                    raise _RateLimited(account.id, wait)
                return await operation(session, account, terminals.read_body(body))
        except _RateLimited as limited:
            return _too_many(limited.network, limited.retry_after)
        except IntegrityError:
            # Two payments under one transaction id for two customers at once: each waited
            # only for its own customer's lock, so the unique processor key stops the second.
            return _refusal(terminals.transaction_id_reused())
        except UserError as error:
            log.warning(
                "terminal network %s: %s refused: %s", network[:20], request.url.path, error.code
            )
            return _refusal(error)

    return handle


def routes() -> list[BaseRoute]:
    """The API's four operations, sharing one rate limit per network."""
    operations: dict[str, Operation] = {
        "check": _check,
        "pay": _pay,
        "status": _status,
        "reconciliation": _reconciliation,
    }
    limits = SlidingWindow()
    return [
        Route(
            f"{PREFIX}/{name}",
            _endpoint(operation, limits),
            methods=["POST"],
            name=f"terminal_{name}",
        )
        for name, operation in operations.items()
    ]


async def reconciliation_of(ctx: Context, account_id: str, day: date) -> str | None:
    """``terminalReconciliation``: a network's CSV for an administrator of its owner (None
    for an id out of reach or not a terminal network's)."""

    async def work(session: AsyncSession) -> str:
        network = decode_id(account_id, "ProcessorAccount", "accountId")
        return await terminals.reconciliation_for_staff(session, ctx.viewer, network, day)

    return await ctx.find(work)
