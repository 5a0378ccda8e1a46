"""Prepared reads: a query that compiled reads answered once, after every request rule,
answered again without Strawberry's HTTP view and extension pipeline.

Compiled reads (:mod:`schema.compiled`) spare a query graphql-core's executor, but the
request still passes through Strawberry's view and a dozen extensions, each built anew per
request and entered at every stage; on the API dashboard that costs more CPU than the whole
hand-written endpoint.  Most of what those stages decide depends on the document alone: it
parses, has few enough tokens, is valid (with or without the introspection rule: a plan
selects no ``__schema`` or ``__type``), nests and aliases within the limits and names its
operation when it must.  So once a document (by its text and the operation name the client
sent) has been answered by a plan, every one of those verdicts is known to be "passed", and
the next request with the same text only needs the rules that read its *variables*:

* no NUL character in them (:class:`~schema.request_rules.NulCharactersRefused`);
* an estimated cost within the limit (:class:`~schema.cost.QueryCostLimiter`, from its
  cache);
* that they coerce to the operation's variable types (as compiled reads already check).

The viewer is read as for any request (``GraphQLEndpoint.get_context``: a bad API key is the
same 401), and the plan runs through the same resolvers and permission classes.  Anything
that is not a plain success — a rule above that fails, a permission that refuses, a resolver
that raises — answers nothing here: the endpoint hands the request to Strawberry, which
answers it (and its errors) as it answers every other.  Operation metrics count it as the
extension would.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from graphql import DocumentNode
from strawberry import Schema
from strawberry.types import ExecutionContext

from billing import metrics
from resolvers.context import Context
from schema import json_reads
from schema.compiled import Plan, Unsupported, run
from schema.cost import CostCache
from schema.lru import LeastRecentlyUsed
from schema.operation_metrics import count_operation
from schema.request_rules import holds_nul


@dataclass(frozen=True, slots=True)
class Prepared:
    """A document whose document-only rules have passed, with its plan."""

    plan: Plan
    document: DocumentNode
    #: The operation that runs (the one named, or the document's only one).
    operation_name: str | None
    #: The plan as statements that build its JSON (PostgreSQL), if it compiles to them.
    json: json_reads.JsonPlan | None


class JsonText(str):
    """An operation's ``data`` already encoded, by PostgreSQL (:mod:`schema.json_reads`):
    the response carries it as it is."""

    __slots__ = ()


class PreparedReads:
    """Prepared documents by query text and the operation name the client sent, and the
    rules a request of one still has to meet.

    Shared by the requests (one per schema).  Bounded: the least recently used go first.
    """

    def __init__(self, max_cost: int, costs: CostCache, size: int = 256) -> None:
        self.max_cost = max_cost
        self.costs = costs
        self._prepared: LeastRecentlyUsed[tuple[str, str | None], Prepared] = LeastRecentlyUsed(
            size
        )

    def remember(self, execution: ExecutionContext, plan: Plan) -> None:
        """Keep a document that ``plan`` has just answered after every rule passed."""
        if execution.query is None or execution.graphql_document is None:
            return
        # The name as sent, not Strawberry's fallback to the first operation's: whether a
        # name was needed is one of the verdicts kept (OperationNameRequired).
        key = (execution.query, execution._provided_operation_name)
        self._prepared.put(
            key,
            Prepared(
                plan,
                execution.graphql_document,
                execution.operation_name,
                json_reads.compile_plan(plan),
            ),
        )

    def find(self, query: str, operation_name: str | None) -> Prepared | None:
        return self._prepared.get((query, operation_name))

    async def answer(
        self,
        schema: Schema,
        query: str,
        prepared: Prepared,
        context: Context,
        variables: dict[str, Any],
    ) -> dict[str, Any] | JsonText | None:
        """The operation's ``data``, or None when Strawberry must answer this request."""
        if holds_nul(variables):
            return None
        cost = self.costs.cost(
            schema._schema, query, prepared.document, variables, prepared.operation_name
        )
        if cost > self.max_cost:
            return None
        data: dict[str, Any] | JsonText | None = None
        if prepared.json is not None and context.session.get_bind().dialect.name == "postgresql":
            with suppress(Unsupported):
                data = JsonText(await json_reads.answer(prepared.json, schema, context, variables))
        outcome = "json" if data is not None else "prepared"
        if data is None:
            try:
                data = await run(prepared.plan, schema, context, variables)
            except Unsupported:
                return None
        count_operation(schema._schema, prepared.document, prepared.operation_name)
        metrics.GRAPHQL_COMPILED_READS.labels(outcome).inc()
        return data
