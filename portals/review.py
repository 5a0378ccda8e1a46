"""The administrators' review queue: invoices held for someone to look at.

Invoices of a kind whose class has review on are issued PENDING_REVIEW and are neither
payable nor charged until someone looks at them (docs/collection.md, "Review"); the queue
lists them and approves or voids the ticked ones with one mutation, all or nothing, as the
API does.  As in :mod:`portals.admin`, every page runs GraphQL operations as the signed-in
visitor and every action is one mutation drawn again with its outcome in place.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import forms, graphql, rendering
from portals.admin import STAFF
from portals.customer import ERRORS, MONEY
from portals.forms import Form
from portals.graphql import Visitor
from portals.navigation import ADMIN_HOME
from portals.session import requires

REVIEW_PATH = f"{ADMIN_HOME}/review"
REVIEW_PAGE_SIZE = 50

REVIEW_QUEUE = (
    """
query AdminReviewQueue($first: Int!, $after: String) {
  invoices(status: PENDING_REVIEW, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id number kind issueDate dueDate total { ...Amount } customer { id name }
    } }
  }
}
"""
    + MONEY
)

APPROVE_INVOICES = f"""
mutation AdminApproveInvoices($input: ApproveInvoicesInput!) {{
  approveInvoices(input: $input) {{ invoices {{ number }} {ERRORS} }}
}}
"""
VOID_INVOICES = f"""
mutation AdminVoidInvoices($input: VoidInvoicesInput!) {{
  voidInvoices(input: $input) {{ invoices {{ number }} {ERRORS} }}
}}
"""


async def _review_page(
    request: Request, form: Form | None = None, done: str | None = None
) -> Response:
    """The queue; under htmx only the queue, which after an action has lost what was done."""
    data = await graphql.execute(
        request,
        REVIEW_QUEUE,
        {"first": REVIEW_PAGE_SIZE, "after": request.query_params.get("after") or None},
    )
    form = form or Form()
    return rendering.render(
        request,
        "admin/review.html",
        {
            "invoices": data["invoices"],
            "form": form,
            "done": done,
            "path": REVIEW_PATH,
        },
        fragment="review",
        status_code=form.status_code,
    )


@requires(*STAFF)
async def review(request: Request, visitor: Visitor) -> Response:
    """Invoices waiting for review, oldest issue first as the API lists them."""
    return await _review_page(request)


@requires(*STAFF)
async def decide(request: Request, visitor: Visitor) -> Response:
    """Approve or void the ticked invoices: one mutation, so either all of them change or,
    with the API's errors shown, none does (the ticks and the reason stay)."""
    values = await forms.read(request)
    ids = await forms.read_all(request, "ids")
    action = values.get("action")
    if action not in ("approve", "void"):
        return await _review_page(request, Form(values=values, problems=["choose approve or void"]))
    if action == "approve":
        payload = await graphql.mutate(request, APPROVE_INVOICES, {"ids": ids})
    else:
        payload = await graphql.mutate(
            request, VOID_INVOICES, {"ids": ids, "reason": values.get("reason", "")}
        )
    if payload["errors"]:
        form = Form.with_errors(values, payload["errors"], fields=("reason",))
        form.values["ids"] = " ".join(ids)
        return await _review_page(request, form)
    numbers = ", ".join(invoice["number"] for invoice in payload["invoices"])
    verb = "Approved" if action == "approve" else "Voided"
    return await _review_page(request, done=f"{verb} {numbers}.")


def routes() -> list[BaseRoute]:
    """The review queue (guarded by :func:`portals.routes`)."""
    return [
        Route(REVIEW_PATH, review, methods=["GET"]),
        Route(REVIEW_PATH, decide, methods=["POST"]),
    ]
