"""How failures reach the client.

Expected failures (bad input, a declined card, an unknown id) are ``UserError`` entries in a
mutation payload, with ``code`` a plain string: the services raise many codes, and a string
lets a new code reach clients without a schema change that old clients would choke on.
Top-level errors are for authorisation and bugs; they carry ``extensions.code`` so a client
can tell "sign in" from "not allowed" from "our fault", and bugs are masked outside
development so no internal detail (SQL, a stack, a card digit) ever leaks.
"""

from __future__ import annotations

from collections.abc import Iterator

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from billing import errors as domain
from billing import metrics


@strawberry.type(
    name="UserError",
    description="An expected failure the caller can fix. `field` names the input at fault.",
)
class UserErrorType:
    field: str | None
    code: str
    message: str

    @classmethod
    def from_domain(cls, error: domain.UserError) -> UserErrorType:
        metrics.GRAPHQL_USER_ERRORS.labels(error.code).inc()
        return cls(field=error.field, code=error.code, message=error.message)


def user_errors(error: domain.UserError | None) -> list[UserErrorType]:
    return [] if error is None else [UserErrorType.from_domain(error)]


def is_internal(error: GraphQLError) -> bool:
    """Whether an error is a bug (mask it) rather than a parse, validation or access error.

    A domain UserError reaching the top level (say an unknown id in a query's filter) is
    not a bug: its message is written for the caller.
    """
    original = error.original_error
    return original is not None and not isinstance(
        original, (GraphQLError, domain.Forbidden, domain.UserError)
    )


class DomainErrorCodes(SchemaExtension):
    """Give top-level errors raised by the domain a machine-readable ``extensions.code``.

    Services raise :class:`~billing.errors.Forbidden` and, from query fields,
    :class:`~billing.errors.UserError` without knowing GraphQL; the client still gets
    ``FORBIDDEN`` or the UserError's own code (and field) beside the message.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        for error in result.errors:
            original = error.original_error
            if isinstance(original, domain.Forbidden):
                error.extensions = {**(error.extensions or {}), "code": "FORBIDDEN"}
            elif isinstance(original, domain.UserError):
                error.extensions = {
                    **(error.extensions or {}),
                    "code": original.code,
                    "field": original.field,
                }
