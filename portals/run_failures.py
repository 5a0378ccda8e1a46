"""The administrators' "Run problems" page: customers a bill run or collection run skipped,
and distributors the distributor invoicing run skipped.

A batch run never stops for one customer or distributor (``billing.run_failures``): it skips
it, records why and tries again later.  This page lists what is still open — whose, which run,
the error's code and words, how often it failed and when it is tried next — so someone can
fix the cause; a later run that gets through takes it off the list.  As every portal page,
it runs the API's ``runFailures`` as the visitor, so a reseller's administrators see their
own customers and distributors only.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals.admin import STAFF
from portals.graphql import Visitor
from portals.listing import listing
from portals.navigation import ADMIN_HOME
from portals.session import requires

RUN_FAILURES_PATH = f"{ADMIN_HOME}/run-failures"

RUN_FAILURES = """
query AdminRunFailures($first: Int!, $after: String) {
  runFailures(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id kind code message attempts firstSeenAt lastSeenAt nextRetryAt
      customer { id name }
      distributor { id name }
      invoice { id number }
    } }
  }
}
"""


@requires(*STAFF)
async def run_failures(request: Request, visitor: Visitor) -> Response:
    """Open run failures, newest first."""
    return await listing(
        request,
        RUN_FAILURES,
        "runFailures",
        "admin/run_failures.html",
        "failures",
        RUN_FAILURES_PATH,
        fragment="run_failures",
    )


def routes() -> list[BaseRoute]:
    return [Route(RUN_FAILURES_PATH, run_failures, methods=["GET"])]
