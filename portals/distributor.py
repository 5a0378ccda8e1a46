"""The distributor's start page, until the distributor portal exists.

A distributor signs customers up and collects cash from them on commission; kassa's API lets
a distributor's sign-in see those customers as far as selling and collecting needs — details,
accounts, balance, what each invoice still needs — but not their books (charges, payments,
cards, the ledger, invoice PDFs), and change nothing (``billing.access.sees_books``).  Signing in as a distributor
lands here — not on a 403 page — and the page says so plainly, with the customers the
distributor may look at.  The distributor portal (its own issue) replaces this page.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import graphql, rendering
from portals.customer import MONEY
from portals.graphql import Visitor
from portals.navigation import DISTRIBUTOR_HOME
from portals.session import requires

DISTRIBUTOR = "DISTRIBUTOR"
PAGE_SIZE = 50

CUSTOMERS = (
    """
query DistributorCustomers($first: Int!, $after: String) {
  customers(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id name status phone balance { ...Amount } } }
  }
}
"""
    + MONEY
)


@requires(DISTRIBUTOR)
async def home(request: Request, visitor: Visitor) -> Response:
    """What a distributor can do today, and the customers they signed up."""
    data = await graphql.execute(
        request,
        CUSTOMERS,
        {"first": PAGE_SIZE, "after": request.query_params.get("after") or None},
    )
    return rendering.render(request, "distributor.html", {"customers": data["customers"]})


def routes() -> list[BaseRoute]:
    """The distributor's page (guarded by :func:`portals.routes`)."""
    return [Route(DISTRIBUTOR_HOME, home, methods=["GET"])]
