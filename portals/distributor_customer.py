"""One of the distributor's customers: what a distributor may see of it, a quick form to add
an account with a typed-in number, and the cash it collects from the customer.

What shows is what the API lets a distributor see (profile and contact details, accounts,
balance, available funds, open invoices with what each still needs); someone else's
customer is "not found" there and a 404 page here.  The cash form shows, as the amount is
typed, what the API would book (``distributorCommissionPreview``); saving records it with
the key made when the form was drawn, so a double submit records one payment, and the
outcome names the commission the ledger actually booked.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import forms, graphql, rendering
from portals.customer import ERRORS, MONEY
from portals.distributor_api import DISTRIBUTOR, own, preview, preview_response
from portals.forms import Form
from portals.graphql import Visitor, found
from portals.navigation import DISTRIBUTOR_HOME
from portals.session import requires

ACCOUNT_FIELDS = ("number", "product")
PAYMENT_FIELDS = ("amount", "reference")
#: The invoice statuses that still need money, in the order they are shown.
OPEN_STATUSES = ("overdue", "partiallyPaid", "unpaid")
#: How many of the distributor's newest collections are searched for the one just recorded.
RECENT_COLLECTIONS = 20

CUSTOMER = (
    """
query DistributorCustomer($id: ID!) {
  customer(id: $id) {
    id name email phone address currency timeZone status createdAt nextBillAt
    balance { ...Amount } availableFunds { ...Amount } creditLimit { ...Amount }
    accounts { id number product status createdAt }
    overdue: invoices(first: 100, status: OVERDUE) { ...OpenInvoice }
    partiallyPaid: invoices(first: 100, status: PARTIALLY_PAID) { ...OpenInvoice }
    unpaid: invoices(first: 100, status: UNPAID) { ...OpenInvoice }
  }
  viewer { distributor {
    paymentCommission balance { ...Amount } availableCredit { ...Amount }
  } }
}
fragment OpenInvoice on Invoice { id number status dueDate outstanding { ...Amount } }
"""
    + MONEY
)

CURRENCY = "query DistributorCustomerCurrency($id: ID!) { customer(id: $id) { currency } }"

PAYMENT_PREVIEW = (
    """
query DistributorPaymentPreview($id: ID!, $amount: String!) {
  distributorCommissionPreview(customerId: $id, amount: $amount) {
    gross { ...Amount } commission { ...Amount } net { ...Amount } exceedsCreditLimit
  }
  viewer { distributor { paymentCommission } }
}
"""
    + MONEY
)

CREATE_ACCOUNT = f"""
mutation DistributorCreateAccount($input: CreateAccountInput!) {{
  createAccount(input: $input) {{ account {{ id number product }} {ERRORS} }}
}}
"""

RECORD_PAYMENT = f"""
mutation DistributorRecordCash($input: RecordPaymentInput!) {{
  recordPayment(input: $input) {{ payment {{ id amount {{ ...Amount }} }} {ERRORS} }}
}}
{MONEY}
"""

#: What the ledger booked for a collection: found among the newest by its payment.
COLLECTIONS = (
    """
