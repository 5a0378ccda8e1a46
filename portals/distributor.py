"""The distributor portal's home: what the distributor owes and may still take on, its
customers, and the quick form that signs a customer up.

A distributor sells the provider's services, takes cash from end users and owes the
provider what it collected minus its commission (``docs/distributors.md``).  Like every
portal, each page is a client of the GraphQL API as the signed-in distributor: the API
scopes the customers to its own and decides what it may see of them, so another
distributor's customer is a 404 page here exactly as it is "not found" there.

The other pages are :mod:`portals.distributor_customer` (one customer: accounts, cash) and
:mod:`portals.distributor_transactions` (the distributor's own movements and their CSV);
:func:`routes` gathers all three, so :mod:`portals` mounts one distributor portal.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from billing.customers import MAX_SEARCH_LENGTH
from portals import distributor_customer, distributor_transactions, forms, graphql, htmx, rendering
from portals.customer import ERRORS, MONEY, TIME_ZONES
from portals.distributor_api import DISTRIBUTOR, own, preview, preview_response
from portals.forms import Form
from portals.graphql import Visitor
from portals.navigation import DISTRIBUTOR_HOME
from portals.session import requires

PAGE_SIZE = 20
#: A postpaid customer pays its invoices after the fact; a prepaid one starts with credit
#: the distributor sold it (and took the cash for).
PLANS = (("POSTPAID", "Postpaid: pays its invoices"), ("PREPAID", "Prepaid: buys credit from you"))
CUSTOMER_FIELDS = (
    "name",
    "phone",
    "email",
    "address",
    "timeZone",
    "plan",
    "creditLimit",
    "openingCredit",
)

#: What the distributor's figures show, wherever they appear.
FIGURES = """
fragment DistributorFigures on Distributor {
  name currency timeZone salesCommission paymentCommission periodStart
  balance { ...Amount } creditLimit { ...Amount } availableCredit { ...Amount }
  commissionThisPeriod { ...Amount }
}
"""

HOME = (
    """
query DistributorHome($search: String, $first: Int!, $after: String) {
  viewer { distributor { ...DistributorFigures } }
  customers(search: $search, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id name phone status balance { ...Amount } availableFunds { ...Amount }
    } }
  }
}
"""
    + FIGURES
    + MONEY
)

SALE_PREVIEW = (
    """
query DistributorSalePreview($amount: String!) {
  viewer { distributor {
    salesCommission
    salePreview(amount: $amount) {
      gross { ...Amount } commission { ...Amount } net { ...Amount } exceedsCreditLimit
    }
  } }
}
"""
    + MONEY
)

CREATE_CUSTOMER = f"""
mutation DistributorCreateCustomer($input: CreateCustomerInput!) {{
  createCustomer(input: $input) {{ customer {{ id }} {ERRORS} }}
}}
"""


# --- home ---------------------------------------------------------------------------------


async def _home(request: Request, *, signup: Form | None = None) -> Response:
    """The figures, the customer list (alone under htmx when searching or paging) and the
    sign-up form."""
    search = request.query_params.get("q", "").strip()
    try:
        data = await graphql.execute(
            request,
            HOME,
            {
                "search": search or None,
                "first": PAGE_SIZE,
                "after": request.query_params.get("after") or None,
            },
        )
    except graphql.OperationFailed as failure:
        if "TOO_LONG" not in failure.codes:  # the box says so too, but an address can be typed
            raise
        return await rendering.error_page(
            request, 400, f"Search for at most {MAX_SEARCH_LENGTH} characters."
        )
    distributor = own(data)
    signup = signup or Form(values={"timeZone": distributor["timeZone"], "plan": "POSTPAID"})
    return rendering.render(
        request,
        "distributor/home.html",
        {
            "distributor": distributor,
            "customers": data["customers"],
            "q": search,
            "search_max_length": MAX_SEARCH_LENGTH,
            "signup": signup,
            "plans": PLANS,
            "time_zones": TIME_ZONES,
        },
        fragment=None if request.method == "POST" else "customer_list",
        status_code=signup.status_code,
    )


@requires(DISTRIBUTOR)
async def home(request: Request, visitor: Visitor) -> Response:
    """Balance, credit, commission this period, the customers and the sign-up form."""
    return await _home(request)


def _signup_input(values: dict[str, str], currency: str) -> tuple[dict[str, Any], Form | None]:
    """The ``createCustomer`` input for the form, or the form again with what to correct.

    The distributor types the credit it sold as a positive amount; the API takes opening
    credit as a negative opening balance (what the customer owes), so the sign is added
    here, and a plan that contradicts the amount is caught before anything is sent.
    """
    plan = forms.choice(values.get("plan"), tuple(value for value, _ in PLANS))
    credit = values.get("openingCredit", "").strip()
    errors: dict[str, str] = {}
    if plan is None:
        errors["plan"] = "choose one of the options"
    elif plan == "PREPAID" and not credit:
        errors["openingCredit"] = "enter the credit you sold, such as 10.00"
    elif plan == "POSTPAID" and credit:
        errors["openingCredit"] = (
            "a postpaid customer starts without credit: choose prepaid, or leave this empty"
        )
    if errors:
        return {}, Form(values=values, errors=errors)
    optional = ("phone", "email", "address", "creditLimit")
    return {
        "name": values.get("name", ""),
        "currency": currency,
        "timeZone": values.get("timeZone", "").strip() or None,
        "openingBalance": f"-{credit}" if credit else None,
        "idempotencyKey": forms.idempotency_key(values),
        **{name: values.get(name, "").strip() or None for name in optional},
    }, None


@requires(DISTRIBUTOR)
async def create_customer(request: Request, visitor: Visitor) -> Response:
    """Sign a customer up; on success go to its page, where its accounts are added."""
    values = await forms.read(request)
    distributor = own(
        await graphql.execute(request, "query { viewer { distributor { currency } } }")
    )
    payload, refused = _signup_input(values, distributor["currency"])
    if refused is not None:
        return await _home(request, signup=refused)
    result = await graphql.mutate(request, CREATE_CUSTOMER, payload)
    if result["errors"]:
        form = Form.with_errors(
            values, result["errors"], CUSTOMER_FIELDS, {"openingBalance": "openingCredit"}
        )
        return await _home(request, signup=form)
    path = f"{DISTRIBUTOR_HOME}/customers/{result['customer']['id']}?signed-up=1"
    return htmx.redirect(request, path)


@requires(DISTRIBUTOR)
async def sale_preview(request: Request, visitor: Visitor) -> Response:
    """What selling the credit being typed would book: the commission kept, what is owed."""
    amount = request.query_params.get("openingCredit", "").strip()
    answer, problem = await preview(request, SALE_PREVIEW, {"amount": amount})
    distributor = own(answer) if answer else {}
    return preview_response(
        request,
        "sale",
        distributor.get("salePreview"),
        problem,
        distributor.get("salesCommission"),
    )


def routes() -> list[BaseRoute]:
    """The distributor portal's pages and actions (guarded by :func:`portals.routes`)."""
    return [
        Route(DISTRIBUTOR_HOME, home, methods=["GET"]),
        Route(f"{DISTRIBUTOR_HOME}/customers", create_customer, methods=["POST"]),
        Route(f"{DISTRIBUTOR_HOME}/sale-preview", sale_preview, methods=["GET"]),
        *distributor_customer.routes(),
        *distributor_transactions.routes(),
    ]
