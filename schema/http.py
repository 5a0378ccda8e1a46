"""GraphQL over HTTP: Strawberry's ASGI view with kassa's context, and GraphiQL served offline.

GraphQL is served as the GraphQL-over-HTTP spec describes: clients that accept
``application/graphql-response+json`` get that media type and a 400 for a request that could
not run at all (unparsable, invalid, bad variables); clients asking for plain
``application/json`` get 200 for every well-formed request, as they always have.

A browser opening ``/graphql`` gets GraphiQL (when ``settings.graphiql`` is on) from files
vendored under ``static/vendor/`` and started by ``static/graphiql.js``: Strawberry's own page
loads React and GraphiQL from a CDN, which is a blank page offline or behind a firewall.  The
page's Content-Security-Policy lets it load and ask nothing outside this server.

A POST of JSON for a document compiled reads have already answered is answered again
without Strawberry's view (:mod:`schema.prepared`), with the same context, viewer and
response; anything else, and any such request that meets an error, is Strawberry's.

A request body (or ``variables`` parameter) nested deeper than :data:`MAX_JSON_DEPTH` is
refused with a 400 and a GraphQL-style error before anything walks it: Python's JSON parser
and everything after it recurse, and ``[[[[…]]]]`` 100,000 deep would otherwise be a 500.
"""

from __future__ import annotations

import json
from contextlib import suppress
from typing import Any, cast

from cross_web import HTTPException
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from billing.db import Database
from billing.fixed_reads import read_without_transaction
from resolvers import sessions
from resolvers.context import Context
from schema import KassaSchema, build_schema
from schema.prepared import JsonText, PreparedReads
from settings import Settings

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
#: The deepest nesting of arrays and objects a request's JSON may have.  Variables that
#: are inputs of inputs of lists need a handful of levels; this leaves room for far more.
MAX_JSON_DEPTH = 64

#: The GraphiQL page: every file it loads is under ``/static`` (see ``static/vendor/*/README.md``
#: for where each comes from).  GraphiQL's editor and its CSS-in-JS need inline styles; its
#: fonts are data: URLs in its stylesheet.
GRAPHIQL_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>kassa GraphiQL</title>
  <link rel="stylesheet" href="/static/vendor/graphiql/graphiql.min.css">
  <style>body { margin: 0; } #graphiql { height: 100vh; }</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="/static/vendor/react/react.production.min.js"></script>
  <script src="/static/vendor/react/react-dom.production.min.js"></script>
  <script src="/static/vendor/graphiql/graphiql.min.js"></script>
  <script src="/static/graphiql.js"></script>
</body>
</html>
"""
GRAPHIQL_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


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


class UnreadableJson(Exception):
    """A request's JSON that kassa refuses to read (answered 400, GraphQL-style)."""


def json_depth(value: object) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar is 0), without recursing."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item)
    return deepest


def decode_request_json(data: str | bytes) -> object:
    """``data`` parsed, unless it nests deeper than :data:`MAX_JSON_DEPTH`."""
    refusal = f"The request's JSON nests deeper than {MAX_JSON_DEPTH} levels."
    try:
        decoded = json.loads(data)
    except RecursionError:
        raise UnreadableJson(refusal) from None
    if json_depth(decoded) > MAX_JSON_DEPTH:
        raise UnreadableJson(refusal)
    return decoded


