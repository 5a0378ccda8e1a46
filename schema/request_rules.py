"""Rules a request meets before it runs: which operation it names, and how much of the
schema its caller may learn.

* A document holding several operations must say which to run (``operationName``), as the
  GraphQL spec's GetOperation and GraphQL over HTTP require; running the first one instead
  would run something the client may not have meant.
* No string the request carries (in the document or its variables) holds a NUL character:
  PostgreSQL's text cannot store one and refuses the whole statement, which would surface
  as an internal error instead of the client's.
* Introspection and the "did you mean …?" hints in error messages describe the schema.
  Outside development an anonymous caller gets neither (a partner signs in or sends its API
  key first, and GraphiQL works once signed in); ``KASSA_INTROSPECTION=false`` turns both
  off for everyone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, StringValueNode, visit
from graphql.language import Visitor
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from billing.access import ANONYMOUS, Viewer
from resolvers.context import Context
from schema.lru import LeastRecentlyUsed
from settings import Settings

#: graphql-core's hint (``pyutils.did_you_mean``), always at the end of a message:
#: ``Cannot query field 'customerz' on type 'Query'. Did you mean 'customers'?``
_SUGGESTION = re.compile(r"\s*Did you mean .*\?\s*\Z", re.DOTALL)


def shows_schema(settings: Settings, viewer: Viewer) -> bool:
    """Whether ``viewer`` may read the schema: by introspection or from error hints."""
    return settings.introspection and (settings.development or viewer.authenticated)


def without_suggestions(message: str) -> str:
    return _SUGGESTION.sub("", message)


class SchemaVisibility(SchemaExtension):
    """Introspection refused, and suggestions taken out of every error, for a caller who
    may not read the schema (:func:`shows_schema`).

    The validation rule is added per request, so the validation cache keeps the two kinds
    of caller apart (it is keyed by the rules).  Suggestions come from validation and from
    variable coercion alike; taking them out of the finished result covers both.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        viewer = context.viewer if isinstance(context, Context) else ANONYMOUS
        hidden = not shows_schema(self.settings, viewer)
        if hidden:
            self.execution_context.validation_rules = (
                *self.execution_context.validation_rules,
                NoSchemaIntrospectionCustomRule,
            )
        yield
        result = self.execution_context.result
        if hidden and result is not None:
            for error in result.errors or ():
                error.message = without_suggestions(error.message)


class ValidationCache(SchemaExtension):
    """Strawberry's ``ValidationCache``, keyed by the query's text rather than its parsed
    document.

    graphql-core's documents are frozen dataclasses whose hash walks the whole tree on every
    lookup (a twentieth of a dashboard request's CPU); the text's hash is computed once per
    string.  The parser cache turns one text into one document, so the text and the rules
    decide the errors as the document and the rules did.  Shared by the requests (one per
    schema, the factory hands each request's extension the same ``cache``); bounded, the
    least recently used entries going first.  A request built from a document without text
    is validated by Strawberry itself.
    """

    def __init__(self, cache: LeastRecentlyUsed[tuple[str, Any], list[GraphQLError]]) -> None:
        super().__init__()
        self.cache = cache

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is not None:
            document, rules = context.graphql_document, context.validation_rules
            context.pre_execution_errors = self.cache.get_or_make(
                (context.query, tuple(rules)),
                lambda: validate_document(context.schema._schema, document, rules),
            )
        yield


class OperationNameRequired(SchemaExtension):
    """A document with several operations and no ``operationName`` is a request error.

    Must come after the validation cache among the extensions: both set the request's
    validation errors before validation proper, and this one adds to what the cache found.
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # ``operation_name`` falls back to the first operation's name; what the client sent
        # is kept apart (tests/test_input_rules.py notices if Strawberry renames it).
        named = context._provided_operation_name is not None
        if not named and document is not None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                error = GraphQLError(
                    "The document holds several operations: say which to run with operationName.",
                    extensions={"code": "OPERATION_NAME_REQUIRED"},
                )
                context.pre_execution_errors = [*(context.pre_execution_errors or []), error]
        yield


class NulCharactersRefused(SchemaExtension):
    """A NUL character in any string of the request is a request error (``INVALID_TEXT``).

    Must come after the validation cache among the extensions, as
    :class:`OperationNameRequired` does.  A document carries NUL raw or as an escape
    (``\\u0000``, ``\\u{0}``), so it is walked only when its text holds either.
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        query = context.query or ""
        suspect = "\x00" in query or "\\u" in query
        in_document = document is not None and suspect and _nul_in(document)
        if in_document or holds_nul(context.variables):
            error = GraphQLError(
                "Text may not contain the NUL character (U+0000).",
                extensions={"code": "INVALID_TEXT"},
            )
            context.pre_execution_errors = [*(context.pre_execution_errors or []), error]
        yield


def holds_nul(value: Any) -> bool:
    """Whether a variables value (JSON: dicts, lists, strings, numbers) holds a NUL anywhere."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False


class _NulFinder(Visitor):
    found = False

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if "\x00" in node.value:
            self.found = True


def _nul_in(document: Any) -> bool:
    finder = _NulFinder()
    visit(document, finder)
    return finder.found
