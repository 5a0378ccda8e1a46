"""The administrators' distributor pages: find a distributor, make one (with its portal
login) or change its terms, see what it owes, earns and did, and record what it paid.

As on the other staff pages (:mod:`portals.admin`), every page runs GraphQL operations as
the signed-in visitor, so a reseller's administrators see and manage their own reseller's
distributors only, and anyone else's is a 404 page.  The payment form carries a key made
when it is drawn, so a double submit records one payment.  The page's API keys section makes
keys that act as the distributor (the token shown once), lists them and revokes them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from billing.periods import local_midnight_utc
from portals import forms, graphql, htmx, rendering, words
from portals.admin import STAFF
from portals.classes import CLASS_PAGE_SIZE
from portals.customer import ERRORS, MONEY
from portals.forms import Form
from portals.graphql import Visitor, found
from portals.navigation import ADMIN_HOME
from portals.session import requires

DISTRIBUTORS_PATH = f"{ADMIN_HOME}/distributors"
LIST_PAGE_SIZE = 20
#: The distributors' own search limit (its name or accounting address).
SEARCH_MAX_LENGTH = 254
#: How many rows the transactions and customers lists show at a time.
SECTION_SIZE = 10
#: How many billing periods the commission table shows, the open one first.
COMMISSION_PERIODS = 6
#: The lists on a distributor's page that page on their own (``?list=<name>&after=…``).
LISTS = ("transactions", "customers")
#: How many of the distributor's API keys the page lists, newest first (revoked included).
KEYS_SHOWN = 50
API_KEY_SCOPES = tuple(words.API_KEY_SCOPES)
API_KEY_FIELDS = ("name", "scope")

BILLING_PERIODS = ("MONTHLY", "MONTHLY_ANNIVERSARY", "SEMI_MONTHLY", "WEEKLY", "DAILY")
STATISTICS = tuple(words.STATISTICS_EMAILS)
TRANSACTION_KINDS = tuple(words.DISTRIBUTOR_TRANSACTION_KINDS)
#: The two forms a credit-limit warning threshold takes: the radio's value, the input field.
THRESHOLDS = {"percent": "warningThresholdPercent", "amount": "warningThresholdAmount"}

#: The form's fields, named as the API's input fields (the login's by their input path).
TERMS_FIELDS = (
    "name",
    "classId",
    "billingPeriod",
    "timeZone",
    "creditLimit",
    "salesCommission",
    "paymentCommission",
    "contactName",
    "phone",
    "address",
    "accountingEmail",
    "statisticsEmail",
)
LOGIN_FIELDS = ("login.email", "login.password", "login.timeZone", "login.language")
FORM_FIELDS = (*TERMS_FIELDS, "currency", "warningThreshold", *LOGIN_FIELDS)
#: The threshold is one input on the form, whichever of the API's two fields it goes to.
FORM_ALIASES = dict.fromkeys(THRESHOLDS.values(), "warningThreshold")
PAYMENT_FIELDS = ("amount", "reference")

DISTRIBUTORS = f"""
query AdminDistributors($search: String, $first: Int!, $after: String) {{
  distributors(search: $search, first: $first, after: $after) {{
    totalCount
    pageInfo {{ hasNextPage endCursor }}
    edges {{ node {{
      id name currency accountingEmail overWarningThreshold
      balance {{ ...Amount }} creditLimit {{ ...Amount }} availableCredit {{ ...Amount }}
    }} }}
  }}
}}
{MONEY}
"""

#: Everything the edit form shows, and the detail page's profile.
TERMS = """
fragment Terms on Distributor {
  id name currency timeZone billingPeriod salesCommission paymentCommission
  contactName phone address accountingEmail statisticsEmail warningThresholdPercent
  creditLimit { ...Amount } warningThreshold { ...Amount } customerClass { id name }
}
"""

DISTRIBUTOR = f"""
query AdminDistributor($id: ID!, $first: Int!, $periods: Int!, $kinds: [DistributorTransactionKind!],
                       $from: DateTime, $to: DateTime, $transactionsAfter: String,
                       $customersAfter: String, $keys: Int!) {{
  apiKeys(distributorId: $id, first: $keys) {{
    totalCount
    edges {{ node {{ id name prefix scope createdAt revokedAt }} }}
  }}
  distributor(id: $id) {{
    ...Terms createdAt periodStart nextBillAt overWarningThreshold
    balance {{ ...Amount }} availableCredit {{ ...Amount }} commissionThisPeriod {{ ...Amount }}
    commissionByPeriod(first: $periods) {{ periodStart periodEnd commission {{ ...Amount }} }}
    transactions(first: $first, after: $transactionsAfter, kinds: $kinds, from: $from, to: $to) {{
      totalCount
      pageInfo {{ hasNextPage endCursor }}
      edges {{ node {{
        id kind description createdAt
        amount {{ ...Amount }} commission {{ ...Amount }} gross {{ ...Amount }}
        customer {{ id name }}
      }} }}
    }}
    customers(first: $first, after: $customersAfter) {{
      totalCount
      pageInfo {{ hasNextPage endCursor }}
      edges {{ node {{ id name email status balance {{ ...Amount }} }} }}
    }}
  }}
}}
{TERMS}
{MONEY}
"""

EDITED = f"""
query AdminDistributorTerms($id: ID!) {{ distributor(id: $id) {{ ...Terms }} }}
{TERMS}
{MONEY}
"""

#: What a page needs before its main operation: the time zone whose days the filters name.
TIME_ZONE = "query AdminDistributorTimeZone($id: ID!) { distributor(id: $id) { timeZone } }"

TRANSACTIONS_CSV = """
query AdminDistributorCsv($id: ID!, $kinds: [DistributorTransactionKind!], $from: DateTime,
                          $to: DateTime) {
  distributor(id: $id) { name transactionsCsv(kinds: $kinds, from: $from, to: $to) }
}
"""

CLASS_CHOICES = f"""
query AdminDistributorClasses {{
  customerClasses(first: {CLASS_PAGE_SIZE}) {{ edges {{ node {{ id name }} }} }}
}}
"""

CREATE = f"""
mutation AdminCreateDistributor($input: CreateDistributorInput!) {{
  createDistributor(input: $input) {{ distributor {{ id name }} {ERRORS} }}
}}
"""

UPDATE = f"""
mutation AdminUpdateDistributor($input: UpdateDistributorInput!) {{
  updateDistributor(input: $input) {{ distributor {{ id name }} {ERRORS} }}
}}
"""

RECORD_PAYMENT = f"""
mutation AdminRecordDistributorPayment($input: RecordDistributorPaymentInput!) {{
  recordDistributorPayment(input: $input) {{
    transaction {{ id gross {{ ...Amount }} }} {ERRORS}
  }}
}}
{MONEY}
"""


CREATE_API_KEY = f"""
mutation AdminCreateDistributorApiKey($input: CreateApiKeyInput!) {{
  createApiKey(input: $input) {{ token apiKey {{ id name }} {ERRORS} }}
}}
"""

REVOKE_API_KEY = f"""
mutation AdminRevokeDistributorApiKey($input: RevokeApiKeyInput!) {{
  revokeApiKey(input: $input) {{ apiKey {{ id name }} {ERRORS} }}
}}
"""


def _path(distributor_id: str) -> str:
    return f"{DISTRIBUTORS_PATH}/{distributor_id}"


# --- the list -----------------------------------------------------------------------------


@requires(*STAFF)
async def distributors(request: Request, visitor: Visitor) -> Response:
    """Distributors by part of their name or accounting address, newest first, with what
    each owes and may still take on; htmx swaps in only the list as the visitor types."""
    search = request.query_params.get("q", "").strip()
    if len(search) > SEARCH_MAX_LENGTH:  # the box stops this, but an address can be typed
        return await rendering.error_page(
            request, 400, f"Search for at most {SEARCH_MAX_LENGTH} characters."
        )
    data = await graphql.execute(
        request,
        DISTRIBUTORS,
        {
            "search": search or None,
            "first": LIST_PAGE_SIZE,
            "after": request.query_params.get("after") or None,
        },
    )
    return rendering.render(
        request,
        "admin/distributors.html",
        {
            "distributors": data["distributors"],
            "q": search,
            "search_max_length": SEARCH_MAX_LENGTH,
        },
        fragment="distributor_list",
    )


# --- making and changing one --------------------------------------------------------------


def _form_values(distributor: dict[str, Any]) -> dict[str, str]:
    """A distributor as the form's text fields; its threshold in the form it was set."""
    values = {
        name: distributor[name] or ""
        for name in (
            "name",
            "currency",
            "timeZone",
            "billingPeriod",
            "salesCommission",
            "paymentCommission",
            "contactName",
            "phone",
            "address",
            "accountingEmail",
            "statisticsEmail",
        )
    }
    values["creditLimit"] = distributor["creditLimit"]["amount"]
    values["classId"] = (distributor["customerClass"] or {}).get("id", "")
    percent = distributor["warningThresholdPercent"]
    values["warningThresholdKind"] = "amount" if percent is None else "percent"
    values["warningThreshold"] = percent or distributor["warningThreshold"]["amount"]
    return values


