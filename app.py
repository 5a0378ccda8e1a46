"""The Starlette application: ``/graphql`` (:mod:`schema.http`), the portals, invoice PDF
downloads (:mod:`resolvers.invoice_pdf_links`), payment systems' callbacks
(:mod:`resolvers.callbacks`), cash terminal networks' API (:mod:`resolvers.terminals`),
``/healthz`` and ``/metrics``.

``create_app(settings)`` is all a server needs (``kassa serve`` hands it to uvicorn).  The
lifespan opens the :class:`~billing.db.Database` — unless the caller passes one, as the tests
do — and, with ``settings.run_worker``, runs the job worker (:mod:`billing.worker`) beside
the web server.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from sqlalchemy import select, text
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import portals
import wallets
from billing import jobs, logs, mailer, metrics, worker
from billing.db import Database
from billing.models import BitcoinAddress, BitcoinPayment, BitcoinPaymentState
from processors import registry
from resolvers import callbacks, invoice_pdf_links, terminals
from schema.http import GraphQLEndpoint
from settings import Settings, from_env

log = logging.getLogger("kassa.app")
#: One line per request (:class:`RequestObserver`); uvicorn's own access log is off.
access_log = logging.getLogger("kassa.access")
#: How long a shutdown waits for the in-process worker's job in hand before cancelling it.
WORKER_STOP_SECONDS = 10.0

# --- every request: its id, its access-log line, its metrics ---------------------------------


class RequestObserver:
    """Per HTTP request (pure ASGI, outermost of ours): an id, an access-log line and the
    request metrics.

    The id (:func:`billing.logs.accepted_request_id`) is set for everything the request
    logs or schedules, and returned as ``X-Request-ID``.  The access-log line is ours, not
    uvicorn's: method, path *without* its query string (where ``GET /graphql?query=…``
    would carry a card number), status and duration.  The metrics are labelled with the
    route's template (``/admin/customers/{customer_id}``), never the raw path.  An error no
    handler caught is logged here, under the request's id, and answered with a bare 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = logs.accepted_request_id(Headers(scope=scope).get("x-request-id"))
        token = logs.request_id.set(request_id)
        started = time.perf_counter()
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if status is None:
                await PlainTextResponse("Internal Server Error", 500)(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            # The route's template, not the raw path, keeps the label set small.
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            answered = status or 500
            metrics.HTTP_REQUESTS.labels(method, route, answered).inc()
            metrics.HTTP_DURATION.labels(method, route).observe(seconds)
            access_log.info("%s %s %d %.1fms", method, scope["path"], answered, seconds * 1000)
            logs.request_id.reset(token)


# --- health and metrics -------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    """200 when the database answers, 503 when it does not (for load balancers)."""
    database: Database = request.app.state.db
    try:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        log.exception("health check failed")
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def metrics_allowed(settings: Settings, authorization: str | None) -> bool | None:
    """Whether a scrape may read ``/metrics``: True; False (401: a token is configured and
    this is not it); None (404: no token is configured outside development, so the figures
    are served to nobody)."""
    if settings.metrics_token:
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), settings.metrics_token.encode()
        )
    return True if settings.development else None


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format (:mod:`billing.metrics`): every process's counters and the
    shared job queue; behind a bearer token (``KASSA_METRICS_TOKEN``) outside development."""
    settings: Settings = request.app.state.settings
    allowed = metrics_allowed(settings, request.headers.get("authorization"))
    if allowed is None:
        return PlainTextResponse("Not Found", 404)
    if not allowed:
        return PlainTextResponse(
            "Unauthorized", 401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
        )
    database: Database = request.app.state.db
    async with database.session() as session:
        queue = await jobs.queue_state(session)
    return Response(metrics.exposition(queue), media_type=metrics.CONTENT_TYPE)


# --- the app ------------------------------------------------------------------------------


def _fake_chain(settings: Settings) -> list[BaseRoute]:
    """With ``KASSA_BITCOIN_WATCHER=fake`` in development, the fake chain the watcher reads,
    served under ``/_fake/esplora`` so ``kassa bitcoin fake-pay`` can feed it; none else."""
    if settings.bitcoin_watcher != "fake" or not settings.development:
        return []
    from wallets import fake_chain

    return [Mount(fake_chain.DEMO_CHAIN_PATH, fake_chain.esplora_app(fake_chain.DEMO_CHAIN))]


async def _rebuild_fake_chain(db: Database) -> None:
    """Put the payments the database records as still on the chain (pending, credited, below
    the minimum) back on the fresh fake chain (``wallets.fake_chain.rebuild``): the demo's,
    loaded by another process, and those fed before a restart would otherwise look gone."""
    from wallets import fake_chain

    async with db.session() as session:
        rows = await session.execute(
            select(
                BitcoinPayment.txid,
                BitcoinPayment.vout,
                BitcoinAddress.address,
                BitcoinPayment.satoshis,
                BitcoinPayment.confirmations,
            )
            .join(BitcoinAddress, BitcoinAddress.id == BitcoinPayment.address_id)
            .where(
                BitcoinPayment.state.in_(
                    [
                        BitcoinPaymentState.PENDING,
                        BitcoinPaymentState.CREDITED,
                        BitcoinPaymentState.BELOW_MINIMUM,
                    ]
                )
            )
        )
        outputs = [(txid, vout, address, sat, conf) for txid, vout, address, sat, conf in rows]
    fake_chain.rebuild(fake_chain.DEMO_CHAIN, outputs)


def _fake_processors(settings: Settings) -> list[BaseRoute]:
    """With ``KASSA_FAKE_PROCESSORS`` in development or the tests, every payment system's fake under
    ``/fakes/<name>`` (:mod:`processors.fakes.mount`), where the demo's processor accounts
    point; none else (production refuses the setting: ``settings.start_problems``)."""
    if not settings.fake_processors or not settings.fakes_allowed:
        return []
    from processors.fakes import mount

    return list(mount.routes(Path(settings.fake_state_dir)))


def create_app(settings: Settings | None = None, database: Database | None = None) -> Starlette:
    """The whole web application.  Pass ``database`` to share one (tests); else the
    lifespan opens one from ``settings`` and disposes of it at shutdown."""
    settings = settings or from_env()
    # So advanceTestClock and the in-process worker find every job kind.
    jobs.load_handlers()
    registry.serve_billing(settings.card_processor)
    wallets.serve_billing(settings)

    fake_chain = _fake_chain(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_database = database is None
        app.state.db = Database(settings) if own_database else database
        if fake_chain:
            await _rebuild_fake_chain(app.state.db)
        stop_worker = asyncio.Event()
        jobs_task = (
            asyncio.create_task(worker.run_forever(app.state.db, stop=stop_worker))
            if settings.run_worker
            else None
        )
        worker.freeze_startup_objects()
        try:
            yield
        finally:
            gc.unfreeze()
            if jobs_task is not None:
                # The job in hand finishes (and commits) first; one that will not is cancelled.
                stop_worker.set()
                with suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(jobs_task, WORKER_STOP_SECONDS)
            await mailer.drain()
            if own_database:
                await app.state.db.dispose()

    graphql = GraphQLEndpoint(settings)
    app = Starlette(
        routes=[
            Route("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/metrics", metrics_endpoint),
            *invoice_pdf_links.routes(),
            *callbacks.routes(),
            *terminals.routes(),
            *_fake_processors(settings),
            *portals.routes(),
            *fake_chain,
        ],
        middleware=[Middleware(RequestObserver)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    # The portals run their operations in-process against the endpoint's own schema.
    app.state.schema = graphql.schema
    app.state.db = database
    return app
