"""The Starlette application: ``/graphql``, the portals, invoice PDF downloads
(:mod:`resolvers.invoice_pdf_links`), ``/healthz`` and ``/metrics``.

``create_app(settings)`` is all a server needs (``kassa serve`` hands it to uvicorn).  The
lifespan opens the :class:`~billing.db.Database` — unless the caller passes one, as the tests
do — and, with ``settings.run_worker``, runs an in-process job worker beside the web server.

GraphQL is served over HTTP as the GraphQL-over-HTTP spec describes: clients that accept
``application/graphql-response+json`` get that media type and a 400 for a request that could
not run at all (unparsable, invalid, bad variables); clients asking for plain
``application/json`` get 200 for every well-formed request, as they always have.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from cross_web import HTTPException
from sqlalchemy import func, select, text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

import portals
from billing import clock, jobs, mailer
from billing.db import Database
from billing.models import Job, JobStatus
from processors import registry
from resolvers import invoice_pdf_links, sessions
from resolvers.context import Context
from schema import build_schema
from settings import Settings, from_env

log = logging.getLogger("kassa.app")

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
WORKER_INTERVAL_SECONDS = 1.0
#: Modules whose ``@jobs.handler`` decorators register the job kinds the worker runs.

# --- GraphQL over HTTP --------------------------------------------------------------------


def negotiate_media_type(accept: str | None) -> str:
    """``application/graphql-response+json`` when the client names it (and does not prefer
    JSON); otherwise ``application/json``, which is also what wildcards and no header get,
    so older clients keep their 200s."""
    preference = {GRAPHQL_RESPONSE_JSON: 0.0, JSON: 0.0}
    for part in (accept or "").split(","):
        media, *params = (piece.strip().lower() for piece in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                with suppress(ValueError):
                    q = float(value)
        if media == GRAPHQL_RESPONSE_JSON:
            preference[GRAPHQL_RESPONSE_JSON] = max(preference[GRAPHQL_RESPONSE_JSON], q)
        elif media in (JSON, "application/*", "*/*"):
            preference[JSON] = max(preference[JSON], q)
    wanted = preference[GRAPHQL_RESPONSE_JSON]
    return GRAPHQL_RESPONSE_JSON if wanted > 0 and wanted >= preference[JSON] else JSON


def is_request_error(result: ExecutionResult) -> bool:
    """The request never executed: it did not parse or validate, or its variables did not fit.

    Such errors carry no ``path`` (field errors always do), and the response must then have
    no ``data`` entry at all.
    """
    return (
        result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors or ())
    )


class GraphQLEndpoint(GraphQL[Context, None]):
    """Strawberry's ASGI view with kassa's context, one database session per request, and
    GraphQL-over-HTTP media types and status codes."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            build_schema(settings),
            graphql_ide="graphiql" if settings.graphiql else None,
            subscription_protocols=(),
        )
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The session lives until the response has been sent, and is closed even when the
        # request fails before any resolver ran.
        database: Database = scope["app"].state.db
        async with database.session() as session:
            state = scope.setdefault("state", {})
            state["db_session"] = session
            try:
                await super().__call__(scope, receive, send)
            finally:
                context: Context | None = state.get("graphql_context")
                if context is not None:  # no reads may outlive the session
                    await context.settle()

    async def get_context(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> Context:
        session = request.state.db_session
        viewer = await sessions.viewer_from_request(session, self.settings, request)
        context = Context(
            settings=self.settings,
            db=request.app.state.db,
            session=session,
            viewer=viewer,
            request=request,
            response=response,
        )
        request.state.graphql_context = context
        return context

    async def get_sub_response(self, request: Request) -> Response:  # type: ignore[override]
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate_media_type(request.headers.get("accept"))
        return sub_response

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            return await super().execute_single(*args, **kwargs)
        except HTTPException as error:
            if isinstance(error.__cause__, InvalidOperationTypeError):
                # The spec wants 405 Method Not Allowed for a mutation sent with GET.
                raise HTTPException(405, error.reason) from error.__cause__
            raise

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        if is_request_error(result):
            processed.pop("data", None)
        return processed

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        media_type = sub_response.media_type or JSON
        response.headers["content-type"] = f"{media_type}; charset=utf-8"
        if (
            media_type == GRAPHQL_RESPONSE_JSON
            and isinstance(response_data, dict)
            and "data" not in response_data
            and not sub_response.status_code
        ):
            response.status_code = 400
        return response


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


# --- jobs ---------------------------------------------------------------------------------


async def run_worker(database: Database, interval: float = WORKER_INTERVAL_SECONDS) -> None:
    """Run due jobs every ``interval`` seconds until cancelled.

    A failing job is recorded and retried by :mod:`billing.jobs` itself; what is
    caught here is the database going away, which must not end the worker for good.
    """
    from billing import notifications

    started = False
    while True:
        try:
            if not started:  # the e-mail jobs poll: make sure they are pending
                await notifications.start_jobs(database)
                started = True
            await jobs.run_due(database)
        except Exception:
            log.exception("job worker round failed")
        await asyncio.sleep(interval)


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
        worker = asyncio.create_task(run_worker(app.state.db)) if settings.run_worker else None
        try:
            yield
        finally:
            if worker is not None:
                worker.cancel()
                with suppress(asyncio.CancelledError):
                    await worker
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
