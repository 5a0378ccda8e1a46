"""The customer portal: dashboard, invoices, payments, accounts, profile and cards.

Every handler asks the API for what it shows, as the signed-in customer, with the
documents below; the API decides what the customer may see (another customer's invoice
simply is not there: a 404 page).  Actions are POSTs that run one mutation and draw the
page, or under htmx only its changed part, again with the outcome beside the form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import available_timezones

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import forms, graphql, rendering, words
from portals.forms import Form
from portals.graphql import Visitor, found
from portals.session import requires

CUSTOMER = "CUSTOMER"
PAGE_SIZE = 20
#: The filter choices on the invoice list, in the order a customer thinks of them.
INVOICE_STATUSES = ("UNPAID", "PARTIALLY_PAID", "OVERDUE", "PAID", "VOID")
#: The time zone field's suggestions: UTC and the place names ("Europe/London"), not the
#: tz database's aliases and oddities.  Only suggestions: the API decides what is valid.
TIME_ZONES = [
    "UTC",
    *sorted(
        name
        for name in available_timezones()
        if "/" in name and not name.startswith(("Etc/", "posix/", "right/", "SystemV/"))
    ),
]

CARD = "fragment Card on PaymentMethod { id brand last4 expMonth expYear isDefault createdAt }"
MONEY = "fragment Amount on Money { amount currency }"
ERRORS = "errors { field code message }"
PAYMENT_RESULT = f"payment {{ id status message actionUrl amount {{ ...Amount }} }} {ERRORS}"
#: Pay with Bitcoin, on the dashboard and on an open invoice: the customer's newest address
#: as a BIP21 URI and its QR code, what to expect, and the recent bitcoin payments.
BITCOIN = """
fragment Bitcoin on Customer {
  bitcoinAddress { address }
  bitcoinPaymentRequest(invoiceId: $invoice) {
    address uri qrCodeSvg amount { ...Amount } invoiceId
    rate { ...Amount } rateFetchedAt minimumPayment { ...Amount } confirmationsRequired
  }
  bitcoinPayments {
    id txid vout amount { ...Amount } value { ...Amount } confirmations state
    firstSeenAt creditedAt
  }
}
"""
#: requestBitcoinAddress's refusal when the customer's owner has no Bitcoin settings.
NO_BITCOIN_WALLET = "NO_BITCOIN_WALLET"
#: How many of the customer's bitcoin payments the portal lists (newest first).
RECENT_BITCOIN_PAYMENTS = 10

DASHBOARD = (
    """
query PortalDashboard($customer: ID!, $invoice: ID) {
  customer(id: $customer) {
    name status timeZone autoPayment nextBillAt cashSlipOffered
    ...Bitcoin
    customerClass {
      regularInvoices { cardCharging } outOfTurnInvoices { cardCharging }
    }
    balance { ...Amount } availableFunds { ...Amount } creditLimit { ...Amount }
    unpaid: invoices(first: 100, status: UNPAID) { ...OpenInvoice }
    partiallyPaid: invoices(first: 100, status: PARTIALLY_PAID) { ...OpenInvoice }
    overdue: invoices(first: 100, status: OVERDUE) { ...OpenInvoice }
    paymentMethods { ...Card }
  }
}
fragment OpenInvoice on Invoice {
  id number status dueDate total { ...Amount } outstanding { ...Amount }
}
"""
    + BITCOIN
    + CARD
    + MONEY
)

TOP_UP = f"""
mutation PortalTopUp($input: TopUpInput!) {{ topUp(input: $input) {{ {PAYMENT_RESULT} }} }}
{MONEY}
"""

UPDATE_CUSTOMER = f"""
mutation PortalUpdateCustomer($input: UpdateCustomerInput!) {{
  updateCustomer(input: $input) {{ customer {{ id }} {ERRORS} }}
}}
"""

INVOICES = (
    """
