"""The administrators' customer classes: the rules that say when each kind of invoice is
due, charged to the card and held for review.

The class form edits them; the API applies a change to invoices issued from then on.  As
in :mod:`portals.admin`, every page runs GraphQL operations as the signed-in visitor and
every action is one mutation drawn again with its outcome in place.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import forms, graphql, rendering, words
from portals.admin import STAFF
from portals.customer import ERRORS
from portals.forms import Form
from portals.graphql import Visitor, found
from portals.navigation import ADMIN_HOME
from portals.session import requires

CLASSES_PATH = f"{ADMIN_HOME}/classes"
#: The API's limit on one page of a connection: enough for every class an installation keeps.
CLASS_PAGE_SIZE = 100

SETTINGS = """
fragment Settings on CollectionSettings {
  cardCharging attemptDaysBeforeDue attemptDaysAfterDue reviewInvoices
}
"""
CLASS = (
    "fragment Class on CustomerClass { id name paymentTermsDays gracePeriodDays "
    "issueEmptyInvoices regularInvoices { ...Settings } outOfTurnInvoices { ...Settings } }"
)
CUSTOMER_CLASSES = f"""
query AdminCustomerClasses($first: Int!) {{
  customerClasses(first: $first) {{ edges {{ node {{ ...Class }} }} }}
}}
{CLASS}
{SETTINGS}
"""
CREATE_CLASS = f"""
mutation AdminCreateCustomerClass($input: CreateCustomerClassInput!) {{
  createCustomerClass(input: $input) {{ customerClass {{ id name }} {ERRORS} }}
}}
"""
UPDATE_CLASS = f"""
mutation AdminUpdateCustomerClass($input: UpdateCustomerClassInput!) {{
  updateCustomerClass(input: $input) {{ customerClass {{ id name }} {ERRORS} }}
}}
"""

#: The two kinds of invoice a class sets rules for, as the API's input field and the words
#: on the form.
KINDS = words.INVOICE_KINDS
CHARGINGS = ("NEVER", "ON_ISSUE", "ON_DUE_DATE")
CHARGING_CHOICES = tuple((value, words.name(value)) for value in CHARGINGS)
DAY_LISTS = ("attemptDaysBeforeDue", "attemptDaysAfterDue")
CLASS_FIELDS = (
    "name",
    "paymentTermsDays",
    "gracePeriodDays",
    "issueEmptyInvoices",
    *(
        f"{kind}.{name}"
        for kind, _ in KINDS
        for name in ("cardCharging", *DAY_LISTS, "reviewInvoices")
    ),
)


async def _classes(request: Request) -> list[dict[str, Any]]:
    data = await graphql.execute(request, CUSTOMER_CLASSES, {"first": CLASS_PAGE_SIZE})
    return [edge["node"] for edge in data["customerClasses"]["edges"]]


def _class_values(cls: dict[str, Any]) -> dict[str, str]:
    """A class as the form's text fields (days as ``0,3,7``; a ticked box as ``on``)."""
    values = {
        "name": cls["name"],
        "paymentTermsDays": str(cls["paymentTermsDays"]),
        "gracePeriodDays": str(cls["gracePeriodDays"]),
    }
    if cls["issueEmptyInvoices"]:
        values["issueEmptyInvoices"] = "on"
    for kind, _ in KINDS:
        settings = cls[kind]
        values[f"{kind}.cardCharging"] = settings["cardCharging"]
        for name in DAY_LISTS:
            values[f"{kind}.{name}"] = ",".join(str(day) for day in settings[name])
        if settings["reviewInvoices"]:
            values[f"{kind}.reviewInvoices"] = "on"
    return values


def _day_list(values: dict[str, str], name: str, errors: dict[str, str]) -> list[int] | None:
    """``0, 3,7`` as days, or an error beside the field: the API takes a list of ``Int``,
    so text there would be a malformed request rather than a mistake to correct."""
    parts = [part.strip() for part in values.get(name, "").split(",") if part.strip()]
    if all(part.isascii() and part.isdigit() for part in parts):
        return [int(part) for part in parts]
    errors[name] = "enter whole numbers of days separated by commas, like 0,3,7"
    return None


