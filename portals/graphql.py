"""How a page asks for data: a GraphQL operation run in-process, as the signed-in visitor.

The portals hold no business rules and no database code.  A page sends the same operations a
partner would send to ``/graphql`` — to the same schema object, with the same
:class:`~resolvers.context.Context`, built the same way from the request's session
cookie — so what a visitor may see and do is decided in exactly one place, and every page is
also a test of the API.  Only the HTTP round trip is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from graphql import GraphQLError
from starlette.requests import Request

from resolvers import sessions
from resolvers.context import Context

T = TypeVar("T")


class OperationFailed(Exception):
    """A top-level GraphQL error: a bug, or a visitor who may not do this at all.

    Expected failures (a bad e-mail address, a declined card) are not this: they come back
    in the mutation payload's ``errors`` for the page to show beside the form.
    """

    def __init__(self, errors: list[GraphQLError]) -> None:
        super().__init__("; ".join(error.message for error in errors))
        self.codes = {(error.extensions or {}).get("code") for error in errors}


class SignInRequired(OperationFailed):
    """The session is missing or has expired."""


class ObjectNotFound(Exception):
    """The id names nothing the visitor may see (which includes other customers' objects)."""


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is looking at the page, as the API's ``viewer`` describes them (global ids)."""

    authenticated: bool
    role: str | None = None
    user_id: str | None = None
    customer_id: str | None = None
    reseller_id: str | None = None
    distributor_id: str | None = None
    #: The name on the letterhead of whoever bills the visitor (or, for staff, of their own
    #: organisation): the portal's header shows it, as the invoices print it.
    biller: str | None = None


VISITOR = """
query PortalVisitor {
  viewer { authenticated role userId customerId resellerId distributorId }
}
"""
BILLER = "query PortalBiller { letterhead { name } }"


async def execute(
    request: Request, document: str, variables: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Run one operation as the visitor and return its ``data``.

    Each operation gets its own database session and its own Context, as an HTTP request
    to ``/graphql`` would; a mutation commits before this returns.  Who the visitor is is
    read from the session cookie once per page (``sessions.remembered_viewer``), not once per
    operation.
    """
    app = request.app
    async with app.state.db.session() as session:
        try:
            viewer = await sessions.remembered_viewer(session, app.state.settings, request)
        except sessions.InvalidApiKey as refused:  # pages are for browsers, signed in
            raise SignInRequired([GraphQLError(str(refused))]) from None
        context = Context(
            settings=app.state.settings,
            db=app.state.db,
            session=session,
            viewer=viewer,
            request=request,
        )
        try:
            result = await app.state.schema.execute(
                document, variable_values=dict(variables or {}), context_value=context
            )
        finally:
            await context.settle()  # no reads may outlive the session
            if document.lstrip().startswith("mutation"):
                # It may have signed the visitor in or out, or ended sessions: ask again.
                sessions.forget_viewer(request)
    if result.errors:
        failure = OperationFailed(result.errors)
        if "UNAUTHENTICATED" in failure.codes:
            raise SignInRequired(result.errors)
        if "NOT_FOUND" in failure.codes:  # an unknown id given to a list's filter
            raise ObjectNotFound(str(failure))
        raise failure
    data: dict[str, Any] | None = result.data
    assert data is not None
    return data


async def mutate(request: Request, document: str, input: Mapping[str, Any]) -> dict[str, Any]:
    """Run a one-mutation ``document`` with ``$input`` and return that mutation's payload
    (its object and ``errors``)."""
    data = await execute(request, document, {"input": input})
    (payload,) = data.values()
    assert isinstance(payload, dict)
    return payload


def found(value: T | None) -> T:
    """``value`` unless the API answered null for it (unknown, or someone else's)."""
    if value is None:
        raise ObjectNotFound
    return value


async def visitor(request: Request) -> Visitor:
    """The visitor, asked once per request and kept on ``request.state``."""
    known: Visitor | None = getattr(request.state, "visitor", None)
    if known is None:
        viewer = (await execute(request, VISITOR))["viewer"]
        # Whose letterhead heads the page is only asked once someone has signed in.
        letterhead = (
            (await execute(request, BILLER))["letterhead"] if viewer["authenticated"] else None
        )
        known = Visitor(
            authenticated=viewer["authenticated"],
            role=viewer["role"],
            user_id=viewer["userId"],
            customer_id=viewer["customerId"],
            reseller_id=viewer["resellerId"],
            distributor_id=viewer["distributorId"],
            biller=letterhead["name"] if letterhead else None,
        )
        request.state.visitor = known
    return known