query PortalInvoices($customer: ID!, $status: InvoiceStatus, $after: String, $first: Int!) {
  invoices(customerId: $customer, status: $status, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id number kind status issueDate dueDate
      total { ...Amount } amountPaid { ...Amount } outstanding { ...Amount }
    } }
  }
}
"""
    + MONEY
)

INVOICE = (
    """
query PortalInvoice($id: ID!, $invoice: ID) {
  invoice(id: $id) {
    id number kind status periodStart periodEnd issueDate dueDate voidedAt voidReason pdfUrl
    nextAttemptAt notChargedReason
    attempts {
      scheduledFor status processorResponse cancelReason amount { ...Amount }
    }
    previousBalance { ...Amount } paymentsInPeriod { ...Amount } total { ...Amount }
    amountPaid { ...Amount } outstanding { ...Amount } balanceDue { ...Amount }
    lines { accountNumber description serviceAt amount { ...Amount } }
    payments {
      amount { ...Amount }
      payment { id method status receivedAt reference paymentMethod { brand last4 } }
    }
    customer { timeZone paymentMethods { ...Card } ...Bitcoin }
  }
}
"""
    + BITCOIN
    + CARD
    + MONEY
)

REQUEST_BITCOIN_ADDRESS = f"""
mutation PortalRequestBitcoinAddress($input: RequestBitcoinAddressInput!) {{
  requestBitcoinAddress(input: $input) {{ bitcoinAddress {{ address }} {ERRORS} }}
}}
"""

PAY_INVOICE = f"""
mutation PortalPayInvoice($input: PayInvoiceInput!) {{
  payInvoice(input: $input) {{ {PAYMENT_RESULT} }}
}}
{MONEY}
"""

PAYMENTS = (
    """
