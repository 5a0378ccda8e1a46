"""The administrators' "Direct debit" page: each direct-debit gateway account's settings and
status poll (its cursor, last poll and error), and each on-boarded customer — account
reference, payment stop — with the one-off schedules kassa submitted and the history of
statuses the polls saw for each.

It runs ``gatewayBillingAccounts`` and ``gatewayEnrollments`` as the visitor, like every
portal page, so a reseller's administrators see their own customers only.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import graphql, rendering
from portals.admin import STAFF
from portals.graphql import Visitor
from portals.navigation import ADMIN_HOME
from portals.session import requires

DIRECT_DEBIT_PATH = f"{ADMIN_HOME}/direct-debit"

DIRECT_DEBIT = """
query AdminDirectDebit {
  gatewayBillingAccounts {
    processorAccountId name paidOn establishmentFee { amount currency } commissionPercent
    pollCursor lastPollAt lastPollSeen lastPollApplied lastPollError
  }
  gatewayEnrollments {
    customerId customerName accountReference status stopCode stopMessage stoppedAt
    schedules {
      externalIdentifier scheduleId amount { amount currency } dueDate status errorCode
      submittedAt history { status statusDate errorCode outcome timesSeen firstSeenAt }
    }
  }
}
"""


@requires(*STAFF)
async def direct_debit(request: Request, visitor: Visitor) -> Response:
    data = await graphql.execute(request, DIRECT_DEBIT, {})
    return rendering.render(
        request,
        "admin/direct_debit.html",
        {"accounts": data["gatewayBillingAccounts"], "enrollments": data["gatewayEnrollments"]},
    )


def routes() -> list[BaseRoute]:
    return [Route(DIRECT_DEBIT_PATH, direct_debit, methods=["GET"])]
