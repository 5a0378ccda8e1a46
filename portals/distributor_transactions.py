"""The distributor's own transactions — sales of credit, cash collected, commissions,
voided collections and its payments to the provider: what moved its balance — filtered by
kind and by day, paged, and exported as CSV; beside them its newest invoices (which move no
money, so they are listed apart rather than among the movements).

The filters are an ordinary GET form (``?kind=SALE&kind=COLLECTION&from=…&to=…``), so a
reload or a shared link shows the same list and the CSV link carries the same filters.
Days are the distributor's own calendar days, both ends included: a day becomes the
instants the API takes at the distributor's local midnight, as its statements count them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import graphql, rendering, words
from portals.customer import MONEY
from portals.distributor_api import DISTRIBUTOR, own
from portals.forms import Form
from portals.graphql import Visitor
from portals.navigation import DISTRIBUTOR_HOME
from portals.session import requires

PATH = f"{DISTRIBUTOR_HOME}/transactions"
CSV_PATH = f"{PATH}.csv"
PAGE_SIZE = 25
#: The newest invoices shown beside the transactions: a year of monthly periods.
INVOICES_SHOWN = 12
KINDS = tuple(words.DISTRIBUTOR_TRANSACTION_KINDS)
#: The query parameters that filter the list (``after`` pages it).
FILTERS = ("kind", "from", "to")

TRANSACTIONS = (
    """
query DistributorTransactions($first: Int!, $after: String, $kinds: [DistributorTransactionKind!],
                              $from: DateTime, $to: DateTime, $invoices: Int!) {
  viewer { distributor {
    timeZone currency balance { ...Amount }
    transactions(first: $first, after: $after, kinds: $kinds, from: $from, to: $to) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node {
        id kind description createdAt
        amount { ...Amount } commission { ...Amount } gross { ...Amount }
        customer { id name }
      } }
    }
    invoices(first: $invoices) {
      totalCount
      edges { node {
        id number status periodStart periodEnd dueDate balanceDue { ...Amount }
      } }
    }
  } }
}
"""
    + MONEY
)

TIME_ZONE = "query DistributorTimeZone { viewer { distributor { timeZone name } } }"

CSV = """
query DistributorTransactionsCsv($kinds: [DistributorTransactionKind!], $from: DateTime,
                                 $to: DateTime) {
  viewer { distributor { transactionsCsv(kinds: $kinds, from: $from, to: $to) } }
}
"""


def _day(values: dict[str, str], name: str, errors: dict[str, str]) -> date | None:
    text = values.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = "enter a day such as 2026-03-31"
        return None


def _midnight(day: date, time_zone: str) -> str:
    """The instant ``day`` begins in ``time_zone``, as the API's ISO DateTime."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(time_zone)).isoformat()


def _filters(request: Request, time_zone: str) -> tuple[Form, dict[str, Any]]:
    """The filter form as submitted (kinds it never offered dropped, days it cannot read
    marked) and the API's ``kinds``/``from``/``to`` for it."""
    kinds = [kind for kind in request.query_params.getlist("kind") if kind in KINDS]
    values = {name: request.query_params.get(name, "") for name in FILTERS[1:]}
    errors: dict[str, str] = {}
    first, last = _day(values, "from", errors), _day(values, "to", errors)
    if first and last and last < first:
        errors["to"] = "the last day comes before the first"
    form = Form(values=values, errors=errors)
    if errors:
        return form, {"kinds": kinds or None, "from": None, "to": None}
    return form, {
        "kinds": kinds or None,
        "from": _midnight(first, time_zone) if first else None,
        "to": _midnight(last + timedelta(days=1), time_zone) if last else None,
    }


def _query_string(request: Request) -> str:
    """The filters of this request without its cursor, for the pager and the CSV link."""
    return urlencode([(k, v) for k, v in request.query_params.multi_items() if k in FILTERS and v])


def _file_name(form: Form) -> str:
    """``transactions-2026-03-01-to-2026-03-31.csv``: the days it holds, as filtered."""
    first, last = form.values.get("from", "").strip(), form.values.get("to", "").strip()
    span = f"-{first or 'start'}-to-{last or 'now'}" if first or last else ""
    return f"transactions{span}.csv"


@requires(DISTRIBUTOR)
async def transactions(request: Request, visitor: Visitor) -> Response:
    """The distributor's transactions, newest first; under htmx only the list."""
    time_zone = own(await graphql.execute(request, TIME_ZONE))["timeZone"]
    form, variables = _filters(request, time_zone)
    data = await graphql.execute(
        request,
        TRANSACTIONS,
        {
            **variables,
            "first": PAGE_SIZE,
            "after": request.query_params.get("after") or None,
            "invoices": INVOICES_SHOWN,
        },
    )
    distributor = own(data)
    return rendering.render(
        request,
        "distributor/transactions.html",
        {
            "distributor": distributor,
            "transactions": distributor["transactions"],
            "invoices": distributor["invoices"],
            "filters": form,
            "kinds": [(kind, words.DISTRIBUTOR_TRANSACTION_KINDS[kind]) for kind in KINDS],
            "chosen": variables["kinds"] or [],
            "filtered": any(variables.values()),
            "query": _query_string(request),
            "paged": bool(request.query_params.get("after")),
        },
        fragment="transaction_list",
        status_code=form.status_code,
    )


@requires(DISTRIBUTOR)
async def transactions_csv(request: Request, visitor: Visitor) -> Response:
    """The same transactions as a CSV file (the API's ``transactionsCsv``, oldest first)."""
    distributor = own(await graphql.execute(request, TIME_ZONE))
    form, variables = _filters(request, distributor["timeZone"])
    if not form.ok:
        return await rendering.error_page(request, 400, "Correct the days in the filter first.")
    try:
        data = await graphql.execute(request, CSV, variables)
    except graphql.OperationFailed as failure:
        if "TOO_MANY_ROWS" not in failure.codes:
            raise
        return await rendering.error_page(request, 400, rendering.sentence(str(failure)))
    return Response(
        own(data)["transactionsCsv"],
        media_type="text/csv; charset=utf-8",
        headers={
            **rendering.SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="{_file_name(form)}"',
        },
    )


def routes() -> list[BaseRoute]:
    """The transaction list and its export (gathered by :func:`portals.distributor.routes`)."""
    return [
        Route(PATH, transactions, methods=["GET"]),
        Route(CSV_PATH, transactions_csv, methods=["GET"]),
    ]