query PortalPayments($customer: ID!, $after: String, $first: Int!) {
  customer(id: $customer) { timeZone }
  payments(customerId: $customer, first: $first, after: $after) {
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

ACCOUNTS = """
query PortalAccounts($customer: ID!) {
  customer(id: $customer) { timeZone accounts { id number product status createdAt } }
}
"""

PROFILE = """
query PortalProfile($customer: ID!) {
  customer(id: $customer) { name email phone address timeZone }
}
"""
#: The contact details a customer keeps up to date (payment systems that redirect the
#: customer need the e-mail address and phone number).
PROFILE_FIELDS = ("name", "email", "phone", "address", "timeZone")

PAYMENT_METHODS = (
    """
query PortalPaymentMethods($customer: ID!) {
  customer(id: $customer) {
    autoPayment paymentMethods { ...Card }
    cardForm { processor scriptUrl publicSettings { name value } }
  }
  directDebitOffer(customerId: $customer) { billedByGateway gateway status }
}
"""
    + CARD
)

ADD_PAYMENT_METHOD = f"""
mutation PortalAddPaymentMethod($input: AddPaymentMethodInput!) {{
  addPaymentMethod(input: $input) {{ paymentMethod {{ brand last4 }} {ERRORS} }}
}}
"""
SET_DEFAULT_PAYMENT_METHOD = f"""
mutation PortalSetDefaultPaymentMethod($input: SetDefaultPaymentMethodInput!) {{
  setDefaultPaymentMethod(input: $input) {{ paymentMethod {{ brand last4 }} {ERRORS} }}
}}
"""
ADOPT_PAYMENT_METHOD = f"""
mutation PortalAdoptPaymentMethod($input: AdoptPaymentMethodInput!) {{
  adoptPaymentMethod(input: $input) {{ paymentMethod {{ brand last4 }} {ERRORS} }}
}}
"""
REMOVE_PAYMENT_METHOD = f"""
mutation PortalRemovePaymentMethod($input: RemovePaymentMethodInput!) {{
  removePaymentMethod(input: $input) {{ paymentMethod {{ brand last4 }} {ERRORS} }}
}}
"""
#: What a customer types on the add-card form.  The card number and security code are
#: never drawn back into a page, not even after an error.
CARD_FIELDS = ("cardNumber", "expMonth", "expYear", "cvc", "holder")
CARD_FIELDS_SHOWN_AGAIN = ("expMonth", "expYear", "holder")


def _card_and_key(values: dict[str, str]) -> dict[str, Any]:
    """The card and idempotency key of a payment form, as the API's input fields."""
    return {
        "idempotencyKey": forms.idempotency_key(values),
        "paymentMethodId": values.get("paymentMethodId") or None,
    }


@dataclass(frozen=True)
class AddressAsked:
    """What became of asking for a fresh bitcoin address: the form with the API's refusal
    placed, and whether the refusal was that the customer's owner takes no bitcoin."""

    form: Form
    not_offered: bool = False


def _bitcoin(
    customer: dict[str, Any], action: str, target: str, asked: AddressAsked | None
) -> dict[str, Any]:
    """What the Pay with Bitcoin section draws, from the ``Bitcoin`` fragment.

    Bitcoin is not offered when the customer has an address but no payment request (its
    owner's Bitcoin settings are gone), or when asking for one was refused for want of
    them; before a first address the section offers the button that asks for one.
    """
    asked = asked or AddressAsked(Form())
    request = customer["bitcoinPaymentRequest"]
    offered = not asked.not_offered and (request is not None or customer["bitcoinAddress"] is None)
    return {
        "request": request,
        "payments": customer["bitcoinPayments"][:RECENT_BITCOIN_PAYMENTS],
        "offered": offered,
        "form": asked.form,
        "action": action,
        "target": target,
    }


async def _request_bitcoin_address(request: Request, visitor: Visitor) -> AddressAsked:
    """Ask the API for a fresh receiving address for the visitor (privacy: earlier ones stay
    the customer's and stay watched)."""
    values = await forms.read(request)
    payload = await graphql.mutate(
        request, REQUEST_BITCOIN_ADDRESS, {"customerId": visitor.customer_id}
    )
    if any(error["code"] == NO_BITCOIN_WALLET for error in payload["errors"]):
        return AddressAsked(Form(), not_offered=True)
    return AddressAsked(forms.after(values, payload["errors"], fields=()))


# --- dashboard --------------------------------------------------------------------------


async def _dashboard(
    request: Request,
    visitor: Visitor,
    *,
    top_up: Form | None = None,
    auto_payment: Form | None = None,
    outcome: dict[str, Any] | None = None,
    bitcoin_address: AddressAsked | None = None,
) -> Response:
    customer = found(
        (await graphql.execute(request, DASHBOARD, {"customer": visitor.customer_id}))["customer"]
    )
    open_invoices = sorted(
        [*customer["unpaid"], *customer["partiallyPaid"], *customer["overdue"]],
        key=lambda invoice: (invoice["dueDate"], invoice["number"]),
    )
    top_up = top_up or Form()
    auto_payment = auto_payment or Form()
    return rendering.render(
        request,
        "dashboard.html",
        {
            "customer": customer,
            "open_invoices": open_invoices,
            "auto_payment_words": words.auto_payment(customer),
            "top_up": top_up,
            "auto_payment": auto_payment,
            "outcome": outcome,
            "bitcoin": _bitcoin(customer, "/portal/bitcoin-address", "#dashboard", bitcoin_address),
        },
        fragment="dashboard",
        status_code=max(
            top_up.status_code,
            auto_payment.status_code,
            bitcoin_address.form.status_code if bitcoin_address else 200,
        ),
    )


@requires(CUSTOMER)
async def dashboard(request: Request, visitor: Visitor) -> Response:
    return await _dashboard(request, visitor)


@requires(CUSTOMER)
async def top_up(request: Request, visitor: Visitor) -> Response:
    """Charge a stored card for credit; the dashboard shows the new figures and the outcome."""
    values = await forms.read(request)
    payload = await graphql.mutate(
        request,
        TOP_UP,
        {
            "customerId": visitor.customer_id,
            "amount": values.get("amount", ""),
            **_card_and_key(values),
        },
    )
    form = forms.after(values, payload["errors"], fields=("amount",))
    return await _dashboard(request, visitor, top_up=form, outcome=payload["payment"])


@requires(CUSTOMER)
async def set_auto_payment(request: Request, visitor: Visitor) -> Response:
    """Turn charging the default card for each new invoice on or off."""
    values = await forms.read(request)
    payload = await graphql.mutate(
        request,
        UPDATE_CUSTOMER,
        {
            "id": visitor.customer_id,
            "autoPayment": values.get("autoPayment") == "on",
        },
    )
    form = forms.after(values, payload["errors"], fields=())
    return await _dashboard(request, visitor, auto_payment=form)


@requires(CUSTOMER)
async def dashboard_bitcoin_address(request: Request, visitor: Visitor) -> Response:
    """A fresh bitcoin address; the dashboard shows it with its QR code."""
    form = await _request_bitcoin_address(request, visitor)
    return await _dashboard(request, visitor, bitcoin_address=form)


# --- invoices -----------------------------------------------------------------------------


@requires(CUSTOMER)
async def invoices(request: Request, visitor: Visitor) -> Response:
    """The invoices, newest first, filtered by status; htmx swaps only the list."""
    status = forms.choice(request.query_params.get("status"), INVOICE_STATUSES)
    data = await graphql.execute(
        request,
        INVOICES,
        {
            "customer": visitor.customer_id,
            "status": status,
            "first": PAGE_SIZE,
            "after": request.query_params.get("after") or None,
        },
    )
    return rendering.render(
        request,
        "invoices.html",
        {
            "invoices": data["invoices"],
            "status": status,
            "statuses": INVOICE_STATUSES,
        },
        fragment="invoice_list",
    )


async def _invoice_page(
    request: Request,
    pay: Form | None = None,
    outcome: dict[str, Any] | None = None,
    bitcoin_address: AddressAsked | None = None,
) -> Response:
    invoice_id = request.path_params["id"]
    invoice = found(
        (await graphql.execute(request, INVOICE, {"id": invoice_id, "invoice": invoice_id}))[
            "invoice"
        ]
    )
    pay = pay or Form(values={"amount": invoice["outstanding"]["amount"]})
    return rendering.render(
        request,
        "invoice.html",
        {
            "invoice": invoice,
            "pay": pay,
            "outcome": outcome,
            "bitcoin": _bitcoin(
                invoice["customer"],
                f"/portal/invoices/{invoice['id']}/bitcoin-address",
                "#invoice",
                bitcoin_address,
            ),
        },
        fragment="invoice",
        status_code=max(
            pay.status_code, bitcoin_address.form.status_code if bitcoin_address else 200
        ),
    )


@requires(CUSTOMER)
async def invoice(request: Request, visitor: Visitor) -> Response:
    """One invoice with its lines and payments, its card payment attempts (so a customer
    sees when the card will be charged, or why it will not), and a form to pay."""
    return await _invoice_page(request)


@requires(CUSTOMER)
async def pay_invoice(request: Request, visitor: Visitor) -> Response:
    """Pay the invoice with a stored card: the invoice is drawn again with its new status."""
    values = await forms.read(request)
    payload = await graphql.mutate(
        request,
        PAY_INVOICE,
        {
            "invoiceId": request.path_params["id"],
            "amount": values.get("amount") or None,
            **_card_and_key(values),
        },
    )
    form = forms.after(values, payload["errors"], fields=("amount",))
    return await _invoice_page(request, pay=form, outcome=payload["payment"])


@requires(CUSTOMER)
async def invoice_bitcoin_address(request: Request, visitor: Visitor) -> Response:
    """A fresh bitcoin address; the invoice page shows it, asking for what is still to pay."""
    found((await graphql.execute(request, INVOICE, {"id": request.path_params["id"]}))["invoice"])
    form = await _request_bitcoin_address(request, visitor)
    return await _invoice_page(request, bitcoin_address=form)


# --- payments and accounts ------------------------------------------------------------


@requires(CUSTOMER)
async def payments(request: Request, visitor: Visitor) -> Response:
    data = await graphql.execute(
        request,
        PAYMENTS,
        {
            "customer": visitor.customer_id,
            "first": PAGE_SIZE,
            "after": request.query_params.get("after") or None,
        },
    )
    return rendering.render(
        request,
        "payments.html",
        {
            "payments": data["payments"],
            "time_zone": found(data["customer"])["timeZone"],
        },
        fragment="payment_list",
    )


@requires(CUSTOMER)
async def accounts(request: Request, visitor: Visitor) -> Response:
    customer = found(
        (await graphql.execute(request, ACCOUNTS, {"customer": visitor.customer_id}))["customer"]
    )
    return rendering.render(request, "accounts.html", {"customer": customer})


# --- profile ------------------------------------------------------------------------------


async def _profile_page(
    request: Request, visitor: Visitor, form: Form | None = None, saved: bool = False
) -> Response:
    if form is None:
        customer = found(
            (await graphql.execute(request, PROFILE, {"customer": visitor.customer_id}))["customer"]
        )
        form = Form(values={name: customer[name] or "" for name in PROFILE_FIELDS})
    return rendering.render(
        request,
        "profile.html",
        {"form": form, "saved": saved, "time_zones": TIME_ZONES},
        fragment="profile",
        status_code=form.status_code,
    )


@requires(CUSTOMER)
async def profile(request: Request, visitor: Visitor) -> Response:
    return await _profile_page(request, visitor)


@requires(CUSTOMER)
async def update_profile(request: Request, visitor: Visitor) -> Response:
    """Save contact details and time zone; a refused value is marked beside its field."""
    values = await forms.read(request)
    payload = await graphql.mutate(
        request,
        UPDATE_CUSTOMER,
        {
            "id": visitor.customer_id,
            **{name: values.get(name, "") for name in PROFILE_FIELDS},
        },
    )
    if payload["errors"]:
        form = Form.with_errors(values, payload["errors"], fields=PROFILE_FIELDS)
        return await _profile_page(request, visitor, form)
    return await _profile_page(request, visitor, saved=True)


# --- payment methods --------------------------------------------------------------------


async def _cards_page(
    request: Request, visitor: Visitor, add: Form | None = None, notice: str | None = None
) -> Response:
    data = await graphql.execute(request, PAYMENT_METHODS, {"customer": visitor.customer_id})
    customer = found(data["customer"])
    add = add or Form()
    card_form = customer["cardForm"]
    return rendering.render(
        request,
        "payment_methods.html",
        {
            "customer": customer,
            "direct_debit": data["directDebitOffer"],
            "add": add,
            "notice": notice,
            "card_form": card_form,
            "card_settings": {s["name"]: s["value"] for s in card_form["publicSettings"]},
        },
        fragment="payment_methods",
        status_code=add.status_code,
        script_from=card_form["scriptUrl"],
    )


def _card_words(card: dict[str, str]) -> str:
    return f"{card['brand'].capitalize()} ending {card['last4']}"


@requires(CUSTOMER)
async def payment_methods(request: Request, visitor: Visitor) -> Response:
    return await _cards_page(request, visitor)


@requires(CUSTOMER)
async def add_payment_method(request: Request, visitor: Visitor) -> Response:
    """Store a card: the number goes to the card processor through the API, which keeps only
    the processor's token, the brand, the last four digits and the expiry."""
    values = await forms.read(request)
    if "clientToken" in values:
        return await _adopt_card(request, visitor, values)
    shown_again = {name: values.get(name, "") for name in CARD_FIELDS_SHOWN_AGAIN}
    local_errors: dict[str, str] = {}
    month = forms.whole_number(values, "expMonth", local_errors)
    year = forms.whole_number(values, "expYear", local_errors)
    if month is None or year is None:
        return await _cards_page(request, visitor, Form(values=shown_again, errors=local_errors))
    payload = await graphql.mutate(
        request,
        ADD_PAYMENT_METHOD,
        {
            "customerId": visitor.customer_id,
            "cardNumber": values.get("cardNumber", ""),
            "expMonth": month,
            "expYear": year,
            "cvc": values.get("cvc", ""),
            "holder": values.get("holder") or None,
            "makeDefault": values.get("makeDefault") == "on",
        },
    )
    if payload["errors"]:
        form = Form.with_errors(
            shown_again, payload["errors"], fields=CARD_FIELDS, aliases={"expiry": "expMonth"}
        )
        return await _cards_page(request, visitor, form)
    added = _card_words(payload["paymentMethod"])
    return await _cards_page(request, visitor, notice=f"{added} was added.")


async def _adopt_card(request: Request, visitor: Visitor, values: dict[str, str]) -> Response:
    """Store the card the processor's script tokenized in the browser (static/card-form.js):
    only its token came here, never the number."""
    payload = await graphql.mutate(
        request,
        ADOPT_PAYMENT_METHOD,
        {
            "customerId": visitor.customer_id,
            "clientToken": values["clientToken"],
            "makeDefault": values.get("makeDefault") == "on",
        },
    )
    if payload["errors"]:
        return await _cards_page(
            request, visitor, Form.with_errors({}, payload["errors"], fields=())
        )
    added = _card_words(payload["paymentMethod"])
    return await _cards_page(request, visitor, notice=f"{added} was added.")


async def _change_card(request: Request, visitor: Visitor, document: str, done: str) -> Response:
    """Run a mutation on the card in the path; an id that is not the customer's is a 404."""
    payload = await graphql.mutate(request, document, {"id": request.path_params["id"]})
    if payload["errors"]:
        raise graphql.ObjectNotFound
    return await _cards_page(
        request, visitor, notice=f"{_card_words(payload['paymentMethod'])} {done}."
    )


@requires(CUSTOMER)
async def set_default_payment_method(request: Request, visitor: Visitor) -> Response:
    return await _change_card(
        request, visitor, SET_DEFAULT_PAYMENT_METHOD, "is now the card charged by default"
    )


@requires(CUSTOMER)
async def remove_payment_method(request: Request, visitor: Visitor) -> Response:
    return await _change_card(request, visitor, REMOVE_PAYMENT_METHOD, "was removed")


def routes() -> list[BaseRoute]:
    """The customer portal's pages and actions (guarded by :func:`portals.routes`)."""
    return [
        Route("/portal", dashboard, methods=["GET"]),
        Route("/portal/top-up", top_up, methods=["POST"]),
        Route("/portal/auto-payment", set_auto_payment, methods=["POST"]),
        Route("/portal/bitcoin-address", dashboard_bitcoin_address, methods=["POST"]),
        Route("/portal/invoices", invoices, methods=["GET"]),
        Route("/portal/invoices/{id}", invoice, methods=["GET"]),
        Route("/portal/invoices/{id}/pay", pay_invoice, methods=["POST"]),
        Route("/portal/invoices/{id}/bitcoin-address", invoice_bitcoin_address, methods=["POST"]),
        Route("/portal/payments", payments, methods=["GET"]),
        Route("/portal/accounts", accounts, methods=["GET"]),
        Route("/portal/profile", profile, methods=["GET"]),
        Route("/portal/profile", update_profile, methods=["POST"]),
        Route("/portal/payment-methods", payment_methods, methods=["GET"]),
        Route("/portal/payment-methods", add_payment_method, methods=["POST"]),
        Route("/portal/payment-methods/{id}/default", set_default_payment_method, methods=["POST"]),
        Route("/portal/payment-methods/{id}/remove", remove_payment_method, methods=["POST"]),
    ]
