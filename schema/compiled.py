"""Compiled reads: a query in a known subset of the schema answered without graphql-core's
executor, by the same resolvers.

graphql-core resolves a document field by field — for each of a dashboard's ~130 fields an
``info`` object, a path, an awaitable check, a completion by type — and on the API
dashboard that machinery cost about a sixth of the request's CPU.  Here a query document is *compiled* once (per
query text and operation name, :class:`PlanCache`) into a tree of the fields it selects,
each with its GraphQL type's output coercion, its permission classes and its resolver
looked up in advance.  A request then walks that tree: it calls the very resolvers
Strawberry would call (same arguments, same DataLoaders, same services and so the same
authorization), checks the same permission classes, and coerces leaves with the same
GraphQL types (enum names, ISO dates, ID strings).

It is an extension (:class:`CompiledReads`), so a request still passes every rule before it
runs — NUL refusal, depth, alias, token and cost limits, introspection settings, one named
operation — and the extensions around execution (operation metrics, error codes, masking)
see its result as they see Strawberry's.  It answers only what it can answer exactly as Strawberry would; anything else runs
through Strawberry unchanged:

* at compile time: mutations and subscriptions, fragments, directives, abstract types, and
  any field with a resolver not in :data:`RESOLVERS` (fields that only read an attribute of
  their object are all supported);
* at run time: variables that do not coerce, a permission class that refuses, a resolver
  that raises, a null in a non-null field — any *error*, since the error's message, path
  and the nulls it spreads are Strawberry's to produce.  Only reads run here, so running
  the operation again through Strawberry repeats nothing but reads.

Resolved one by one, a customer's accounts, invoices and payments would each cost a
statement.  So an object type may name fields it reads ahead (``PREFETCHED``, Python names)
and define ``prefetch(info, selected)``: before its selection is walked, it is handed the
arguments of those of its fields the query selects, and primes the DataLoaders their
resolvers read (``Customer.prefetch``: the three lists in one statement).

``Settings.compiled_reads`` (``KASSA_COMPILED_READS``) turns it off; the tests compare the
two answers document by document.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLID,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    Undefined,
    ValueNode,
    VariableNode,
    get_operation_ast,
    is_leaf_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter, get_arguments
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField

from billing import metrics
from resolvers.context import Context
from schema.lru import LeastRecentlyUsed

if TYPE_CHECKING:
    from schema.prepared import PreparedReads

#: Fields with a resolver of their own that compiled reads may call: each reads only
#: ``info.context`` (its viewer, DataLoaders and session) and its arguments, and only
#: reads.  A field that reads an attribute of its object needs no entry.
RESOLVERS = frozenset(
    {
        ("Query", "customer"),
        ("Customer", "balance"),
        ("Customer", "availableFunds"),
        ("Customer", "accounts"),
        ("Customer", "invoices"),
        ("Customer", "payments"),
    }
)


class Unsupported(Exception):
    """This request is Strawberry's to answer (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class Info:
    """What the resolvers and permission classes in :data:`RESOLVERS` read of their ``info``."""

    context: Context


@dataclass(frozen=True, slots=True)
class Field:
    """One response key of a selection: its field nodes merged, as GraphQL merges them."""

    key: str
    #: ``__typename``: the name of the object type it is selected on; otherwise None.
    typename: str | None
    node: FieldNode | None
    definition: GraphQLField | None
    field: StrawberryField | None
    permissions: tuple[BasePermission, ...]
    nullable: bool
    #: A list's items (lists of lists are not supported): whether they may be null.
    list_items_nullable: bool | None
    #: Scalars and enums: their output coercion.  Objects: the selection on them.
    leaf: GraphQLLeafType | None
    selection: tuple[Field, ...]
    #: A field read straight off its object (no resolver, no permission): the attribute.
    attribute: str | None
    #: Objects whose type prefetches (``PREFETCHED``): the fields of the selection it reads.
    prefetched: tuple[Field, ...] = ()
    #: The arguments as coerced once at compile time, when the field's node uses no
    #: variable (``first: 10``): they are then the same on every request.
    constant_arguments: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """A compiled query operation."""

    operation: OperationDefinitionNode
    selection: tuple[Field, ...]


def compile_operation(
    schema: GraphQLSchema, document: Any, operation_name: str | None
) -> Plan | None:
    """The plan for the document's operation, or None when compiled reads cannot run it."""
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation != OperationType.QUERY or operation.directives:
        return None
    root = schema.query_type
    if root is None:
        return None
    try:
        return Plan(operation, _selection(root, operation.selection_set.selections))
    except Unsupported:
        return None


