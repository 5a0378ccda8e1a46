"""The Starlette application: ``/graphql`` (:mod:`schema.http`), the portals, invoice PDF
downloads (:mod:`resolvers.invoice_pdf_links`), ``/healthz`` and ``/metrics``.

``create_app(settings)`` is all a server needs (``kassa serve`` hands it to uvicorn).  The
lifespan opens the :class:`~billing.db.Database` — unless the caller passes one, as the tests
do — and, with ``settings.run_worker``, runs the job worker (:mod:`billing.worker`) beside
the web server.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from sqlalchemy import func, select, text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import portals
from billing import clock, jobs, mailer, worker
from billing.db import Database
from billing.models import Job, JobStatus
from processors import registry
from resolvers import invoice_pdf_links
from schema.http import GraphQLEndpoint
from settings import Settings, from_env

log = logging.getLogger("kassa.app")

# --- health and metrics -------------------------------------------------------------------


class RequestCounter:
    """Counts HTTP requests by method, route and status for ``/metrics`` (pure ASGI)."""

    def __init__(self, app: ASGIApp, counts: Counter[tuple[str, str, int]]) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The route's template, not the raw path, keeps the label set small.
            route = getattr(scope.get("route"), "path", "unmatched")
            self.counts[(scope["method"], route, status)] += 1


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


async def _job_counts(database: Database) -> dict[str, int]:
    async with database.session() as session:
        now = await clock.now(session)
        pending = select(func.count(Job.id)).where(Job.status == JobStatus.PENDING)
        return {
            "pending": int(await session.scalar(pending) or 0),
            "due": int(await session.scalar(pending.where(Job.due_at <= now)) or 0),
            "failed": int(
                await session.scalar(
                    select(func.count(Job.id)).where(Job.status == JobStatus.FAILED)
                )
                or 0
            ),
        }


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def metrics(request: Request) -> Response:
    """Prometheus text format: this process's request counts and the shared job queue."""
    counts: Counter[tuple[str, str, int]] = request.app.state.request_counts
    lines = [
        "# HELP kassa_http_requests_total HTTP requests served by this process.",
        "# TYPE kassa_http_requests_total counter",
        *(
            f'kassa_http_requests_total{{method="{_label(method)}",route="{_label(route)}",'
            f'status="{status}"}} {count}'
            for (method, route, status), count in sorted(counts.items())
        ),
    ]
    descriptions = {
        "pending": "Jobs waiting to run.",
        "due": "Pending jobs whose due time has passed (the worker's backlog).",
        "failed": "Jobs that failed every attempt and wait for a person.",
    }
    for name, value in (await _job_counts(request.app.state.db)).items():
        lines += [
            f"# HELP kassa_jobs_{name} {descriptions[name]}",
            f"# TYPE kassa_jobs_{name} gauge",
            f"kassa_jobs_{name} {value}",
        ]
    return PlainTextResponse(
        "\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8"
    )


# --- the app ------------------------------------------------------------------------------


def create_app(settings: Settings | None = None, database: Database | None = None) -> Starlette:
    """The whole web application.  Pass ``database`` to share one (tests); else the
    lifespan opens one from ``settings`` and disposes of it at shutdown."""
    settings = settings or from_env()
    # So advanceTestClock and the in-process worker find every job kind.
    jobs.load_handlers()
    registry.serve_billing(settings.card_processor)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_database = database is None
        app.state.db = Database(settings) if own_database else database
        jobs_task = (
            asyncio.create_task(worker.run_forever(app.state.db)) if settings.run_worker else None
        )
        try:
            yield
        finally:
            if jobs_task is not None:
                jobs_task.cancel()
                with suppress(asyncio.CancelledError):
                    await jobs_task
            await mailer.drain()
            if own_database:
                await app.state.db.dispose()

    counts: Counter[tuple[str, str, int]] = Counter()
    graphql = GraphQLEndpoint(settings)
    app = Starlette(
        routes=[
            Route("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/metrics", metrics),
            *invoice_pdf_links.routes(),
            *portals.routes(),
        ],
        middleware=[Middleware(RequestCounter, counts=counts)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    # The portals run their operations in-process against the endpoint's own schema.
    app.state.schema = graphql.schema
    app.state.db = database
    app.state.request_counts = counts
    return app
