"""The administrators' "Payments to look at" page: payments kassa flagged instead of acting
on what it was told about them.

A processor's notification whose amount or currency differs from the payment's, a cash slip
paid in another currency, a direct debit reported failed after it counted as paid: kassa
moves no money on such a notice (``Payment.flagged_reason`` says why), and someone has to
look — with the payment system, the bank or the customer.  This page lists those still
waiting, newest first, with the customer and the reason, by the API's ``payments(flagged:
true, flagReviewed: false)`` run as the visitor, so a reseller's administrators see their own
customers' only; each is marked reviewed with what was found (``reviewFlaggedPayment``), and
``?reviewed=1`` lists those reviewed.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import forms, graphql
from portals.admin import STAFF
from portals.graphql import Visitor
from portals.listing import listing
from portals.navigation import ADMIN_HOME
from portals.session import requires

FLAGGED_PAYMENTS_PATH = f"{ADMIN_HOME}/flagged-payments"

FLAGGED_PAYMENTS = """
query AdminFlaggedPayments($first: Int!, $after: String, $reviewed: Boolean!) {
  payments(first: $first, after: $after, flagged: true, flagReviewed: $reviewed) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id method status receivedAt reference processor flaggedReason
      flagReviewedAt flagReviewNote
      amount { amount currency }
      paymentMethod { brand last4 }
      customer { id name timeZone }
      invoice { id number }
    } }
  }
}
"""

REVIEW = """
mutation AdminReviewFlaggedPayment($input: ReviewFlaggedPaymentInput!) {
  reviewFlaggedPayment(input: $input) { payment { id } errors { field code message } }
}
"""


REVIEW_PATH = f"{FLAGGED_PAYMENTS_PATH}/review"


@requires(*STAFF)
async def flagged_payments(request: Request, visitor: Visitor) -> Response:
    """Flagged payments waiting for review, newest first (``?reviewed=1``: those reviewed)."""
    return await _page(request, reviewed=request.query_params.get("reviewed") == "1")


@requires(*STAFF)
async def review_flagged_payment(request: Request, visitor: Visitor) -> Response:
    """Mark one as reviewed with what was found; the waiting list is drawn again, with the
    API's refusal above it when there is one."""
    values = await forms.read(request)
    payload = await graphql.mutate(
        request,
        REVIEW,
        {"paymentId": values.get("paymentId", ""), "note": values.get("note", "")},
    )
    if payload["errors"]:
        problems = [error["message"] for error in payload["errors"]]
        return await _page(request, reviewed=False, problems=problems, status_code=422)
    return await _page(request, reviewed=False, notice="Marked as reviewed.")


async def _page(
    request: Request,
    *,
    reviewed: bool,
    notice: str | None = None,
    problems: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    return await listing(
        request,
        FLAGGED_PAYMENTS,
        "payments",
        "admin/flagged_payments.html",
        "payments",
        FLAGGED_PAYMENTS_PATH,
        variables={"reviewed": reviewed},
        context={
            "reviewed": reviewed,
            "notice": notice,
            "problems": problems or [],
            "review_path": REVIEW_PATH,
        },
        status_code=status_code,
    )


def routes() -> list[BaseRoute]:
    return [
        Route(FLAGGED_PAYMENTS_PATH, flagged_payments, methods=["GET"]),
        Route(REVIEW_PATH, review_flagged_payment, methods=["POST"]),
    ]