def _selection(parent: GraphQLObjectType, selections: Iterable[SelectionNode]) -> tuple[Field, ...]:
    """The fields selected on ``parent``, by response key (in the order GraphQL answers)."""
    grouped: dict[str, list[FieldNode]] = {}
    for node in selections:
        if not isinstance(node, FieldNode) or node.directives:
            raise Unsupported
        key = node.alias.value if node.alias else node.name.value
        grouped.setdefault(key, []).append(node)
    return tuple(_field(parent, key, nodes) for key, nodes in grouped.items())


def _field(parent: GraphQLObjectType, key: str, nodes: list[FieldNode]) -> Field:
    name = nodes[0].name.value
    if name == "__typename":
        return Field(key, parent.name, None, None, None, (), False, None, None, (), None)
    definition = parent.fields.get(name)  # None: introspection (__schema, __type)
    if definition is None:
        raise Unsupported
    field = definition.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(field, StrawberryField):
        raise Unsupported
    if field.base_resolver is not None and (parent.name, name) not in RESOLVERS:
        raise Unsupported
    permissions: list[BasePermission] = []
    for extension in field.extensions:
        if not isinstance(extension, PermissionExtension) or extension.fail_silently:
            raise Unsupported
        permissions.extend(extension.permissions)
    output: GraphQLOutputType = definition.type
    nullable = not isinstance(output, GraphQLNonNull)
    output = output.of_type if isinstance(output, GraphQLNonNull) else output
    items_nullable: bool | None = None
    if isinstance(output, GraphQLList):
        output = output.of_type
        items_nullable = not isinstance(output, GraphQLNonNull)
        output = output.of_type if isinstance(output, GraphQLNonNull) else output
    leaf: GraphQLLeafType | None = None
    selection: tuple[Field, ...] = ()
    prefetched: tuple[Field, ...] = ()
    if is_leaf_type(output):
        leaf = output
    elif isinstance(output, GraphQLObjectType):
        children = [
            child for node in nodes if node.selection_set for child in node.selection_set.selections
        ]
        selection = _selection(output, children)
        prefetched = _prefetched(output, selection)
    else:  # interfaces, unions, lists of lists
        raise Unsupported
    return Field(
        key,
        None,
        nodes[0],
        definition,
        field,
        tuple(permissions),
        nullable,
        items_nullable,
        leaf,
        selection,
        field.python_name if field.base_resolver is None and not permissions else None,
        prefetched,
        _constant_arguments(definition, nodes[0]),
    )


def _constant_arguments(definition: GraphQLField, node: FieldNode) -> dict[str, Any] | None:
    """The field's arguments if no variable is among them (see :attr:`Field.constant_arguments`)."""

    def uses_variables(value: ValueNode) -> bool:
        if isinstance(value, VariableNode):
            return True
        if isinstance(value, ListValueNode):
            return any(uses_variables(item) for item in value.values)
        if isinstance(value, ObjectValueNode):
            return any(uses_variables(item.value) for item in value.fields)
        return False

    if any(uses_variables(argument.value) for argument in node.arguments or ()):
        return None
    try:
        return get_argument_values(definition, node, None)
    except GraphQLError:  # left for each request to meet (and Strawberry to report)
        return None


def _prefetched(kind: GraphQLObjectType, selection: tuple[Field, ...]) -> tuple[Field, ...]:
    """The fields of ``selection`` its type's ``prefetch`` reads (the first of each name)."""
    definition = kind.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    names: frozenset[str] = getattr(getattr(definition, "origin", None), "PREFETCHED", frozenset())
    found: dict[str, Field] = {}
    for field in selection:
        if field.field is not None and field.field.python_name in names:
            found.setdefault(field.field.python_name, field)
    return tuple(found.values())


