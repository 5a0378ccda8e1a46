"""The customer's direct-debit set-up, for a customer whose class is billed through a
direct-debit gateway (docs/gateway-billing.md).

``/portal/direct-debit`` first shows what the gateway adds — its establishment fee and its
commission (``directDebitOffer``) — and asks the customer to agree before anything is made at
the gateway.  Agreeing runs ``startDirectDebit`` (the customer and account are made at the
gateway, once) and sends the browser to the gateway's hosted form, whose one-time link lasts
minutes.  The form sends the customer back to ``/portal/direct-debit/return``, which runs
``completeDirectDebit``: kassa asks the gateway what it holds (the return proves nothing) and
keeps only the account's reference and last four digits.  The return is a GET that is safe to
reload: completing twice keeps one method.

The page also shows a payment stop (the gateway refused to debit: a lost card, a closed
account) and lets the customer replace the method the same way.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import forms, graphql, rendering
from portals.customer import CARD, CUSTOMER, ERRORS, MONEY
from portals.forms import Form
from portals.graphql import Visitor
from portals.session import requires

SETUP_PATH = "/portal/direct-debit"
RETURN_PATH = f"{SETUP_PATH}/return"
#: The box the customer ticks to agree to the gateway's fee and commission.
AGREE = "agree"

OFFER = f"""
query PortalDirectDebit($customer: ID!) {{
  directDebitOffer(customerId: $customer) {{
    billedByGateway gateway establishmentFee {{ ...Amount }} commissionPercent
    status accountReference stopMessage paymentMethod {{ ...Card }}
  }}
}}
{CARD}
{MONEY}
"""
START = f"""
mutation PortalStartDirectDebit($input: StartDirectDebitInput!) {{
  startDirectDebit(input: $input) {{ formUrl validTo {ERRORS} }}
}}
"""
COMPLETE = f"""
mutation PortalCompleteDirectDebit($input: CompleteDirectDebitInput!) {{
  completeDirectDebit(input: $input) {{ paymentMethodId accountReference {ERRORS} }}
}}
"""


async def _page(
    request: Request, visitor: Visitor, form: Form | None = None, done: bool = False
) -> Response:
    data = await graphql.execute(request, OFFER, {"customer": visitor.customer_id})
    offer: dict[str, Any] = graphql.found(data["directDebitOffer"])
    form = form or Form()
    return rendering.render(
        request,
        "direct_debit.html",
        {"offer": offer, "form": form, "done": done},
        status_code=form.status_code,
    )


@requires(CUSTOMER)
async def setup_page(request: Request, visitor: Visitor) -> Response:
    return await _page(request, visitor)


@requires(CUSTOMER)
async def start(request: Request, visitor: Visitor) -> Response:
    """Agreed to the fee and commission: make the customer at the gateway and send the
    browser to its form (by a page whose link is followed, as for the payment systems'
    pages: the portal's policy lets a form lead to this site only)."""
    values = await forms.read(request)
    if values.get(AGREE) != "on":
        form = Form(values=values, errors={AGREE: "Tick the box to agree to the gateway's fees."})
        return await _page(request, visitor, form)
    settings = request.app.state.settings
    payload = await graphql.mutate(
        request,
        START,
        {"customerId": visitor.customer_id, "returnUrl": f"{settings.public_url}{RETURN_PATH}"},
    )
    if payload["errors"]:
        return await _page(request, visitor, Form.with_errors(values, payload["errors"], ()))
    redirect = {"url": payload["formUrl"], "method": "GET", "fields": []}
    return rendering.render(request, "redirect_pay_form.html", {"redirect": redirect})


@requires(CUSTOMER)
async def returned(request: Request, visitor: Visitor) -> Response:
    """Back from the gateway's form: keep what the gateway holds, or say why not."""
    payload = await graphql.mutate(request, COMPLETE, {"customerId": visitor.customer_id})
    if payload["errors"]:
        return await _page(request, visitor, Form.with_errors({}, payload["errors"], ()))
    return await _page(request, visitor, done=True)


def routes() -> list[BaseRoute]:
    return [
        Route(SETUP_PATH, setup_page, methods=["GET"]),
        Route(SETUP_PATH, start, methods=["POST"]),
        Route(RETURN_PATH, returned, methods=["GET"]),
    ]
