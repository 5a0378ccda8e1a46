"""The administrators' portal: find a customer, see everything about them, take a payment
received at the counter or by wire, and post a charge.

Staff are the API's ADMIN and RESELLER roles; what each sees is what the API scopes to them
(a reseller's administrators only the reseller's customers; someone else's customer is a
404 page, as an id that does not exist).  As in the customer portal
(:mod:`portals.customer`) every page runs GraphQL operations as the signed-in visitor
and every action is one mutation, drawn again with its outcome beside the form; forms that
move money carry a key made when the form is drawn, so a double click records one payment
or one charge.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from billing.customers import MAX_SEARCH_LENGTH
from portals import forms, graphql, rendering, words
from portals.customer import ERRORS, MONEY
from portals.forms import Form
from portals.graphql import Visitor, found
from portals.navigation import ADMIN_HOME
from portals.session import requires

#: The roles that manage customers (the API's staff).
STAFF = ("ADMIN", "RESELLER")
SEARCH_PAGE_SIZE = 20
#: How many rows each list on a customer's page shows at a time.
SECTION_SIZE = 10
CUSTOMER_STATUSES = ("ACTIVE", "SUSPENDED", "CLOSED")
#: Money staff record by hand (card payments are made with a stored card, not here), as
#: the API's values and the words on the form.
MANUAL_METHODS = ("CASH", "WIRE", "CHEQUE")
CHARGE_KINDS = ("ONE_OFF", "USAGE", "SUBSCRIPTION")
METHOD_CHOICES = tuple((value, words.name(value)) for value in MANUAL_METHODS)
KIND_CHOICES = tuple((value, words.name(value)) for value in CHARGE_KINDS)
#: The lists on a customer's page that page on their own, as ``?list=<name>&after=<cursor>``.
LISTS = ("invoices", "payments", "ledger")
PAYMENT_FIELDS = ("method", "amount", "reference")
CHARGE_FIELDS = ("accountId", "kind", "description", "amount")

CUSTOMERS = (
    """
query AdminCustomers($search: String, $status: CustomerStatus, $first: Int!, $after: String) {
  customers(search: $search, status: $status, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id name email status balance { ...Amount } } }
  }
}
"""
    + MONEY
)

CUSTOMER = (
    """
