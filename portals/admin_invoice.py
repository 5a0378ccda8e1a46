"""The administrators' invoice page: everything about one invoice, and approving or voiding it.

An administrator deciding about an invoice sees what the customer sees — lines, payments,
card attempts, the PDF — and what only staff need: the status history and who the
customer is.  Approving (an invoice waiting for review) and voiding (with a reason the
customer will read) are the API's ``approveInvoices`` and ``voidInvoice``, drawn again with
their outcome in place.  Every invoice number in the administrators' pages links here
(:func:`invoice_path`).  An id the visitor may not see — another reseller's invoice, or no
invoice at all — is the 404 page, as the API answers null for both.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import forms, graphql, rendering
from portals.admin import STAFF
from portals.customer import ERRORS, MONEY
from portals.forms import Form
from portals.graphql import Visitor, found
from portals.navigation import ADMIN_HOME
from portals.session import requires

INVOICES_PATH = f"{ADMIN_HOME}/invoices"

INVOICE = (
    """
query AdminInvoice($id: ID!) {
  invoice(id: $id) {
    id number kind status periodStart periodEnd issueDate dueDate createdAt voidedAt voidReason pdfUrl
    nextAttemptAt notChargedReason
    previousBalance { ...Amount } paymentsInPeriod { ...Amount } total { ...Amount }
    amountPaid { ...Amount } outstanding { ...Amount } balanceDue { ...Amount }
    lines { accountNumber description serviceAt amount { ...Amount } }
    attempts { scheduledFor status processorResponse cancelReason amount { ...Amount } }
    payments {
      amount { ...Amount }
      payment { id method status receivedAt reference paymentMethod { brand last4 } }
    }
    statusChanges { at fromStatus toStatus cause }
    customer { id name email timeZone }
  }
}
"""
    + MONEY
)

APPROVE = f"""
mutation AdminApproveInvoice($input: ApproveInvoicesInput!) {{
  approveInvoices(input: $input) {{ invoices {{ number }} {ERRORS} }}
}}
"""
VOID = f"""
mutation AdminVoidInvoice($input: VoidInvoiceInput!) {{
  voidInvoice(input: $input) {{ invoice {{ number }} {ERRORS} }}
}}
"""


def invoice_path(invoice_id: str) -> str:
    """Where the administrators' page of the invoice with this (global) id is."""
    return f"{INVOICES_PATH}/{invoice_id}"


async def _invoice_page(
    request: Request, void: Form | None = None, done: str | None = None
) -> Response:
    """The page; under htmx (after an action) only the invoice, whose status has changed."""
    data = await graphql.execute(request, INVOICE, {"id": request.path_params["id"]})
    invoice = found(data["invoice"])
    void = void or Form()
    return rendering.render(
        request,
        "admin/invoice.html",
        {
            "invoice": invoice,
            "path": invoice_path(invoice["id"]),
            "void": void,
            "done": done,
        },
        fragment="invoice",
        status_code=void.status_code,
    )


@requires(*STAFF)
async def invoice(request: Request, visitor: Visitor) -> Response:
    return await _invoice_page(request)


def _refused(errors: list[dict[str, str]]) -> None:
    """An invoice the visitor may not see is a 404 page, as it is for reading it."""
    if any(error["code"] == "NOT_FOUND" for error in errors):
        raise graphql.ObjectNotFound


@requires(*STAFF)
async def approve(request: Request, visitor: Visitor) -> Response:
    """Approve an invoice waiting for review: it becomes payable and its card attempts are
    planned.  An invoice that is no longer waiting shows the API's reason."""
    payload = await graphql.mutate(request, APPROVE, {"ids": [request.path_params["id"]]})
    _refused(payload["errors"])
    if payload["errors"]:
        return await _invoice_page(request, Form.with_errors({}, payload["errors"], fields=()))
    return await _invoice_page(request, done=f"Approved {payload['invoices'][0]['number']}.")


@requires(*STAFF)
async def void(request: Request, visitor: Visitor) -> Response:
    """Void the invoice with the reason typed: its charges are reversed, its payments become
    credit, and the customer reads the reason on the invoice."""
    values = await forms.read(request)
    payload = await graphql.mutate(
        request, VOID, {"id": request.path_params["id"], "reason": values.get("reason", "")}
    )
    _refused(payload["errors"])
    if payload["errors"]:
        return await _invoice_page(
            request, Form.with_errors(values, payload["errors"], fields=("reason",))
        )
    return await _invoice_page(request, done=f"Voided {payload['invoice']['number']}.")


def routes() -> list[BaseRoute]:
    """The invoice page and its actions (guarded by :func:`portals.routes`)."""
    return [
        Route(f"{INVOICES_PATH}/{{id}}", invoice, methods=["GET"]),
        Route(f"{INVOICES_PATH}/{{id}}/approve", approve, methods=["POST"]),
        Route(f"{INVOICES_PATH}/{{id}}/void", void, methods=["POST"]),
    ]
