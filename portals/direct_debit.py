"""The administrators' "Direct debit" page: each direct-debit gateway account's settings and
status poll (its cursor, last poll and error), and each on-boarded customer — account
reference, payment stop — with the one-off schedules kassa submitted and the history of
statuses the polls saw for each.

Its forms set a gateway's settings (which status counts as paid, the establishment fee and
commission customers are shown: ``saveGatewaySettings``) and which customer classes a gateway
bills (``billClassThroughGateway``); a refusal comes back beside its field.

It runs ``gatewayBillingAccounts`` and ``gatewayEnrollments`` as the visitor, like every
portal page, so a reseller's administrators see their own customers only.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import forms, graphql, rendering
from portals.admin import STAFF
from portals.forms import Form
from portals.graphql import Visitor
from portals.navigation import ADMIN_HOME
from portals.session import requires

DIRECT_DEBIT_PATH = f"{ADMIN_HOME}/direct-debit"

SETTINGS_PATH = f"{DIRECT_DEBIT_PATH}/settings"
CLASSES_PATH = f"{DIRECT_DEBIT_PATH}/classes"
SETTINGS_FIELDS = ("paidOn", "establishmentFee", "feeCurrency", "commissionPercent")
PAID_ON = ("SETTLED", "CLEARED")
#: The class form's choice for "not billed through a gateway".
NO_GATEWAY = ""

DIRECT_DEBIT = """
query AdminDirectDebit {
  gatewayBillingAccounts {
    processorAccountId name paidOn establishmentFee { amount currency } commissionPercent
    pollCursor lastPollAt lastPollSeen lastPollApplied lastPollError billedClassIds
  }
  customerClasses(first: 100) { edges { node { id name } } }
  gatewayEnrollments {
    customerId customerName accountReference status stopCode stopMessage stoppedAt
    schedules {
      externalIdentifier scheduleId amount { amount currency } dueDate status errorCode
      submittedAt history { status statusDate errorCode outcome timesSeen firstSeenAt }
    }
  }
}
"""


SAVE_SETTINGS = """
mutation AdminSaveGatewaySettings($input: SaveGatewaySettingsInput!) {
  saveGatewaySettings(input: $input) { gatewayAccount { name } errors { field code message } }
}
"""
BILL_CLASS = """
mutation AdminBillClassThroughGateway($input: BillClassThroughGatewayInput!) {
  billClassThroughGateway(input: $input) { processorAccountId errors { field code message } }
}
"""


#: What a class's billing form key starts with (:func:`class_form_key`).
CLASS_FORM_PREFIX = "class-"


def class_form_key(class_id: str) -> str:
    """The key of a class's billing form among the page's forms."""
    return f"{CLASS_FORM_PREFIX}{class_id}"


async def _page(
    request: Request,
    forms_shown: dict[str, Form] | None = None,
    notice: str | None = None,
) -> Response:
    """The page; ``forms_shown`` holds a refused form by its key (a gateway account's id,
    or :func:`class_form_key`), drawn again with its errors."""
    data = await graphql.execute(request, DIRECT_DEBIT, {})
    accounts = data["gatewayBillingAccounts"]
    shown = dict(forms_shown or {})
    for account in accounts:
        shown.setdefault(
            account["processorAccountId"],
            Form(
                values={
                    "paidOn": account["paidOn"],
                    "establishmentFee": account["establishmentFee"]["amount"],
                    "feeCurrency": account["establishmentFee"]["currency"],
                    "commissionPercent": account["commissionPercent"],
                }
            ),
        )
    classes = [edge["node"] for edge in data["customerClasses"]["edges"]]
    billed_by = {c: a for a in accounts for c in a["billedClassIds"]}
    for cls in classes:  # each class's form shows how it is billed now
        through = billed_by.get(cls["id"])
        shown.setdefault(
            class_form_key(cls["id"]),
            Form(
                values={
                    "processorAccountId": through["processorAccountId"] if through else NO_GATEWAY
                }
            ),
        )
    listed = {class_form_key(cls["id"]) for cls in classes}
    unlisted = [key for key in shown if key.startswith(CLASS_FORM_PREFIX) and key not in listed]
    # A refused class the page does not list (a forged id): its problems above every form.
    shown["classes"] = shown.pop(unlisted[0]) if unlisted else Form()
    return rendering.render(
        request,
        "admin/direct_debit.html",
        {
            "accounts": accounts,
            "enrollments": data["gatewayEnrollments"],
            "forms": shown,
            "classes": classes,
            "billed_by": {c: a["name"] for c, a in billed_by.items()},
            "gateway_options": [(NO_GATEWAY, "Not by direct debit")]
            + [(a["processorAccountId"], f"By direct debit through {a['name']}") for a in accounts],
            "notice": notice,
        },
        status_code=max(form.status_code for form in shown.values()),
    )


@requires(*STAFF)
async def direct_debit(request: Request, visitor: Visitor) -> Response:
    return await _page(request)


@requires(*STAFF)
async def save_settings(request: Request, visitor: Visitor) -> Response:
    values = await forms.read(request)
    account_id = values.get("processorAccountId", "")
    payload = await graphql.mutate(
        request,
        SAVE_SETTINGS,
        {
            "processorAccountId": account_id,
            "paidOn": forms.choice(values.get("paidOn"), PAID_ON) or "SETTLED",
            **{name: values.get(name, "") for name in SETTINGS_FIELDS[1:]},
        },
    )
    if payload["errors"]:
        form = Form.with_errors(values, payload["errors"], fields=SETTINGS_FIELDS)
        return await _page(request, {account_id: form})
    return await _page(request, notice=f"{payload['gatewayAccount']['name']}'s settings saved.")


@requires(*STAFF)
async def bill_class(request: Request, visitor: Visitor) -> Response:
    values = await forms.read(request)
    account_id = values.get("processorAccountId", NO_GATEWAY)
    payload = await graphql.mutate(
        request,
        BILL_CLASS,
        {"classId": values.get("classId", ""), "processorAccountId": account_id or None},
    )
    if payload["errors"]:
        form = Form.with_errors(values, payload["errors"], fields=("processorAccountId",))
        return await _page(request, {class_form_key(values.get("classId", "")): form})
    done = "is now billed by direct debit" if account_id else "is no longer billed by direct debit"
    return await _page(request, notice=f"The class {done}.")


def routes() -> list[BaseRoute]:
    return [
        Route(DIRECT_DEBIT_PATH, direct_debit, methods=["GET"]),
        Route(SETTINGS_PATH, save_settings, methods=["POST"]),
        Route(CLASSES_PATH, bill_class, methods=["POST"]),
    ]