query DistributorCollections($first: Int!) {
  viewer { distributor {
    transactions(first: $first, kinds: [COLLECTION]) { edges { node {
      paymentId gross { ...Amount } commission { ...Amount } amount { ...Amount }
    } } }
  } }
}
"""
    + MONEY
)


async def _currency(request: Request) -> str:
    """The currency of the customer in the path (a 404 page when it is not the visitor's)."""
    data = await graphql.execute(request, CURRENCY, {"id": request.path_params["id"]})
    currency: str = found(data["customer"])["currency"]
    return currency


async def _booked(request: Request, payment_id: str) -> dict[str, Any] | None:
    """The collection the ledger booked for ``payment_id``: gross, commission, amount owed."""
    data = await graphql.execute(request, COLLECTIONS, {"first": RECENT_COLLECTIONS})
    edges = own(data)["transactions"]["edges"]
    return next((edge["node"] for edge in edges if edge["node"]["paymentId"] == payment_id), None)


async def _customer_page(
    request: Request,
    *,
    account: Form | None = None,
    payment: Form | None = None,
    added: dict[str, Any] | None = None,
    collected: dict[str, Any] | None = None,
) -> Response:
    """The customer's page; under htmx after an action, only the part below the title
    (figures, accounts, forms and invoices all may change)."""
    data = await graphql.execute(request, CUSTOMER, {"id": request.path_params["id"]})
    customer = found(data["customer"])
    invoices = sorted(
        (invoice for status in OPEN_STATUSES for invoice in customer[status]),
        key=lambda invoice: invoice["dueDate"],
    )
    account = account or Form()
    payment = payment or Form()
    return rendering.render(
        request,
        "distributor/customer.html",
        {
            "customer": customer,
            "distributor": own(data),
            "open_invoices": invoices,
            "path": f"{DISTRIBUTOR_HOME}/customers/{customer['id']}",
            "signed_up": "signed-up" in request.query_params,
            "account": account,
            "payment": payment,
            "added": added,
            "collected": collected,
        },
        fragment="customer",
        status_code=max(account.status_code, payment.status_code),
    )


@requires(DISTRIBUTOR)
async def customer(request: Request, visitor: Visitor) -> Response:
    """Profile, figures, accounts and open invoices, with the account and cash forms."""
    return await _customer_page(request)


@requires(DISTRIBUTOR)
async def add_account(request: Request, visitor: Visitor) -> Response:
    """Open an account with the number the distributor typed (there is no number stock)."""
    values = await forms.read(request)
    await _currency(request)  # someone else's customer: a 404 page, not a form error
    payload = await graphql.mutate(
        request,
        CREATE_ACCOUNT,
        {
            "customerId": request.path_params["id"],
            "number": values.get("number", "").strip(),
            "product": values.get("product", "").strip(),
        },
    )
    form = forms.after(values, payload["errors"], fields=ACCOUNT_FIELDS)
    return await _customer_page(request, account=form, added=payload["account"])


@requires(DISTRIBUTOR)
async def record_cash(request: Request, visitor: Visitor) -> Response:
    """Record cash taken from the customer; its open invoices are settled with it."""
    values = await forms.read(request)
    currency = await _currency(request)
    if not values.get("amount", "").strip():  # the API would call "" not a decimal amount
        return await _customer_page(
            request, payment=Form(values=values, errors={"amount": "enter the amount taken"})
        )
    payload = await graphql.mutate(
        request,
        RECORD_PAYMENT,
        {
            "customerId": request.path_params["id"],
            "amount": values.get("amount", "").strip(),
            "currency": currency,
            "method": "CASH",
            "reference": values.get("reference", "").strip() or None,
            "idempotencyKey": forms.idempotency_key(values),
        },
    )
    form = forms.after(values, payload["errors"], fields=PAYMENT_FIELDS)
    recorded = payload["payment"]
    collected = None if recorded is None else await _booked(request, recorded["id"])
    return await _customer_page(request, payment=form, collected=collected)


@requires(DISTRIBUTOR)
async def payment_preview(request: Request, visitor: Visitor) -> Response:
    """What collecting the amount being typed would book: the commission, what is owed."""
    amount = request.query_params.get("amount", "").strip()
    answer, problem = await preview(
        request, PAYMENT_PREVIEW, {"id": request.path_params["id"], "amount": amount}
    )
    if answer is None:
        return preview_response(request, "payment", None, problem, None)
    split, rate = answer["distributorCommissionPreview"], own(answer)["paymentCommission"]
    return preview_response(request, "payment", split, problem, rate)


def routes() -> list[BaseRoute]:
    """A customer's page and its actions (gathered by :func:`portals.distributor.routes`)."""
    path = f"{DISTRIBUTOR_HOME}/customers/{{id}}"
    return [
        Route(path, customer, methods=["GET"]),
        Route(f"{path}/accounts", add_account, methods=["POST"]),
        Route(f"{path}/payments", record_cash, methods=["POST"]),
        Route(f"{path}/payment-preview", payment_preview, methods=["GET"]),
    ]
