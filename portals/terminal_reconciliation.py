"""The administrators' download of a cash terminal network's daily reconciliation: the same
CSV the network itself downloads (``docs/terminals.md``), for one UTC day.

``GET /admin/payment-systems/{account_id}/reconciliation?date=YYYY-MM-DD`` (today, UTC, when
no date is given) runs ``terminalReconciliation`` as the visitor, so a reseller's
administrators reach only their own networks; any other account answers 404, a malformed
date 400.  The payment systems page links to it from each cash terminal network.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import graphql, rendering
from portals.admin import STAFF
from portals.graphql import Visitor
from portals.navigation import ADMIN_HOME
from portals.session import requires

RECONCILIATION_PATH = f"{ADMIN_HOME}/payment-systems/{{account_id}}/reconciliation"

RECONCILIATION = """
query AdminTerminalReconciliation($id: ID!, $date: Date!) {
  terminalReconciliation(accountId: $id, date: $date)
}
"""


@requires(*STAFF)
async def download_reconciliation(request: Request, visitor: Visitor) -> Response:
    """The CSV as an attachment named after the network's id and the day."""
    asked = request.query_params.get("date") or datetime.now(UTC).date().isoformat()
    try:
        day = date.fromisoformat(asked)
    except ValueError:
        return await rendering.error_page(request, 400, "The date is YYYY-MM-DD.")
    account_id = request.path_params["account_id"]
    data = await graphql.execute(
        request, RECONCILIATION, {"id": account_id, "date": day.isoformat()}
    )
    text = graphql.found(data["terminalReconciliation"])
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="terminal-reconciliation-{day}.csv"'
        },
    )


def routes() -> list[BaseRoute]:
    """The download (guarded by :func:`portals.routes`)."""
    return [Route(RECONCILIATION_PATH, download_reconciliation, methods=["GET"])]
