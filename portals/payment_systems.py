"""The administrators' payment systems page: the processor accounts they administer, a form
to configure a new one, and each one's edit form and Disable button.

It runs ``processorAccounts``, ``processors`` and the processor account mutations as the
visitor, like every portal page, so a reseller's administrators see and change only their
own.  Credentials are write-only here as in the API: each is a password field showing only
whether it is set; a field left blank keeps the stored value, and no value is ever written
into the page — not even one the API refused.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import forms, graphql, rendering
from portals.admin import STAFF
from portals.customer import ERRORS
from portals.forms import Form
from portals.graphql import Visitor
from portals.navigation import ADMIN_HOME
from portals.session import requires

PAYMENT_SYSTEMS_PATH = f"{ADMIN_HOME}/payment-systems"

ACCOUNT = """
fragment Account on ProcessorAccount {
  id resellerId name processor mode baseUrl minimumPayments { amount currency }
  methodKinds enabled credentialsSet callbackPath updatedAt
}
"""
PAYMENT_SYSTEMS = f"""
query AdminPaymentSystems {{
  processorAccounts {{ ...Account }}
  processors {{ name capabilities methodKinds }}
}}
{ACCOUNT}
"""
CREATE = f"""
mutation AdminCreateProcessorAccount($input: CreateProcessorAccountInput!) {{
  createProcessorAccount(input: $input) {{ processorAccount {{ ...Account }} {ERRORS} }}
}}
{ACCOUNT}
"""
UPDATE = f"""
mutation AdminUpdateProcessorAccount($input: UpdateProcessorAccountInput!) {{
  updateProcessorAccount(input: $input) {{ processorAccount {{ ...Account }} {ERRORS} }}
}}
{ACCOUNT}
"""
DISABLE = f"""
mutation AdminDisableProcessorAccount($input: DisableProcessorAccountInput!) {{
  disableProcessorAccount(input: $input) {{ processorAccount {{ ...Account }} {ERRORS} }}
}}
{ACCOUNT}
"""

MODES = (("TEST", "Test (no real money)"), ("LIVE", "Live"))
METHOD_KINDS = (
    ("VISA", "Visa"),
    ("MASTERCARD", "Mastercard"),
    ("AMEX", "American Express"),
    ("DISCOVER", "Discover"),
    ("MAESTRO", "Maestro (Switch)"),
    ("ECHECK", "E-check"),
    ("DIRECT_DEBIT", "Direct debit"),
)
FIELDS = (
    "name",
    "processor",
    "mode",
    "baseUrl",
    "minimums",
    "methodKinds",
    "credentials",
    "credentialName",
)
#: Credential fields are posted as ``credential.<name>``.
CREDENTIAL_PREFIX = "credential."


def _values(account: dict[str, Any]) -> dict[str, str]:
    """An account as its edit form's text (one currency and minimum per line)."""
    return {
        "name": account["name"],
        "processor": account["processor"],
        "mode": account["mode"],
        "baseUrl": account["baseUrl"] or "",
        "minimums": "\n".join(f"{m['currency']} {m['amount']}" for m in account["minimumPayments"]),
    }


