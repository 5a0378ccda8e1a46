"""Paying another way: on a payment system's own page (PayPal, Skrill, Payarena, Remita).

``/portal/pay`` lists the payment systems the customer's owner offers (``paymentOptions``)
with an amount — an open invoice's outstanding (``?invoice=<id>``) or a top-up — and a Pay
button.  Paying runs ``startRedirectPayment`` as the visitor and sends the browser on to the
system's page — by a page whose script follows the link, or submits the system's form for a
system entered by a form POST (Remita), with a visible link or button for a browser without
JavaScript (a 303 would be refused by the browser: see :func:`_leave`).  What the customer
must fix first (Remita's phone or e-mail) comes back beside the form, with a link to the
profile, before anyone is sent anywhere.

``/portal/pay/return/{payment}`` is where the system sends the customer back (and where it
sends them when they cancel); a system that POSTs the browser back (Payarena) is turned into
a GET of the same address (:func:`posted_back`).  It runs ``completeRedirectPayment``, which asks the system —
the return alone proves nothing — and shows the outcome: paid, failed or canceled, or still
waiting for the system's confirmation, in which case the page polls itself a few times with
htmx.  It is a GET that is safe to reload: a payment is booked once, however often it runs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from portals import forms, graphql, rendering
from portals.customer import CUSTOMER, ERRORS, MONEY
from portals.forms import Form
from portals.graphql import Visitor
from portals.session import requires
from schema.relay import encode_id

PAY_PATH = "/portal/pay"
RETURN_PATH = "/portal/pay/return/{payment_id}"
#: How often the waiting page asks again, and how many times before it stops.
POLL_SECONDS = 3
POLLS = 5
#: The refusals the customer fixes on the profile page.
PROFILE_FIXES = {"PHONE_REQUIRED", "EMAIL_REQUIRED", "NAME_REQUIRED"}

OPTIONS = f"""
query PortalPaymentOptions($customer: ID!, $invoice: ID!, $withInvoice: Boolean!) {{
  paymentOptions(customerId: $customer) {{
    processorAccountId name processor minimum {{ ...Amount }}
  }}
  customer(id: $customer) {{ balance {{ ...Amount }} }}
  invoice(id: $invoice) @include(if: $withInvoice) {{
    id number status outstanding {{ ...Amount }}
  }}
}}
{MONEY}
"""
START = f"""
mutation PortalStartRedirectPayment($input: StartRedirectPaymentInput!) {{
  startRedirectPayment(input: $input) {{
    payment {{ id status }}
    redirect {{ url method fields {{ name value }} }}
    {ERRORS}
  }}
}}
"""
COMPLETE = f"""
mutation PortalCompleteRedirectPayment($input: CompleteRedirectPaymentInput!) {{
  completeRedirectPayment(input: $input) {{
    payment {{
      id status message declineCode processorAccount amount {{ ...Amount }}
      invoice {{ id number }}
    }}
    {ERRORS}
  }}
}}
{MONEY}
"""


async def _page(request: Request, visitor: Visitor, form: Form, invoice_id: str) -> Response:
    data = await graphql.execute(
        request,
        OPTIONS,
        {"customer": visitor.customer_id, "invoice": invoice_id, "withInvoice": bool(invoice_id)},
    )
    invoice = data.get("invoice")
    if invoice and "amount" not in form.values:
        form.values["amount"] = invoice["outstanding"]["amount"]
    options = data["paymentOptions"]
    if options and "processorAccountId" not in form.values:
        form.values["processorAccountId"] = options[0]["processorAccountId"]
    codes = set(form.values.get("_codes", "").split())
    return rendering.render(
        request,
        "redirect_pay.html",
        {
            "options": options,
            "invoice": invoice,
            "balance": data["customer"]["balance"],
            "form": form,
            "fix_profile": bool(codes & PROFILE_FIXES),
        },
        status_code=form.status_code,
    )


@requires(CUSTOMER)
async def pay_page(request: Request, visitor: Visitor) -> Response:
    return await _page(request, visitor, Form(), request.query_params.get("invoice", ""))


@requires(CUSTOMER)
async def pay(request: Request, visitor: Visitor) -> Response:
    """Start the payment and send the browser to the system's page."""
    values = await forms.read(request)
    invoice_id = values.get("invoiceId", "")
    payload = await graphql.mutate(
        request,
        START,
        {
            "customerId": visitor.customer_id,
            "processorAccountId": values.get("processorAccountId", ""),
            "amount": values.get("amount") or None,
            "invoiceId": invoice_id or None,
            "idempotencyKey": forms.idempotency_key(values),
        },
    )
    redirect = payload["redirect"]
    if payload["errors"] or redirect is None:
        form = forms.after(values, payload["errors"], fields=("amount", "processorAccountId"))
        if not payload["errors"]:
            form.problems.append("This payment was already made; see your payments.")
        form.values["_codes"] = " ".join(error["code"] for error in payload["errors"])
        return await _page(request, visitor, form, invoice_id)
    return _leave(request, redirect)