class Runner:
    """One request's walk of a plan."""

    def __init__(self, schema: Any, context: Context, variables: VariableValues) -> None:
        self.schema = schema
        self.info = Info(context)
        self.variables = variables

    async def object(
        self, selection: tuple[Field, ...], source: Any, prefetched: tuple[Field, ...] = ()
    ) -> dict[str, Any]:
        if prefetched:
            await self.prefetch(prefetched, source)
        answer: dict[str, Any] = {}
        for field in selection:
            if field.typename is not None:
                answer[field.key] = field.typename
                continue
            if field.attribute is not None:  # most fields: no resolver, no permission
                value = getattr(source, field.attribute)
            else:
                value = await self.resolve(field, source)
            if value is None:
                if not field.nullable:
                    raise Unsupported
                answer[field.key] = None
            elif field.leaf is not None and field.list_items_nullable is None:
                answer[field.key] = leaf(field.leaf, value)
            elif field.list_items_nullable is None:
                answer[field.key] = await self.object(field.selection, value, field.prefetched)
            else:
                items: list[Any] = []
                for item in value:
                    if item is None:
                        if not field.list_items_nullable:
                            raise Unsupported
                        items.append(None)
                    else:
                        items.append(await self.complete(field, item))
                answer[field.key] = items
        return answer

    async def prefetch(self, fields: tuple[Field, ...], source: Any) -> None:
        """Let the object read what ``fields`` will need, before they are resolved."""
        selected = {}
        for field in fields:
            assert field.field is not None
            selected[field.field.python_name] = convert_arguments(
                self.arguments(field),
                field.field.arguments,
                scalar_registry=self.schema.schema_converter.scalar_registry,
                config=self.schema.config,
            )
        try:
            await source.prefetch(self.info, selected)
        except Exception as error:  # a read that fails: Strawberry's to report
            raise Unsupported from error

    def arguments(self, field: Field) -> dict[str, Any]:
        """The field's arguments as graphql-core coerces them (its variables and defaults)."""
        assert field.definition is not None and field.node is not None
        if not field.definition.args:
            return {}
        if field.constant_arguments is not None:
            return dict(field.constant_arguments)
        return get_argument_values(field.definition, field.node, self.variables)

    async def resolve(self, field: Field, source: Any) -> Any:
        """The field's value from its resolver (or attribute) once its permissions allow."""
        assert field.definition is not None and field.field is not None
        arguments = self.arguments(field)
        for permission in field.permissions:  # with the arguments Strawberry gives them
            allowed = permission.has_permission(source, self.info, **arguments)  # type: ignore[arg-type]
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if allowed is not True:  # refused: the error is Strawberry's to report
                raise Unsupported
        if field.field.base_resolver is None:
            return getattr(source, field.field.python_name)
        args, kwargs = get_arguments(
            field=field.field,
            source=source,
            info=self.info,  # type: ignore[arg-type]  # all the resolvers here read
            kwargs=arguments,
            config=self.schema.config,
            scalar_registry=self.schema.schema_converter.scalar_registry,
        )
        try:
            value = field.field.get_result(source, self.info, args, kwargs)  # type: ignore[arg-type]
            if inspect.isawaitable(value):
                value = await value
        except Exception as error:  # its error is Strawberry's to report
            raise Unsupported from error
        return value

    async def complete(self, field: Field, value: Any) -> Any:
        if field.leaf is None:
            return await self.object(field.selection, value, field.prefetched)
        return leaf(field.leaf, value)


def leaf(kind: GraphQLLeafType, value: Any) -> Any:
    """A scalar's or enum's value as GraphQL puts it in the response.

    A ``str`` for a ``String`` or an ``ID`` is itself (graphql-core's serializers return it
    unchanged), so it skips them: most of a dashboard's ~130 leaves are the two strings of
    an amount.
    """
    if type(value) is str and (kind is GraphQLString or kind is GraphQLID):
        return value
    coerced = kind.coerce_output_value(value)
    if coerced is None or coerced is Undefined:
        raise Unsupported
    return coerced


async def run(plan: Plan, schema: Any, context: Context, variables: dict[str, Any]) -> Any:
    """The operation's ``data``; :class:`Unsupported` if Strawberry must answer instead."""
    coerced = get_variable_values(
        schema._schema, plan.operation.variable_definitions or (), variables
    )
    if isinstance(coerced, list):  # variables that do not fit: a request error
        raise Unsupported
    return await Runner(schema, context, coerced).object(plan.selection, None)


class PlanCache:
    """Plans by query text and operation name (None: the document cannot be compiled).

    Bounded: the least recently used entries go first.
    """

    def __init__(self, size: int = 256) -> None:
        self._plans: LeastRecentlyUsed[tuple[str, str | None], Plan | None] = LeastRecentlyUsed(
            size
        )

    def plan(
        self, schema: GraphQLSchema, query: str, document: Any, operation_name: str | None
    ) -> Plan | None:
        return self._plans.get_or_make(
            (query, operation_name), lambda: compile_operation(schema, document, operation_name)
        )


class CompiledReads(SchemaExtension):
    """Answer the operation by its plan before graphql-core would execute it.

    Strawberry skips its executor when an ``on_execute`` hook has set the result.  Comes
    after every extension that checks the request (they run in ``on_validate`` and before).
    """

    def __init__(self, plans: PlanCache, prepared: PreparedReads) -> None:
        super().__init__()
        self.plans = plans
        self.prepared = prepared

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        request = context.context
        if (
            context.query is not None
            and context.graphql_document is not None
            and (isinstance(request, Context))
        ):
            schema = context.schema
            plan = self.plans.plan(
                schema._schema, context.query, context.graphql_document, context.operation_name
            )
            outcome = "unsupported"
            if plan is not None:
                try:
                    data = await run(plan, schema, request, context.variables or {})
                except Unsupported:
                    outcome = "fallback"
                else:
                    context.result = ExecutionResult(data=data)
                    outcome = "compiled"
                    self.prepared.remember(context, plan)
            metrics.GRAPHQL_COMPILED_READS.labels(outcome).inc()
        yield
