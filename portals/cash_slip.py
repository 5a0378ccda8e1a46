"""The customer's cash slip (PayNearMe): ``/portal/slip`` shows the standing slip to print —
the barcode of the payment identifier with the identifier printed beside it, the customer's
name, the amount due (or "any amount"), where and how to pay — with a print stylesheet that
prints the slip alone, and a link to the same slip as a PDF.

The slip is made on the first visit (``requestCashSlip``, which finds it again afterwards:
one slip per customer for good), as the visitor, like every portal page; a customer whose
owner offers no cash slips is told so.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import graphql, rendering
from portals.customer import CUSTOMER, ERRORS, MONEY
from portals.graphql import Visitor
from portals.session import requires

SLIP_PATH = "/portal/slip"
#: requestCashSlip's refusal when no payment system of the customer's makes slips.
NOT_OFFERED = "CASH_SLIPS_NOT_OFFERED"

REQUEST_CASH_SLIP = f"""
mutation PortalRequestCashSlip($input: RequestCashSlipInput!) {{
  requestCashSlip(input: $input) {{
    cashSlip {{
      paymentIdentifier whereToPay howToPay barcodeSvg pdfUrl customerName amountDue {{ ...Amount }}
    }}
    {ERRORS}
  }}
}}
{MONEY}
"""


@requires(CUSTOMER)
async def slip(request: Request, visitor: Visitor) -> Response:
    payload = await graphql.mutate(request, REQUEST_CASH_SLIP, {"customerId": visitor.customer_id})
    codes = {error["code"] for error in payload["errors"]}
    return rendering.render(
        request,
        "cash_slip.html",
        {
            "slip": payload["cashSlip"],
            "not_offered": NOT_OFFERED in codes,
            "errors": payload["errors"],
        },
        status_code=200 if payload["cashSlip"] or NOT_OFFERED in codes else 503,
    )


def routes() -> list[BaseRoute]:
    return [Route(SLIP_PATH, slip, methods=["GET"])]