query AdminCustomer($id: ID!, $first: Int!, $invoicesAfter: String, $paymentsAfter: String,
                    $ledgerAfter: String) {
  customer(id: $id) {
    id name email phone address currency timeZone billingPeriod status autoPayment createdAt
    nextBillAt balance { ...Amount } availableFunds { ...Amount } creditLimit { ...Amount }
    customerClass { name }
    accounts { id number product status createdAt }
    ledger: ledgerTransactions(first: $first, after: $ledgerAfter) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id kind description createdAt amount { ...Amount } } }
    }
  }
  invoices(customerId: $id, first: $first, after: $invoicesAfter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id number kind status issueDate dueDate
      total { ...Amount } amountPaid { ...Amount } outstanding { ...Amount }
    } }
  }
  runFailures(customerId: $id, first: $first) {
    totalCount
    edges { node { id kind code message attempts nextRetryAt invoice { id number } } }
  }
  payments(customerId: $id, first: $first, after: $paymentsAfter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id method status receivedAt reference message
      amount { ...Amount } refundedAmount { ...Amount }
      invoice { id number }
      paymentMethod { brand last4 }
    } }
  }
}
"""
    + MONEY
)

#: What a form needs before its mutation: the currency the amount is in (the customer's)
#: and the accounts a charge may go to.
FORM_CONTEXT = """
query AdminFormContext($id: ID!) { customer(id: $id) { currency accounts { id } } }
"""

RECORD_PAYMENT = f"""
mutation AdminRecordPayment($input: RecordPaymentInput!) {{
  recordPayment(input: $input) {{
    payment {{ id method reference amount {{ ...Amount }} }} {ERRORS}
  }}
}}
{MONEY}
"""

POST_CHARGE = f"""
mutation AdminPostCharge($input: PostChargeInput!) {{
  postCharge(input: $input) {{
    charge {{ id kind description amount {{ ...Amount }} account {{ number }} }} {ERRORS}
  }}
}}
{MONEY}
"""


def _unknown_choices(values: dict[str, str], choices: dict[str, tuple[str, ...]]) -> Form | None:
    """The form again, marked, when a select sent a value it never offered.

    Checked here because the API would refuse an unknown enum value as a malformed request
    (a top-level error, a 500 page), not as a mistake to correct beside the field; and an
    account of another customer, which the API would let staff charge, is not one of the
    accounts of the customer whose page the form is on.
    """
    errors = {
        name: "choose one of the options"
        for name, allowed in choices.items()
        if forms.choice(values.get(name), allowed) is None
    }
    return Form(values=values, errors=errors) if errors else None


# --- customer search ----------------------------------------------------------------------


@requires(*STAFF)
async def customers(request: Request, visitor: Visitor) -> Response:
    """Customers by part of their name or e-mail address and by status, newest first.

    htmx asks as the visitor types and swaps in only the list; the address follows the
    search, so a reload or a shared link shows the same list.
    """
    search = request.query_params.get("q", "").strip()
    status = forms.choice(request.query_params.get("status"), CUSTOMER_STATUSES)
    try:
        data = await graphql.execute(
            request,
            CUSTOMERS,
            {
                "search": search or None,
                "status": status,
                "first": SEARCH_PAGE_SIZE,
                "after": request.query_params.get("after") or None,
            },
        )
    except graphql.OperationFailed as failure:
        if "TOO_LONG" not in failure.codes:  # the box says so too, but an address can be typed
            raise
        return await rendering.error_page(
            request, 400, f"Search for at most {MAX_SEARCH_LENGTH} characters."
        )
    return rendering.render(
        request,
        "admin/customers.html",
        {
            "customers": data["customers"],
            "q": search,
            "status": status,
            "statuses": CUSTOMER_STATUSES,
            "search_max_length": MAX_SEARCH_LENGTH,
        },
        fragment="customer_list",
    )


# --- one customer -------------------------------------------------------------------------


async def _customer_page(
    request: Request,
    *,
    payment: Form | None = None,
    charge: Form | None = None,
    recorded: dict[str, Any] | None = None,
    posted: dict[str, Any] | None = None,
) -> Response:
    """The customer's page: under htmx only the list being paged, or after an action the
    whole customer (figures, forms and lists all change)."""
    listed = forms.choice(request.query_params.get("list"), LISTS)
    after = request.query_params.get("after") or None
    data = await graphql.execute(
        request,
        CUSTOMER,
        {
            "id": request.path_params["id"],
            "first": SECTION_SIZE,
            **{f"{name}After": after if name == listed else None for name in LISTS},
        },
    )
    customer = found(data["customer"])
    payment = payment or Form()
    charge = charge or Form()
    return rendering.render(
        request,
        "admin/customer.html",
        {
            "customer": customer,
            "path": f"{ADMIN_HOME}/customers/{customer['id']}",
            "invoices": data["invoices"],
            "payments": data["payments"],
            "run_failures": data["runFailures"],
            "ledger": customer["ledger"],
            "paged": listed if after else None,
            "payment": payment,
            "charge": charge,
            "recorded": recorded,
            "posted": posted,
            "method_choices": METHOD_CHOICES,
            "kind_choices": KIND_CHOICES,
            "account_choices": [
                (account["id"], f"{account['number']} ({account['product']})")
                for account in customer["accounts"]
            ],
        },
        fragment=f"{listed}_list" if listed else "customer",
        status_code=max(payment.status_code, charge.status_code),
    )


async def _form_context(request: Request) -> dict[str, Any]:
    """The customer in the path as :data:`FORM_CONTEXT` describes it (a 404 page when it is
    not one the visitor may see)."""
    data = await graphql.execute(request, FORM_CONTEXT, {"id": request.path_params["id"]})
    context: dict[str, Any] = found(data["customer"])
    return context


@requires(*STAFF)
async def customer(request: Request, visitor: Visitor) -> Response:
    """Profile, figures, accounts, invoices, payments and ledger, with the two forms."""
    return await _customer_page(request)


@requires(*STAFF)
async def record_payment(request: Request, visitor: Visitor) -> Response:
    """Record cash, a wire or a cheque received; open invoices are settled with it."""
    values = await forms.read(request)
    customer = await _form_context(request)
    refused = _unknown_choices(values, {"method": MANUAL_METHODS})
    if refused is not None:
        return await _customer_page(request, payment=refused)
    payload = await graphql.mutate(
        request,
        RECORD_PAYMENT,
        {
            "customerId": request.path_params["id"],
            "amount": values.get("amount", ""),
            "currency": customer["currency"],
            "method": values["method"],
            "reference": values.get("reference", "").strip() or None,
            "idempotencyKey": forms.idempotency_key(values),
        },
    )
    form = forms.after(values, payload["errors"], fields=PAYMENT_FIELDS)
    return await _customer_page(request, payment=form, recorded=payload["payment"])


@requires(*STAFF)
async def post_charge(request: Request, visitor: Visitor) -> Response:
    """Post a charge to one of the customer's accounts; the next invoice carries it."""
    values = await forms.read(request)
    customer = await _form_context(request)
    accounts = tuple(account["id"] for account in customer["accounts"])
    refused = _unknown_choices(values, {"accountId": accounts, "kind": CHARGE_KINDS})
    if refused is not None:
        return await _customer_page(request, charge=refused)
    payload = await graphql.mutate(
        request,
        POST_CHARGE,
        {
            "accountId": values["accountId"],
            "kind": values["kind"],
            "description": values.get("description", ""),
            "amount": values.get("amount", ""),
            "currency": customer["currency"],
            "idempotencyKey": forms.idempotency_key(values),
        },
    )
    form = forms.after(values, payload["errors"], fields=CHARGE_FIELDS)
    return await _customer_page(request, charge=form, posted=payload["charge"])


def routes() -> list[BaseRoute]:
    """The administrators' pages and actions (guarded by :func:`portals.routes`)."""
    return [
        Route(ADMIN_HOME, customers, methods=["GET"]),
        Route(f"{ADMIN_HOME}/customers/{{id}}", customer, methods=["GET"]),
        Route(f"{ADMIN_HOME}/customers/{{id}}/payments", record_payment, methods=["POST"]),
        Route(f"{ADMIN_HOME}/customers/{{id}}/charges", post_charge, methods=["POST"]),
    ]