def _class_input(values: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The create or update input from the form, and the errors found before asking."""
    errors: dict[str, str] = {}
    data: dict[str, Any] = {
        "name": values.get("name", ""),
        "paymentTermsDays": forms.whole_number(values, "paymentTermsDays", errors),
        "gracePeriodDays": forms.whole_number(values, "gracePeriodDays", errors),
        "issueEmptyInvoices": values.get("issueEmptyInvoices") == "on",
    }
    for kind, _ in KINDS:
        charging = forms.choice(values.get(f"{kind}.cardCharging"), CHARGINGS)
        if charging is None:
            errors[f"{kind}.cardCharging"] = "choose one of the options"
        data[kind] = {
            "cardCharging": charging,
            "reviewInvoices": values.get(f"{kind}.reviewInvoices") == "on",
            **{name: _day_list(values, f"{kind}.{name}", errors) for name in DAY_LISTS},
        }
    return data, errors


async def _classes_page(
    request: Request, new: Form | None = None, done: str | None = None
) -> Response:
    new = new or Form(
        values={f"{kind}.cardCharging": "NEVER" for kind, _ in KINDS}
        | {"paymentTermsDays": "14", "gracePeriodDays": "7"}
    )
    return rendering.render(
        request,
        "admin/classes.html",
        {
            "classes": await _classes(request),
            "form": new,
            "done": done,
            "path": CLASSES_PATH,
            "kinds": KINDS,
            "charging_choices": CHARGING_CHOICES,
        },
        fragment="classes",
        status_code=new.status_code,
    )


async def _class_page(
    request: Request, form: Form | None = None, done: str | None = None
) -> Response:
    wanted = request.path_params["id"]
    cls = found(next((cls for cls in await _classes(request) if cls["id"] == wanted), None))
    form = form or Form(values=_class_values(cls))
    return rendering.render(
        request,
        "admin/class.html",
        {
            "cls": cls,
            "form": form,
            "done": done,
            "path": f"{CLASSES_PATH}/{cls['id']}",
            "kinds": KINDS,
            "charging_choices": CHARGING_CHOICES,
        },
        fragment="class_form",
        status_code=form.status_code,
    )


@requires(*STAFF)
async def classes(request: Request, visitor: Visitor) -> Response:
    """Every class with its rules, and a form to make a new one."""
    return await _classes_page(request)


@requires(*STAFF)
async def create_class(request: Request, visitor: Visitor) -> Response:
    values = await forms.read(request)
    data, errors = _class_input(values)
    if errors:
        return await _classes_page(request, Form(values=values, errors=errors))
    payload = await graphql.mutate(request, CREATE_CLASS, data)
    if payload["errors"]:
        form = Form.with_errors(values, payload["errors"], fields=CLASS_FIELDS)
        return await _classes_page(request, form)
    return await _classes_page(request, done=f"Created {payload['customerClass']['name']}.")


@requires(*STAFF)
async def customer_class(request: Request, visitor: Visitor) -> Response:
    return await _class_page(request)


@requires(*STAFF)
async def update_class(request: Request, visitor: Visitor) -> Response:
    """Save the class; the API applies it to invoices issued from now on."""
    values = await forms.read(request)
    data, errors = _class_input(values)
    if errors:
        return await _class_page(request, Form(values=values, errors=errors))
    payload = await graphql.mutate(request, UPDATE_CLASS, {"id": request.path_params["id"], **data})
    if payload["errors"]:
        if any(error["code"] == "NOT_FOUND" for error in payload["errors"]):
            raise graphql.ObjectNotFound
        form = Form.with_errors(values, payload["errors"], fields=CLASS_FIELDS)
        return await _class_page(request, form)
    return await _class_page(request, done="Saved. New invoices follow these rules.")


def routes() -> list[BaseRoute]:
    """The class pages (guarded by :func:`portals.routes`)."""
    return [
        Route(CLASSES_PATH, classes, methods=["GET"]),
        Route(CLASSES_PATH, create_class, methods=["POST"]),
        Route(f"{CLASSES_PATH}/{{id}}", customer_class, methods=["GET"]),
        Route(f"{CLASSES_PATH}/{{id}}", update_class, methods=["POST"]),
    ]