def _terms_input(values: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The fields create and update share, and the errors found before asking: a choice
    the form never offered would make the API refuse the request as malformed."""
    errors: dict[str, str] = {}
    data: dict[str, Any] = {name: values.get(name, "").strip() or None for name in TERMS_FIELDS}
    data["name"] = values.get("name", "")
    for name, allowed in (("billingPeriod", BILLING_PERIODS), ("statisticsEmail", STATISTICS)):
        data[name] = forms.choice(values.get(name), allowed)
        if data[name] is None:
            errors[name] = "choose one of the options"
    kind = forms.choice(values.get("warningThresholdKind"), tuple(THRESHOLDS))
    threshold = values.get("warningThreshold", "").strip()
    if kind is None:
        errors["warningThreshold"] = "choose a percentage of the credit limit or an amount"
    elif threshold:
        data[THRESHOLDS[kind]] = threshold
    return data, errors


def _create_input(values: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The create input: the terms, the currency, and a login when an e-mail is given."""
    data, errors = _terms_input(values)
    data["currency"] = values.get("currency", "").strip().upper()
    if not data["currency"]:
        errors["currency"] = "enter the currency's ISO code, like USD"
    email = values.get("login.email", "").strip()
    if email:
        data["login"] = {
            "email": email,
            "password": values.get("login.password", ""),
            "timeZone": values.get("login.timeZone", "").strip() or None,
            "language": values.get("login.language", "").strip() or None,
        }
    elif values.get("login.password"):
        errors["login.email"] = "enter the e-mail address the distributor signs in with"
    return data, errors


async def _class_choices(request: Request) -> list[tuple[str, str]]:
    data = await graphql.execute(request, CLASS_CHOICES)
    edges = data["customerClasses"]["edges"]
    classes = [(edge["node"]["id"], edge["node"]["name"]) for edge in edges]
    return [("", "No class (the provider's defaults)"), *classes]


async def _form_page(
    request: Request, form: Form, distributor: dict[str, Any] | None = None
) -> Response:
    """The create form (``distributor`` None) or the edit form, swapped whole by htmx."""
    return rendering.render(
        request,
        "admin/distributor_form.html",
        {
            "form": form,
            "distributor": distributor,
            "editing": distributor is not None,
            "action": f"{_path(distributor['id'])}/edit" if distributor else DISTRIBUTORS_PATH,
            "class_choices": await _class_choices(request),
            "period_choices": [(value, words.name(value)) for value in BILLING_PERIODS],
            "statistics_choices": words.STATISTICS_EMAILS.items(),
        },
        fragment="distributor_form",
        status_code=form.status_code,
    )


async def _edited(request: Request) -> dict[str, Any]:
    data = await graphql.execute(request, EDITED, {"id": request.path_params["id"]})
    distributor: dict[str, Any] = found(data["distributor"])
    return distributor


@requires(*STAFF)
async def new_distributor(request: Request, visitor: Visitor) -> Response:
    """A blank form with the API's defaults: monthly, UTC, warned at 90 % of the limit."""
    defaults = {
        "billingPeriod": "MONTHLY",
        "timeZone": "UTC",
        "creditLimit": "0",
        "salesCommission": "0",
        "paymentCommission": "0",
        "warningThresholdKind": "percent",
        "warningThreshold": "90",
        "statisticsEmail": "SUMMARY",
    }
    return await _form_page(request, Form(values=defaults))


@requires(*STAFF)
async def create_distributor(request: Request, visitor: Visitor) -> Response:
    """Make the distributor (and its login); its page follows."""
    values = await forms.read(request)
    data, errors = _create_input(values)
    if errors:
        return await _form_page(request, Form(values=values, errors=errors))
    payload = await graphql.mutate(request, CREATE, data)
    if payload["errors"]:
        form = Form.with_errors(values, payload["errors"], FORM_FIELDS, FORM_ALIASES)
        return await _form_page(request, form)
    return htmx.redirect(request, _path(payload["distributor"]["id"]))


@requires(*STAFF)
async def edit_distributor(request: Request, visitor: Visitor) -> Response:
    distributor = await _edited(request)
    return await _form_page(request, Form(values=_form_values(distributor)), distributor)


@requires(*STAFF)
async def update_distributor(request: Request, visitor: Visitor) -> Response:
    """Save the terms; the distributor's page follows.  The currency is fixed for good."""
    distributor = await _edited(request)
    values = await forms.read(request)
    values["currency"] = distributor["currency"]
    data, errors = _terms_input(values)
    if errors:
        return await _form_page(request, Form(values=values, errors=errors), distributor)
    payload = await graphql.mutate(request, UPDATE, {"id": distributor["id"], **data})
    if payload["errors"]:
        form = Form.with_errors(values, payload["errors"], FORM_FIELDS, FORM_ALIASES)
        return await _form_page(request, form, distributor)
    return htmx.redirect(request, _path(distributor["id"]))


# --- one distributor ----------------------------------------------------------------------


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _filters(request: Request) -> dict[str, Any]:
    """The transaction filters in the address: kinds, and from/to days (both included)."""
    params = request.query_params
    return {
        "kinds": [kind for kind in params.getlist("kind") if kind in TRANSACTION_KINDS],
        "from": _day(params.get("from")),
        "to": _day(params.get("to")),
    }


async def _filter_variables(request: Request, filters: dict[str, Any]) -> dict[str, Any]:
    """The filters as the API takes them: days on the distributor's calendar become the
    instants they begin (``to`` exclusive, so the last day is the whole day).  Asking for
    the time zone also answers 404 for a distributor the visitor may not see."""
    data = await graphql.execute(request, TIME_ZONE, {"id": request.path_params["id"]})
    time_zone = found(data["distributor"])["timeZone"]
    since, until = filters["from"], filters["to"]
    return {
        "kinds": filters["kinds"] or None,
        "from": local_midnight_utc(since, time_zone).isoformat() if since else None,
        "to": local_midnight_utc(until + timedelta(days=1), time_zone).isoformat()
        if until
        else None,
    }


def _filter_query(filters: dict[str, Any]) -> list[tuple[str, str]]:
    """The filters as an address's query, for the CSV link and the pager."""
    query = [("kind", kind) for kind in filters["kinds"]]
    query += [(name, filters[name].isoformat()) for name in ("from", "to") if filters[name]]
    return query


async def _distributor_page(
    request: Request,
    *,
    payment: Form | None = None,
    recorded: dict[str, Any] | None = None,
    key_form: Form | None = None,
    key_news: dict[str, str] | None = None,
) -> Response:
    """The distributor's page; under htmx only the list being paged or filtered, after a
    payment the whole distributor (its figures and transactions change), and after an API
    key was made or revoked the keys section (with the new token, shown this once)."""
    listed = forms.choice(request.query_params.get("list"), LISTS)
    after = request.query_params.get("after") or None
    filters = _filters(request)
    data = await graphql.execute(
        request,
        DISTRIBUTOR,
        {
            "id": request.path_params["id"],
            "first": SECTION_SIZE,
            "periods": COMMISSION_PERIODS,
            **await _filter_variables(request, filters),
            **{f"{name}After": after if name == listed else None for name in LISTS},
            "keys": KEYS_SHOWN,
        },
    )
    distributor = found(data["distributor"])
    payment = payment or Form()
    fragment = f"{listed}_list" if listed else ("distributor" if key_form is None else "api_keys")
    return rendering.render(
        request,
        "admin/distributor.html",
        {
            "distributor": distributor,
            "path": _path(distributor["id"]),
            "transactions": distributor["transactions"],
            "customers": distributor["customers"],
            "paged": listed if after else None,
            "filters": filters,
            "filter_query": _filter_query(filters),
            "kind_names": words.DISTRIBUTOR_TRANSACTION_KINDS,
            "statistics_names": words.STATISTICS_EMAILS,
            "payment": payment,
            "recorded": recorded,
            "api_keys": data["apiKeys"],
            "key_form": key_form or _new_key_form(),
            "key_news": key_news,
            "scope_names": words.API_KEY_SCOPES,
        },
        fragment=fragment,
        status_code=(key_form or payment).status_code,
    )


def _new_key_form() -> Form:
    """An empty key form; a key that may change things is what a till needs, so that first."""
    return Form(values={"scope": API_KEY_SCOPES[0]})


@requires(*STAFF)
async def distributor(request: Request, visitor: Visitor) -> Response:
    """Figures, commission per period, terms, transactions, customers, the payment form."""
    return await _distributor_page(request)


@requires(*STAFF)
async def record_payment(request: Request, visitor: Visitor) -> Response:
    """The distributor paid the provider: its balance goes down, once per form."""
    values = await forms.read(request)
    payload = await graphql.mutate(
        request,
        RECORD_PAYMENT,
        {
            "distributorId": request.path_params["id"],
            "amount": values.get("amount", "").strip(),
            "reference": values.get("reference", "").strip() or None,
            "idempotencyKey": forms.idempotency_key(values),
        },
    )
    form = forms.after(values, payload["errors"], fields=PAYMENT_FIELDS)
    paid = payload["transaction"]  # its gross is negative: it lowered what is owed
    recorded = paid and {**paid["gross"], "amount": paid["gross"]["amount"].removeprefix("-")}
    return await _distributor_page(request, payment=form, recorded=recorded)


@requires(*STAFF)
async def create_api_key(request: Request, visitor: Visitor) -> Response:
    """A key that acts as the distributor; its token is on the page this once."""
    values = await forms.read(request)
    payload = await graphql.mutate(
        request,
        CREATE_API_KEY,
        {
            "name": values.get("name", ""),
            "scope": forms.choice(values.get("scope"), API_KEY_SCOPES) or "READ",
            "distributorId": request.path_params["id"],
        },
    )
    if payload["errors"]:
        form = forms.after(values, payload["errors"], fields=API_KEY_FIELDS)
        return await _distributor_page(request, key_form=form)
    news = {"name": payload["apiKey"]["name"], "token": payload["token"]}
    return await _distributor_page(request, key_form=_new_key_form(), key_news=news)


@requires(*STAFF)
async def revoke_api_key(request: Request, visitor: Visitor) -> Response:
    """Stop one of the distributor's keys from working, at once."""
    payload = await graphql.mutate(request, REVOKE_API_KEY, {"id": request.path_params["key_id"]})
    revoked = payload["apiKey"]
    return await _distributor_page(
        request,
        key_form=forms.after({}, payload["errors"], fields=()),
        key_news=None if revoked is None else {"name": revoked["name"]},
    )


@requires(*STAFF)
async def transactions_csv(request: Request, visitor: Visitor) -> Response:
    """The transactions the page's filters select, as the API's CSV, to save."""
    variables = await _filter_variables(request, _filters(request))
    data = await graphql.execute(
        request, TRANSACTIONS_CSV, {"id": request.path_params["id"], **variables}
    )
    distributor = found(data["distributor"])
    return Response(
        distributor["transactionsCsv"],
        media_type="text/csv; charset=utf-8",
        headers={
            **rendering.SECURITY_HEADERS,
            "Content-Disposition": 'attachment; filename="distributor-transactions.csv"',
        },
    )


def routes() -> list[BaseRoute]:
    """The distributor pages (guarded by :func:`portals.routes`); ``new`` before ``{id}``."""
    one = f"{DISTRIBUTORS_PATH}/{{id}}"
    return [
        Route(DISTRIBUTORS_PATH, distributors, methods=["GET"]),
        Route(DISTRIBUTORS_PATH, create_distributor, methods=["POST"]),
        Route(f"{DISTRIBUTORS_PATH}/new", new_distributor, methods=["GET"]),
        Route(one, distributor, methods=["GET"]),
        Route(f"{one}/edit", edit_distributor, methods=["GET"]),
        Route(f"{one}/edit", update_distributor, methods=["POST"]),
        Route(f"{one}/payments", record_payment, methods=["POST"]),
        Route(f"{one}/transactions.csv", transactions_csv, methods=["GET"]),
        Route(f"{one}/api-keys", create_api_key, methods=["POST"]),
        Route(f"{one}/api-keys/{{key_id}}/revoke", revoke_api_key, methods=["POST"]),
    ]
