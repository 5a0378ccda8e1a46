"""What an operation may cost, estimated before it runs, and the extension that refuses too much.

Depth, alias and token limits bound the *text* of an operation, not the work it asks for:
30 aliases of ``customers(first: 100) { invoices(first: 100) { lines payments } } }`` are a
short document and millions of rows.  So, as GitHub's API does, every list counts the
nodes it may return: a list field that takes ``first`` (a connection, or a plain list such
as ``Customer.invoices``) returns up to ``first`` nodes — its default when not given — for
each node of the list above it.  A path's nodes are therefore the product of the ``first``
arguments down it, and the cost of an operation is the sum over all its lists.  A list of
objects without ``first`` (an invoice's lines, a customer's accounts) counts as
:data:`UNPAGED_LIST_SIZE` nodes; lists of scalars, and a connection's own ``edges`` and
``nodes`` (already counted by the connection), count nothing.

An operation whose cost is over ``Settings.max_query_cost`` is refused before any resolver
runs, with ``QUERY_TOO_COSTLY`` and the cost and limit in the error's ``extensions``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
    validate,
    value_from_ast_untyped,
)
from strawberry.extensions import SchemaExtension

from schema.lru import LeastRecentlyUsed
from schema.relay import DEFAULT_PAGE_SIZE

#: The nodes a list without ``first`` is taken to hold: an invoice has a handful of lines,
#: a customer a handful of accounts.
UNPAGED_LIST_SIZE = 10

QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"


class _Estimate:
    """The cost of one operation of a document, given the request's variables."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        defaults = {
            v.variable.name.value: value_from_ast_untyped(v.default_value)
            for v in operation.variable_definitions or ()
            if v.default_value is not None
        }
        self.variables = {**defaults, **variables}
        #: The variables whose values the estimate read: it depends on nothing else.
        self.consulted: set[str] = set()
        # A fragment costs the same wherever it is spread, so it is costed once: a chain of
        # fragments each spreading the next twice stays linear to estimate.
        self.fragment_costs: dict[str, int] = {}

    def selections(self, selection_set: SelectionSetNode, parent: GraphQLNamedType) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                if inner is not None:
                    total += self.selections(selection.selection_set, inner)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value)
        return total

    def fragment(self, name: str) -> int:
        if name not in self.fragment_costs:
            self.fragment_costs[name] = 0  # a cycle (refused by validation anyway) ends here
            definition = self.fragments.get(name)
            if definition is not None:
                inner = self.schema.get_type(definition.type_condition.name.value)
                if inner is not None:
                    self.fragment_costs[name] = self.selections(definition.selection_set, inner)
        return self.fragment_costs[name]

    def field(self, node: FieldNode, parent: GraphQLNamedType) -> int:
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        definition = parent.fields.get(node.name.value)
        if definition is None:  # __typename and introspection: bounded by the schema
            return 0
        named = get_named_type(definition.type)
        below = self.selections(node.selection_set, named) if node.selection_set else 0
        size = self.list_size(node, definition, parent)
        return below if size is None else size * (1 + below)

    def list_size(
        self, node: FieldNode, definition: GraphQLField, parent: GraphQLNamedType
    ) -> int | None:
        """The nodes this field may return per parent node, or None when it is no list."""
        if is_leaf_type(get_named_type(definition.type)):
            return None
        if "first" in definition.args:
            return self.first(node, definition)
        if not is_list_type(get_nullable_type(definition.type)):
            return None
        if parent.name.endswith("Connection"):  # edges/nodes: counted by the connection
            return None
        return UNPAGED_LIST_SIZE

    def first(self, node: FieldNode, definition: GraphQLField) -> int:
        """``first`` as the resolver will see it: given, from a variable, or the default."""
        value: object = None
        for argument in node.arguments or ():
            if argument.name.value == "first":
                if isinstance(argument.value, VariableNode):
                    self.consulted.add(argument.value.name.value)
                    value = self.variables.get(argument.value.name.value)
                else:
                    value = value_from_ast_untyped(argument.value)
        if not isinstance(value, int) or isinstance(value, bool):
            default = definition.args["first"].default_value
            value = default if isinstance(default, int) else DEFAULT_PAGE_SIZE
        return max(0, value)


