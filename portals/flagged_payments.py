"""The administrators' "Payments to look at" page: payments kassa flagged instead of acting
on what it was told about them.

A processor's notification whose amount or currency differs from the payment's, a cash slip
paid in another currency, a direct debit reported failed after it counted as paid: kassa
moves no money on such a notice (``Payment.flagged_reason`` says why), and someone has to
look — with the payment system, the bank or the customer.  This page lists them, newest
first, with the customer and the reason, by the API's ``payments(flagged: true)`` run as the
visitor, so a reseller's administrators see their own customers' only.
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

FLAGGED_PAYMENTS_PATH = f"{ADMIN_HOME}/flagged-payments"

FLAGGED_PAYMENTS = """
query AdminFlaggedPayments($first: Int!, $after: String) {
  payments(first: $first, after: $after, flagged: true) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id method status receivedAt reference processor flaggedReason
      amount { amount currency }
      paymentMethod { brand last4 }
      customer { id name timeZone }
      invoice { id number }
    } }
  }
}
"""


@requires(*STAFF)
async def flagged_payments(request: Request, visitor: Visitor) -> Response:
    """Flagged payments, newest first."""
    return await listing(
        request,
        FLAGGED_PAYMENTS,
        "payments",
        "admin/flagged_payments.html",
        "payments",
        FLAGGED_PAYMENTS_PATH,
    )


def routes() -> list[BaseRoute]:
    return [Route(FLAGGED_PAYMENTS_PATH, flagged_payments, methods=["GET"])]