def refusal(
    scope: Scope, status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> Response:
    """A request refused before it could run, answered as GraphQL errors are."""
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
        headers=headers,
        media_type=negotiate_media_type(Headers(scope=scope).get("accept")),
    )


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` header, lower-cased and without parameters.

    Media types are case-insensitive (RFC 9110 §8.3.1): ``Application/JSON; charset=UTF-8``
    is JSON.  Every content-type check in kassa compares what this returns.
    """
    return (content_type or "").split(";", 1)[0].strip().lower()


def with_lower_case_media_type(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """ASGI ``headers`` with the ``Content-Type`` media type lower-cased (its parameters as
    sent), so Strawberry's own check, which compares case-sensitively, reads it right."""

    def lowered(value: bytes) -> bytes:
        media, separator, parameters = value.partition(b";")
        return media.strip().lower() + separator + parameters

    return [
        (name, lowered(value) if name.lower() == b"content-type" else value)
        for name, value in headers
    ]


def is_json_post(scope: Scope) -> bool:
    """Whether the request is a POST of JSON (a GraphQL request a prepared read may answer)."""
    content_type = Headers(scope=scope).get("content-type")
    return scope["method"] == "POST" and media_type(content_type) == JSON


def replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` for a request whose body has been read: the body once, then ``receive``'s
    own messages (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class GraphQLEndpoint(GraphQL[Context, None]):
    """Strawberry's ASGI view with kassa's context, one database session per request,
    GraphQL-over-HTTP media types and status codes, and the offline GraphiQL page."""

    def __init__(self, settings: Settings) -> None:
        schema = build_schema(settings)
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            subscription_protocols=(),
        )
        self.settings = settings
        self.prepared = schema.prepared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The session lives until the response has been sent, and is closed even when the
        # request fails before any resolver ran.
        database: Database = scope["app"].state.db
        scope["headers"] = with_lower_case_media_type(scope["headers"])
        async with database.session() as session:
            await read_without_transaction(session)
            state = scope.setdefault("state", {})
            state["db_session"] = session
            try:
                if self.prepared is not None and is_json_post(scope):
                    body = await Request(scope, receive).body()
                    receive = replaying(body, receive)
                    if await self.answer_prepared(self.prepared, scope, body, receive, send):
                        return
                await super().__call__(scope, receive, send)
            except UnreadableJson as refused:
                await refusal(scope, 400, str(refused), "BAD_REQUEST")(scope, receive, send)
            except sessions.InvalidApiKey as refused:
                # RFC 6750: a bearer token that is not valid is a 401 that says so.
                challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
                response = refusal(scope, 401, str(refused), "INVALID_API_KEY", challenge)
                await response(scope, receive, send)
            finally:
                context: Context | None = state.get("graphql_context")
                if context is not None:  # no reads may outlive the session
                    await context.settle()

    async def answer_prepared(
        self, prepared: PreparedReads, scope: Scope, body: bytes, receive: Receive, send: Send
    ) -> bool:
        """Answer a request for a prepared document (:mod:`schema.prepared`) without
        Strawberry's view; False, having sent nothing, when Strawberry must answer it."""
        try:
            decoded = decode_request_json(body)
        except (ValueError, UnreadableJson):  # Strawberry's to refuse, as it words it
            return False
        if not isinstance(decoded, dict):
            return False
        query, name = decoded.get("query"), decoded.get("operationName")
        variables, extensions = decoded.get("variables"), decoded.get("extensions")
        if not (
            isinstance(query, str)
            and isinstance(name, str | None)
            and isinstance(variables, dict | None)
            and isinstance(extensions, dict | None)
        ):
            return False
        found = prepared.find(query, name)
        if found is None:
            return False
        request = Request(scope, receive)
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, sub_response)
        schema = cast(KassaSchema, self.schema)
        data = await prepared.answer(schema, query, found, context, variables or {})
        if data is None:
            await context.settle()  # Strawberry's run makes a context of its own
            return False
        # The answer is whole: the connection goes back to the pool before it is sent.
        await context.settle()
        await context.session.close()
        response = cast(GraphQLHTTPResponse, {"data": data})  # JsonText: see encode_json
        await self.create_response(response, sub_response)(scope, receive, send)
        return True

    def decode_json(self, data: str | bytes) -> object:
        return decode_request_json(data)

    def encode_json(self, data: object) -> str | bytes:
        """As Strawberry encodes, but ``data`` PostgreSQL has encoded (:mod:`schema.json_reads`)
        goes out as it is."""
        if isinstance(data, dict) and len(data) == 1:
            answer = data.get("data")
            if isinstance(answer, JsonText):
                return '{"data":' + answer + "}"
        return super().encode_json(data)

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(GRAPHIQL_PAGE, headers=GRAPHIQL_HEADERS)

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