def _leave(request: Request, redirect: dict[str, Any]) -> Response:
    """The page that sends the browser on: its script follows the link (GET) or submits the
    form (POST), and a visible link or button does it without JavaScript.

    Not a 303: the page's ``form-action 'self'`` forbids a form's submission to end up on
    another site, redirects included, so the page allows the system's origin as a form target
    only here, where the form is the system's own.
    """
    response = rendering.render(request, "redirect_pay_form.html", {"redirect": redirect})
    parts = urlsplit(redirect["url"])
    if redirect["method"] == "POST" and parts.scheme in ("http", "https") and parts.netloc:
        policy = response.headers["content-security-policy"]
        response.headers["content-security-policy"] = policy.replace(
            "form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}"
        )
    return response


@requires(CUSTOMER)
async def returned(request: Request, visitor: Visitor) -> Response:
    """The outcome, as the system tells it (see the module's docstring)."""
    # billing builds the address with the payment's own id (it knows no API ids).
    payment_id = encode_id("Payment", request.path_params["payment_id"])
    query = request.url.query
    payload = await graphql.mutate(request, COMPLETE, {"paymentId": payment_id, "query": query})
    payment = graphql.found(payload["payment"])
    poll = int(request.query_params.get("poll", "0") or 0)
    waiting = payment["status"] == "PENDING"
    canceled = payment["declineCode"] == "canceled" or (
        waiting and "canceled" in request.query_params
    )
    context: dict[str, Any] = {
        "payment": payment,
        "waiting": waiting and not canceled,
        "canceled": canceled,
        "poll_url": _again(request, poll + 1) if waiting and poll < POLLS else None,
        "poll_seconds": POLL_SECONDS,
    }
    return rendering.render(request, "redirect_pay_return.html", context, fragment="outcome")


async def posted_back(request: Request) -> Response:
    """A system that sends the browser back by a POST (Payarena posts ``trxId``, ``status``
    and ``approved``) lands here: the fields become the query of a 303 to the outcome page.

    Nothing is read or written here, so the request needs neither a session nor a CSRF token
    (:data:`portals.csrf.CROSS_SITE_RETURNS`) — which it could not have: another site's POST
    carries no SameSite=Lax cookie.  The GET that follows is a top-level navigation, which
    does, and it asks the system as every return does.
    """
    fields = await forms.read(request)
    query = urlencode([(k, v) for k, v in fields.items() if k != "csrf_token"])
    target = request.url.path + (f"?{query}" if query else "")
    return RedirectResponse(target, status_code=303)


def _again(request: Request, poll: int) -> str:
    """This page's address with the poll count ``poll`` (the system's query kept)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "poll"]
    query = "&".join(f"{k}={v}" for k, v in [*kept, ("poll", str(poll))])
    return f"{request.url.path}?{query}"


def routes() -> list[BaseRoute]:
    return [
        Route(PAY_PATH, pay_page, methods=["GET"]),
        Route(PAY_PATH, pay, methods=["POST"]),
        Route("/portal/pay/return/{payment_id:int}", returned, methods=["GET"]),
        Route("/portal/pay/return/{payment_id:int}", posted_back, methods=["POST"]),
    ]
