"""Count GraphQL operations by type and root field, and top-level errors by code
(:mod:`billing.metrics`).

Only names the schema defines become labels: a root field the client made up, or an
operation that did not parse, counts as ``unknown``.  Errors are labelled with their
``extensions.code`` (set by :class:`~schema.errors.DomainErrorCodes` and the limits), else
``GRAPHQL_PARSE_FAILED`` / ``GRAPHQL_VALIDATION_FAILED`` for a request that never ran, else
``INTERNAL_SERVER_ERROR`` — a bug.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationType,
    get_operation_ast,
)
from strawberry.extensions import SchemaExtension

from billing import metrics

UNKNOWN = "unknown"


def error_code(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    if error.path is None and error.original_error is None:
        return "GRAPHQL_VALIDATION_FAILED"
    return "INTERNAL_SERVER_ERROR"


def count_operation(schema: GraphQLSchema, document: DocumentNode | None, name: str | None) -> None:
    """Count the operation ``name`` of ``document`` once for each of its root fields."""
    operation = get_operation_ast(document, name) if document is not None else None
    if operation is None:
        metrics.GRAPHQL_OPERATIONS.labels(UNKNOWN, UNKNOWN).inc()
        return
    root: GraphQLObjectType | None = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }[operation.operation]
    known = root.fields if root is not None else {}
    for selection in operation.selection_set.selections:
        if isinstance(selection, FieldNode):
            field = selection.name.value
            metrics.GRAPHQL_OPERATIONS.labels(
                operation.operation.value, field if field in known else UNKNOWN
            ).inc()


class OperationMetrics(SchemaExtension):
    """Listed first among the extensions, so it sees the errors as the client will."""

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        count_operation(context.schema._schema, context.graphql_document, context.operation_name)
        result = context.result
        for error in (result.errors if result is not None else None) or ():
            metrics.GRAPHQL_ERRORS.labels(error_code(error)).inc()