def estimate_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
) -> int:
    """The nodes the operation ``operation_name`` of ``document`` may return (see the module
    docstring).  Without a name, the costliest operation counts."""
    return _estimate(schema, document, variables or {}, operation_name)[0]


def _estimate(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any],
    operation_name: str | None,
) -> tuple[int, frozenset[str]]:
    """:func:`estimate_cost`, and the names of the variables the cost depends on."""
    operations = [
        d
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
        and (operation_name is None or (d.name is not None and d.name.value == operation_name))
    ]
    costs = [0]
    consulted: set[str] = set()
    for operation in operations:
        root = schema.get_root_type(operation.operation)
        if root is not None:
            estimate = _Estimate(schema, document, operation, variables)
            costs.append(estimate.selections(operation.selection_set, root))
            consulted |= estimate.consulted
    return max(costs), frozenset(consulted)


class CostCache:
    """Estimates already made, by query text, operation and the values of the variables the
    estimate read (its ``first`` arguments) — so a partner's dashboard query, sent again
    and again for other customers, is walked once, not on every request.

    Bounded: the least recently used entries go first.
    """

    def __init__(self, size: int = 1024) -> None:
        #: Which variables decide a query's cost (learnt from its first estimate).
        self._deciding: LeastRecentlyUsed[tuple[str, str | None], frozenset[str]] = (
            LeastRecentlyUsed(size)
        )
        self._costs: LeastRecentlyUsed[tuple[str, str | None, str], int] = LeastRecentlyUsed(size)

    def cost(
        self,
        schema: GraphQLSchema,
        query: str,
        document: DocumentNode,
        variables: Mapping[str, Any],
        operation_name: str | None,
    ) -> int:
        deciding = self._deciding.get((query, operation_name))
        if deciding is not None:
            known = self._costs.get((query, operation_name, _values_of(variables, deciding)))
            if known is not None:
                return known
        cost, deciding = _estimate(schema, document, variables, operation_name)
        self._deciding.put((query, operation_name), deciding)
        self._costs.put((query, operation_name, _values_of(variables, deciding)), cost)
        return cost


def _values_of(variables: Mapping[str, Any], names: frozenset[str]) -> str:
    return json.dumps({name: variables.get(name) for name in sorted(names)}, default=repr)


class QueryCostLimiter(SchemaExtension):
    """Refuse, before it runs, an operation whose estimated cost is over ``max_cost``.

    It hooks validation, after :class:`~schema.request_rules.ValidationCache` has
    validated the document (or validates it itself): only a valid document is costed, and
    an error set here is answered like any validation error, before execution.
    """

    def __init__(self, max_cost: int, cache: CostCache | None = None) -> None:
        self.max_cost = max_cost
        self.cache = cache or CostCache()

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            schema = context.schema._schema
            if context.pre_execution_errors is None:
                context.pre_execution_errors = validate(schema, document, context.validation_rules)
            if not context.pre_execution_errors:
                cost = self.cache.cost(
                    schema,
                    context.query or "",
                    document,
                    context.variables or {},
                    context.operation_name,
                )
                if cost > self.max_cost:
                    context.pre_execution_errors = [too_costly(cost, self.max_cost)]
        yield


def too_costly(cost: int, limit: int) -> GraphQLError:
    return GraphQLError(
        f"this operation could return {cost:,} nodes, over the limit of {limit:,}: ask for "
        "smaller pages (first), fewer nested lists or fewer aliases",
        extensions={"code": QUERY_TOO_COSTLY, "cost": cost, "limit": limit},
    )
