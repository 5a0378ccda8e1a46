"""A fake Debitsuccess for the tests and the demo: the part of the Customer Services REST API
a gateway-billing client speaks (:mod:`processors.debitsuccess`), served by a Starlette app.

Debitsuccess "gateway billing" holds no balance and no schedule of its own: the client
creates a customer and an account, has the customer enter a payment method on Debitsuccess's
hosted form, then submits one-off schedules when money is due and asks for payment statuses
by date range.  The paths and fields follow Debitsuccess's documentation:

* ``POST /CustomerServices/v1.0/customers`` and ``POST /CustomerServices/v1.0/accounts`` — the
  account carries ``externalAccountReferenceNo`` (the client's id for it) and gets Debitsuccess's
  ``accountReferenceNo``; gateway accounts have no term and no recurring schedule.
* ``POST /CustomerServices/v1.0/accounts/{accountId}/paymentTokens`` — a one-time token and
  the ``paymentFormUrl`` of the hosted form (PayNow), valid for :data:`TOKEN_LIFETIME` (ten
  minutes, as documented); the form captures a bank account or a card and sends the customer
  back to ``callbackUrl`` with ``status``.  The documentation names the REST call "POST
  PaymentToken" without its path: the path here is ours.
* ``POST /CustomerServices/v1.0/accounts/{accountId}/oneOffSchedules`` — ``amount`` (at least
  1.00), ``dueDate`` and ``externalScheduleIdentifier``.  An account under a payment stop
  refuses it with the stop's code (``LostOrStolenCard``, ``AccountClosed``, …).  The
  documentation does not say what a second schedule under the same identifier does: here it
  is refused (409) with the first schedule in the answer, so the client can tell it exists.
* ``GET /CustomerServices/v1.0/businesses/{businessId}/customers?externalCustomerReference=``
  and ``…/accounts?externalAccountReferenceNo=`` — find what a client made under its own
  reference, so an on-boarding whose answer was lost is not made twice (a second account
  under the same reference is refused, 409).  Like the schedule look-up below, these paths
  are the fake's (and the adapter's) choice where the documentation is silent.
* ``GET /CustomerServices/v1.0/businesses/{businessId}/oneOffSchedules?externalScheduleIdentifier=``
  — finds a schedule by the client's identifier alone (kassa knows the identifier of a
  submission whose answer was lost, not always more).  The documentation is silent on looking
  one schedule up; this path is the fake's (and the adapter's) choice.
* ``GET /CustomerServices/v1.0/businesses/{businessId}/paymentstatuses?startDateTime=…&
  endDateTime=…`` — every schedule whose status date falls in the range, with
  ``paymentStatus`` (Unattempted, Pending, Retry, InRetry, Failed, Cleared, Settled,
  Unbillable), ``statusDate`` and ``errorCode``; a range over 31 days is refused (14032).

Statuses are not driven by a clock of the fake's own: each schedule follows an *outcome*
(:data:`OUTCOMES`, chosen per account with :meth:`FakeDebitsuccess.plan`, "settle" by
default) as a timeline of days after its due date, and a status query sees, for each
schedule, the last step on or before its end date.  So the test clock that drives kassa
drives the fake too, through the dates kassa asks about, and the same query asked three
times answers the same.  ``delay_days`` shifts every timeline (a slow bank).

Authentication is HTTP Basic with the web-service user Debitsuccess provides (the REST
documentation does not spell out its scheme).  Amounts travel as decimal strings and are
read as :class:`~decimal.Decimal`, never as floats.  :meth:`FakeDebitsuccess.hang` makes the
next API call answer late *after* doing its work (a lost answer); :meth:`fail_next` answers
the next one 503 without doing it.  With ``state_file`` the state outlives the process (the
demo).  Nothing here imports kassa's ``billing``.
"""

from __future__ import annotations

import asyncio
import base64
import html
import itertools
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from processors.fakes import urls

USERNAME = "kassa-fake-ds-user"
PASSWORD = "kassa-fake-ds-password"
BUSINESS_ID = "B10001"
CONTRACT_PREFIX = "KASSA1"
TOKEN_LIFETIME = 600.0
MAX_RANGE_DAYS = 31
MINIMUM_AMOUNT = Decimal("1.00")
_API = "/CustomerServices/v1.0"