def _input(values: dict[str, str], kinds: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The mutation's input from the form, and the mistakes found before asking."""
    errors: dict[str, str] = {}
    rows = [line.split() for line in values.get("minimums", "").splitlines() if line.strip()]
    if any(len(row) != 2 for row in rows):
        errors["minimums"] = "one currency and minimum per line, like: USD 1.00"
        rows = []
    credentials = [
        {"name": name[len(CREDENTIAL_PREFIX) :], "value": value}
        for name, value in values.items()
        if name.startswith(CREDENTIAL_PREFIX) and value
    ]
    added = values.get("credentialName", "").strip()
    if added:
        credentials.append({"name": added, "value": values.get("credentialValue", "")})
    data: dict[str, Any] = {
        "name": values.get("name", ""),
        "processor": values.get("processor", ""),
        "mode": forms.choice(values.get("mode"), tuple(v for v, _ in MODES)) or "TEST",
        "baseUrl": values.get("baseUrl", "").strip() or None,
        "minimums": [{"currency": c, "amount": a} for c, a in rows],
        "methodKinds": [k for k in kinds if k in {v for v, _ in METHOD_KINDS}],
        "credentials": credentials,
    }
    return data, errors


def _without_secrets(values: dict[str, str]) -> dict[str, str]:
    """The form's values with every credential value dropped (never drawn back)."""
    return {
        name: value
        for name, value in values.items()
        if not name.startswith(CREDENTIAL_PREFIX) and name != "credentialValue"
    }


async def _page(
    request: Request,
    *,
    form: Form | None = None,
    kinds: list[str] | None = None,
    editing: str | None = None,
    done: str | None = None,
) -> Response:
    """The list and one form: the new account's, or ``editing``'s."""
    data = await graphql.execute(request, PAYMENT_SYSTEMS)
    accounts = data["processorAccounts"]
    account = next((a for a in accounts if a["id"] == editing), None)
    if editing is not None and account is None:
        return await rendering.error_page(request, 404)
    if form is None:
        form = Form(values=_values(account)) if account else Form(values={"mode": "TEST"})
        kinds = list(account["methodKinds"]) if account else ["VISA", "MASTERCARD"]
    return rendering.render(
        request,
        "admin/payment_systems.html",
        {
            "accounts": accounts,
            "processors": data["processors"],
            "account": account,
            "form": form,
            "kinds": set(kinds or []),
            "done": done,
            "path": PAYMENT_SYSTEMS_PATH,
            "modes": MODES,
            "method_kinds": METHOD_KINDS,
        },
        status_code=form.status_code,
    )


@requires(*STAFF)
async def payment_systems(request: Request, visitor: Visitor) -> Response:
    return await _page(request)


@requires(*STAFF)
async def edit_payment_system(request: Request, visitor: Visitor) -> Response:
    return await _page(request, editing=request.path_params["account_id"])


async def _save(request: Request, account_id: str | None) -> Response:
    values = await forms.read(request)
    kinds = await forms.read_all(request, "methodKinds")
    data, errors = _input(values, kinds)
    shown = _without_secrets(values)
    if errors:
        return await _page(
            request, form=Form(values=shown, errors=errors), kinds=kinds, editing=account_id
        )
    if account_id is None:
        payload = await graphql.mutate(request, CREATE, data)
    else:
        payload = await graphql.mutate(request, UPDATE, {**data, "id": account_id})
    if payload["errors"]:
        form = Form.with_errors(shown, payload["errors"], fields=FIELDS)
        return await _page(request, form=form, kinds=kinds, editing=account_id)
    saved = payload["processorAccount"]
    return await _page(request, editing=saved["id"], done=f"Saved {saved['name']}.")


@requires(*STAFF)
async def create_payment_system(request: Request, visitor: Visitor) -> Response:
    return await _save(request, None)


@requires(*STAFF)
async def update_payment_system(request: Request, visitor: Visitor) -> Response:
    return await _save(request, request.path_params["account_id"])


@requires(*STAFF)
async def disable_payment_system(request: Request, visitor: Visitor) -> Response:
    payload = await graphql.mutate(request, DISABLE, {"id": request.path_params["account_id"]})
    if payload["errors"]:
        form = Form.with_errors({}, payload["errors"], fields=())
        return await _page(request, form=form)
    return await _page(request, done=f"Disabled {payload['processorAccount']['name']}.")


def routes() -> list[BaseRoute]:
    """The payment systems page (guarded by :func:`portals.routes`)."""
    one = f"{PAYMENT_SYSTEMS_PATH}/{{account_id}}"
    return [
        Route(PAYMENT_SYSTEMS_PATH, payment_systems, methods=["GET"]),
        Route(PAYMENT_SYSTEMS_PATH, create_payment_system, methods=["POST"]),
        Route(one, edit_payment_system, methods=["GET"]),
        Route(one, update_payment_system, methods=["POST"]),
        Route(f"{one}/disable", disable_payment_system, methods=["POST"]),
    ]