#: Each outcome as (days after the due date, status, error code) steps.
OUTCOMES: Mapping[str, tuple[tuple[int, str, str | None], ...]] = {
    "settle": ((0, "Unattempted", None), (1, "Pending", None), (2, "Cleared", None),
               (4, "Settled", None)),
    "fail": ((0, "Unattempted", None), (1, "Pending", None), (2, "Failed", "InsufficientFunds")),
    "retry": ((0, "Unattempted", None), (1, "Pending", None), (2, "Retry", "InsufficientFunds"),
              (3, "InRetry", None), (4, "Cleared", None), (6, "Settled", None)),
    "unbillable": ((0, "Unattempted", None), (1, "Unbillable", "AccountClosed")),
    "pending": ((0, "Unattempted", None), (1, "Pending", None)),
}  # fmt: skip


@dataclass
class FakeDebitsuccess:
    """One Debitsuccess business's customers, accounts and schedules, and the app serving them."""

    username: str = USERNAME
    password: str = PASSWORD
    business_id: str = BUSINESS_ID
    hang_seconds: float = 5.0
    delay_days: int = 0
    state_file: str | None = None
    clock: Callable[[], float] = time.time
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Outcomes still to be given to an account's next schedules, in order.
    plans: dict[str, list[str]] = field(default_factory=dict)
    #: The API calls made, as "METHOD path-name" (never their bodies).
    calls: list[str] = field(default_factory=list)
    _hang_next: bool | str = False
    _fail_next: int | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000001))

    _STORES = ("customers", "accounts", "schedules", "plans")

    def __post_init__(self) -> None:
        if self.state_file is not None and os.path.exists(self.state_file):
            with open(self.state_file, encoding="utf-8") as file:
                state = json.load(file)
            for store in self._STORES:
                getattr(self, store).update(state[store])
            self._ids = itertools.count(state["next_id"])
        api = _API
        self.app = Starlette(
            routes=[
                Route(f"{api}/customers", self._create_customer, methods=["POST"]),
                Route(f"{api}/accounts", self._create_account, methods=["POST"]),
                Route(f"{api}/accounts/{{account_id}}", self._get_account, methods=["GET"]),
                Route(
                    f"{api}/accounts/{{account_id}}/paymentTokens",
                    self._payment_token,
                    methods=["POST"],
                ),
                Route(
                    f"{api}/accounts/{{account_id}}/oneOffSchedules",
                    self._create_schedule,
                    methods=["POST"],
                ),
                Route(
                    f"{api}/businesses/{{business_id}}/oneOffSchedules",
                    self._find_schedules,
                    methods=["GET"],
                ),
                Route(
                    f"{api}/businesses/{{business_id}}/customers",
                    self._find_customers,
                    methods=["GET"],
                ),
                Route(
                    f"{api}/businesses/{{business_id}}/accounts",
                    self._find_accounts,
                    methods=["GET"],
                ),
                Route(
                    f"{api}/businesses/{{business_id}}/paymentstatuses",
                    self._payment_statuses,
                    methods=["GET"],
                ),
                Route("/paynow/{token}", self._form, methods=["GET", "POST"]),
                Route("/_fake/plan", self._plan_route, methods=["POST"]),
                Route("/_fake/stop", self._stop_route, methods=["POST"]),
            ]
        )

    # --- test controls -------------------------------------------------------------------

    def plan(self, account_id: str, *outcomes: str) -> None:
        """Give ``account_id``'s next schedules these outcomes, in order (then "settle")."""
        unknown = [o for o in outcomes if o not in OUTCOMES]
        if unknown:
            raise ValueError(f"no such outcome: {unknown}")
        with self._lock:
            self.plans.setdefault(account_id, []).extend(outcomes)
            self._persist()

    def stop(self, account_id: str, code: str = "LostOrStolenCard") -> None:
        """Put a payment stop on the account: its next schedules are refused with ``code``."""
        with self._lock:
            self.accounts[account_id]["paymentStop"] = code
            self._persist()

    def hang(self, call: str | None = None) -> None:
        """Do the next API call's work — or the next call named ``call`` (as in
        :attr:`calls`: "POST accounts") — but answer only after ``hang_seconds``."""
        self._hang_next = call or True

    def fail_next(self, status: int = 503) -> None:
        """Answer the next API call with ``status`` without doing anything."""
        self._fail_next = status

    def account_by_reference(self, external_reference: str) -> dict[str, Any] | None:
        with self._lock:
            return next(
                (
                    a
                    for a in self.accounts.values()
                    if a["externalAccountReferenceNo"] == external_reference
                ),
                None,
            )

    # --- plumbing ------------------------------------------------------------------------

    def _persist(self) -> None:
        if self.state_file is None:
            return
        state: dict[str, Any] = {store: getattr(self, store) for store in self._STORES}
        state["next_id"] = next(self._ids)
        self._ids = itertools.count(state["next_id"])
        partial = f"{self.state_file}.partial"
        with open(partial, "w", encoding="utf-8") as file:
            json.dump(state, file)
        os.replace(partial, self.state_file)

    def _authorized(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return secrets.compare_digest(request.headers.get("authorization", ""), f"Basic {expected}")

    async def _enter(self, request: Request, name: str) -> Response | None:
        """Count the call, then refuse it (credentials, an injected failure) or go ahead."""
        self.calls.append(f"{request.method} {name}")
        if not self._authorized(request):
            return _error(401, "02", "Invalid credentials provided")
        if self._fail_next is not None:
            status, self._fail_next = self._fail_next, None
            return _error(status, "01", "The server is not available")
        return None

    async def _leave(self, response: Response) -> Response:
        if self._hang_next is True or self._hang_next == self.calls[-1]:
            self._hang_next = False
            await asyncio.sleep(self.hang_seconds)
        return response

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def _account(self, account_id: str) -> dict[str, Any] | None:
        return self.accounts.get(account_id)

    # --- customers and accounts ----------------------------------------------------------

    async def _create_customer(self, request: Request) -> Response:
        if refused := await self._enter(request, "customers"):
            return refused
        body = await _json(request)
        if not body.get("firstName") or not body.get("emailAddress"):
            return _error(400, "12002", "Missing client first name or email address")
        with self._lock:
            customer = {
                "id": self._new_id("C"),
                "firstName": body["firstName"],
                "lastName": body.get("lastName"),
                "emailAddress": body["emailAddress"],
                "externalCustomerReference": str(body.get("externalCustomerReference") or ""),
            }
            self.customers[customer["id"]] = customer
            self._persist()
        return await self._leave(JSONResponse(customer, 201))

    async def _create_account(self, request: Request) -> Response:
        if refused := await self._enter(request, "accounts"):
            return refused
        body = await _json(request)
        external = str(body.get("externalAccountReferenceNo") or "")
        with self._lock:
            if body.get("customerId") not in self.customers:
                return _error(404, "08", "There is no record found with this criteria")
            if not external:
                return _error(400, "12016", "Missing required reference number")
            if self.account_by_reference(external) is not None:
                return _error(409, "04", "Account already exists (Duplicate accounts)")
            number = next(self._ids)
            account = {
                "id": f"A{number}",
                "accountReferenceNo": f"DEA{number}",
                "externalAccountReferenceNo": external,
                "customerId": body["customerId"],
                "contractPrefix": CONTRACT_PREFIX,
                "status": "Active",
                "paymentMethod": None,
                "paymentStop": None,
            }
            self.accounts[account["id"]] = account
            self._persist()
        return await self._leave(JSONResponse(_shown(account), 201))

    async def _get_account(self, request: Request) -> Response:
        if refused := await self._enter(request, "account"):
            return refused
        account = self._account(request.path_params["account_id"])
        if account is None:
            return _error(404, "08", "There is no record found with this criteria")
        return await self._leave(JSONResponse(_shown(account)))

    async def _find_customers(self, request: Request) -> Response:
        """Customers by the client's ``externalCustomerReference``."""
        return await self._find(request, "findCustomers", self.customers,
                                "externalCustomerReference", "customers", dict)  # fmt: skip

    async def _find_accounts(self, request: Request) -> Response:
        """Accounts by the client's ``externalAccountReferenceNo``."""
        return await self._find(request, "findAccounts", self.accounts,
                                "externalAccountReferenceNo", "accounts", _shown)  # fmt: skip

    async def _find(
        self,
        request: Request,
        name: str,
        store: dict[str, dict[str, Any]],
        key: str,
        answer: str,
        shown: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> Response:
        if refused := await self._enter(request, name):
            return refused
        if request.path_params["business_id"] != self.business_id:
            return _error(404, "08", "There is no record found with this criteria")
        wanted = request.query_params.get(key)
        with self._lock:
            found = [shown(row) for row in store.values() if wanted and row.get(key) == wanted]
        return await self._leave(JSONResponse({answer: found}))

    # --- the hosted form -----------------------------------------------------------------

    async def _payment_token(self, request: Request) -> Response:
        if refused := await self._enter(request, "paymentTokens"):
            return refused
        account = self._account(request.path_params["account_id"])
        if account is None:
            return _error(404, "08", "There is no record found with this criteria")
        body = await _json(request)
        callback = str(body.get("callbackUrl") or "")
        if not callback.startswith(("http://", "https://")):
            return _error(400, "12040", "Missing or invalid CallbackUrl")
        token = secrets.token_hex(8)
        valid_to = self.clock() + TOKEN_LIFETIME
        with self._lock:
            self.tokens[token] = {
                "accountId": account["id"],
                "callbackUrl": callback,
                "validTo": valid_to,
                "used": False,
            }
        form_url = f"{urls.base(request)}/paynow/{token}"
        return await self._leave(
            JSONResponse(
                {
                    "status": "Success",
                    "token": token,
                    "validTo": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(valid_to)),
                    "paymentFormUrl": form_url,
                }
            )
        )

    async def _form(self, request: Request) -> Response:
        """PayNow: the customer enters an account holder and a bank account (or a card)."""
        token = request.path_params["token"]
        with self._lock:
            entry = self.tokens.get(token)
            usable = entry is not None and not entry["used"] and self.clock() <= entry["validTo"]
        if entry is None or not usable:
            return HTMLResponse(_PAGE.format(body=_EXPIRED), 410)
        if request.method == "GET":
            return HTMLResponse(_PAGE.format(body=_FORM.format(action=html.escape(token))))
        form = await request.form()
        holder = str(form.get("accountHolder") or "").strip()
        number = "".join(ch for ch in str(form.get("accountNumber") or "") if ch.isdigit())
        if not holder or not 8 <= len(number) <= 19:
            return HTMLResponse(
                _PAGE.format(body=_INVALID + _FORM.format(action=html.escape(token))), 400
            )
        with self._lock:
            entry["used"] = True
            account = self.accounts[entry["accountId"]]
            account["paymentMethod"] = {
                "type": "BankAccount" if len(number) <= 17 else "CreditCard",
                "accountHolder": holder,
                "last4": number[-4:],
            }
            account["paymentStop"] = None  # a new method lifts the stop
            self._persist()
        query = urlencode({"status": "Success", "token": token})
        separator = "&" if "?" in entry["callbackUrl"] else "?"
        return RedirectResponse(f"{entry['callbackUrl']}{separator}{query}", 303)

    # --- schedules -----------------------------------------------------------------------

    async def _find_schedules(self, request: Request) -> Response:
        if refused := await self._enter(request, "findOneOffSchedules"):
            return refused
        if request.path_params["business_id"] != self.business_id:
            return _error(404, "08", "There is no record found with this criteria")
        wanted = request.query_params.get("externalScheduleIdentifier")
        with self._lock:
            found = [
                _schedule_shown(s)
                for s in self.schedules.values()
                if s["externalScheduleIdentifier"] == wanted
            ]
        return await self._leave(JSONResponse({"oneOffSchedules": found}))

    async def _create_schedule(self, request: Request) -> Response:
        if refused := await self._enter(request, "oneOffSchedules"):
            return refused
        account = self._account(request.path_params["account_id"])
        if account is None:
            return _error(404, "08", "There is no record found with this criteria")
        body = await _json(request)
        identifier = str(body.get("externalScheduleIdentifier") or "")
        try:
            amount = Decimal(str(body.get("amount")))
            due = date.fromisoformat(str(body.get("dueDate")))
        except (InvalidOperation, ValueError):
            return _error(400, "100", "amount and dueDate are required")
        if not identifier or len(identifier) > 50:
            return _error(400, "12017", "Missing or too long externalScheduleIdentifier")
        if amount < MINIMUM_AMOUNT or amount.as_tuple().exponent < -2:  # type: ignore[operator]
            return _error(400, "12012", "The amount must be at least 1.00, in cents")
        with self._lock:
            existing = next(
                (
                    s
                    for s in self.schedules.values()
                    if s["externalScheduleIdentifier"] == identifier
                ),
                None,
            )
            if existing is not None:
                return await self._leave(
                    JSONResponse(
                        {**_notes("409", "Duplicate externalScheduleIdentifier"),
                         "oneOffSchedule": _schedule_shown(existing)},
                        409,
                    )
                )  # fmt: skip
            if account["paymentStop"] or account["paymentMethod"] is None:
                code = account["paymentStop"] or "NoAuthority"
                return await self._leave(
                    _error(422, code, f"The account cannot be debited: {code}")
                )
            queued = self.plans.get(account["id"]) or []
            outcome = queued.pop(0) if queued else "settle"
            schedule = {
                "scheduleId": self._new_id(""),
                "accountId": account["id"],
                "accountRef": account["accountReferenceNo"],
                "externalScheduleIdentifier": identifier,
                "description": str(body.get("description") or "")[:50],
                "amount": str(amount),
                "dueDate": due.isoformat(),
                "outcome": outcome,
            }
            self.schedules[schedule["scheduleId"]] = schedule
            self._persist()
        return await self._leave(JSONResponse(_schedule_shown(schedule), 201))

    def status_on(self, schedule: dict[str, Any], day: date) -> tuple[str, str | None, date]:
        """The schedule's (status, error code, status date) as seen on ``day``."""
        due = date.fromisoformat(schedule["dueDate"])
        status, code, on = "Unattempted", None, due
        for offset, step, step_code in OUTCOMES[schedule["outcome"]]:
            when = due + timedelta(days=offset + (self.delay_days if offset else 0))
            if when > day:
                break
            status, code, on = step, step_code, when
        return status, code, on

    async def _payment_statuses(self, request: Request) -> Response:
        if refused := await self._enter(request, "paymentstatuses"):
            return refused
        if request.path_params["business_id"] != self.business_id:
            return _error(404, "08", "There is no record found with this criteria")
        query = request.query_params
        try:
            start = date.fromisoformat(query["startDateTime"][:10])
            end = date.fromisoformat(query["endDateTime"][:10])
        except (KeyError, ValueError):
            return _error(400, "14101", "Invalid Start Date - start date must not be empty")
        if start > end:
            return _error(
                400, "14033", "Invalid Start date - start date must be less than end date"
            )
        if (end - start).days > MAX_RANGE_DAYS:
            return _error(400, "14032", "Invalid Date range - must be within 31 days")
        wanted = query.get("status", "All")
        found = []
        with self._lock:
            for schedule in self.schedules.values():
                status, code, on = self.status_on(schedule, end)
                if start <= on <= end and wanted in ("All", status):
                    found.append(
                        {
                            "contractPrefix": CONTRACT_PREFIX,
                            "accountRef": schedule["accountRef"],
                            "description": schedule["description"],
                            "externalIdentifier": schedule["externalScheduleIdentifier"],
                            "installment": schedule["amount"],
                            "paymentStatus": status,
                            "scheduleId": schedule["scheduleId"],
                            "startDate": schedule["dueDate"],
                            "statusDate": on.isoformat(),
                            "errorCode": code,
                        }
                    )
        return await self._leave(JSONResponse({"status": "Success", "paymentSchedules": found}))

    # --- controls over HTTP (the demo) ---------------------------------------------------

    async def _plan_route(self, request: Request) -> Response:
        body = await _json(request)
        try:
            self.plan(str(body.get("accountId")), *body.get("outcomes", []))
        except ValueError as error:
            return JSONResponse({"error": str(error)}, 400)
        return JSONResponse({"planned": self.plans.get(str(body.get("accountId")), [])})

    async def _stop_route(self, request: Request) -> Response:
        body = await _json(request)
        if str(body.get("accountId")) not in self.accounts:
            return JSONResponse({"error": "no such account"}, 404)
        self.stop(str(body["accountId"]), str(body.get("code") or "LostOrStolenCard"))
        return JSONResponse({"stopped": True})


def _shown(account: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in account.items() if k != "paymentStop"} | {
        "paymentStop": account["paymentStop"]
    }


def _schedule_shown(schedule: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schedule.items() if k != "outcome"}


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}", parse_float=Decimal)
    except json.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _notes(code: str, note: str) -> dict[str, Any]:
    return {
        "status": "Failed",
        "responseNotes": [{"code": code, "note": note, "noteType": "Error"}],
    }


def _error(status: int, code: str, note: str) -> JSONResponse:
    return JSONResponse(_notes(code, note), status)


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Debitsuccess PayNow (test)</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}}
label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.5rem;box-sizing:border-box}}
button{{margin-top:1rem;padding:.6rem 1.2rem}}.note{{color:#555}}</style></head>
<body><h1>Payment details</h1>{body}</body></html>"""
_FORM = """<p class="note">Test mode: no money moves. Debitsuccess keeps these details;
the business only learns the last four digits.</p>
<form method="post" action="{action}">
<label for="accountHolder">Account holder</label>
<input id="accountHolder" name="accountHolder" autocomplete="name" required>
<label for="accountNumber">Bank account or card number</label>
<input id="accountNumber" name="accountNumber" inputmode="numeric" required>
<button type="submit">Save payment details</button></form>"""
_EXPIRED = "<p>This link has expired or was already used. Go back and start again.</p>"
_INVALID = '<p role="alert">Enter the account holder and an account number of 8–19 digits.</p>'

#: The fake the module serves alone (``uvicorn processors.fakes.debitsuccess:app``).
app = FakeDebitsuccess().app
