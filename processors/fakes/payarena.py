"""A fake Payarena (Unified Payments' hosted payment page) for the tests and the demo, served
by a Starlette app.  It speaks Unified Payments' *Web Merchant Integration Guide* (see
:mod:`processors.payarena`):

* ``POST /{merchant_id}`` (``Accept: application/json``) — JSON ``{"amount": 1500.00,
  "currency": 566, "description", "returnUrl", "secretKey", "fee": 0}``; a wrong merchant id
  or secret key is a 401, a currency other than 566 or an amount that is not a positive naira
  amount with at most two decimals a 400.  The answer is the new transaction's id as a JSON
  string.
* ``GET /{transaction id}`` — the customer's payment page, with buttons *Pay* (approved),
  *Cancel* and *Pay with the declined test card*; each sends the browser back to
  ``returnUrl`` by an HTTP POST of ``trxId``, ``status`` and ``approved`` (a form that submits
  itself), the same address whatever the outcome, as the guide's Appendix E says.
* ``GET /Status/{transaction id}`` — ``{"Order Id", "Amount", "Currency", "Status",
  "StatusDescription", "Card Holder", "PAN" (masked), "Scheme", "Approval Code",
  "TranDateTime"}``; ``Status`` is ``Initiated`` until the customer acts (and stays so for an
  abandoned transaction), then ``APPROVED`` (described ``Approved Successful``), ``Declined``
  or ``Cancelled``.  :meth:`FakePayarena.expire` (or ``POST /_fake/{id}/expire``) forgets an
  unpaid transaction; an unknown id is a 404.

:meth:`FakePayarena.callback` builds an unsigned server-to-server callback naming ``trxId``
(the guide documents none; kassa accepts one as a cue to ask), which the fake posts to
``callback_url`` (when set: the demo) after the customer acts; :meth:`FakePayarena.hang` makes
the next call answer only after ``hang_seconds``.  Run it alone with ``uvicorn
processors.fakes.payarena:app``.  Nothing here imports kassa's ``billing``.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import itertools
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from processors.fakes.urls import base

MERCHANT_ID = "UPSLTEST0001"
SECRET_KEY = "payarena-fake-secret-key"

_OUTCOMES = {
    "approve": ("APPROVED", "Approved Successful"),
    "cancel": ("Cancelled", "Transaction cancelled by the customer"),
    "decline": ("Declined", "Insufficient funds"),
}


@dataclass
class FakePayarena:
    """Payarena's transactions, and the switches tests and the demo pull."""

    hang_seconds: float = 2.0
    #: Where the fake posts its unsigned callback after the customer acts; None: nowhere.
    callback_url: str | None = None
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The HTTP status of each callback to ``callback_url``, in order.
    deliveries: list[int] = field(default_factory=list)
    _hangs: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(7001))

    def __post_init__(self) -> None:
        self.app = self._build_app()

    def hang(self, calls: int = 1) -> None:
        """Make the next ``calls`` requests answer only after ``hang_seconds``."""
        with self._lock:
            self._hangs += calls

    def expire(self, transaction_id: str) -> None:
        """Let an unpaid transaction lapse: Payarena forgets it (its status answers 404); a
        paid one stays."""
        if self.transactions[transaction_id]["Status"] == "Initiated":
            del self.transactions[transaction_id]

    def callback(self, transaction_id: str) -> tuple[dict[str, str], bytes]:
        """The unsigned callback Payarena posts about ``transaction_id``: headers and body."""
        body = urlencode({"trxId": transaction_id}).encode()
        return {"content-type": "application/x-www-form-urlencoded"}, body

    async def _post_callback(self, transaction_id: str) -> None:
        assert self.callback_url is not None
        headers, body = self.callback(transaction_id)
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                reply = await client.post(self.callback_url, content=body, headers=headers)
            self.deliveries.append(reply.status_code)
        except httpx.TransportError:
            self.deliveries.append(0)

    async def _hang_if_asked(self) -> None:
        with self._lock:
            hanging, self._hangs = self._hangs > 0, max(self._hangs - 1, 0)
        if hanging:
            await asyncio.sleep(self.hang_seconds)

    async def _post(self, request: Request) -> Response:
        """``POST /{x}``: a merchant's JSON create, or the customer's choice on a page."""
        if "json" in request.headers.get("content-type", ""):
            await self._hang_if_asked()
            return await self._create(request)
        return await self._choose(request)

    async def _create(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body(), parse_float=Decimal)
        except ValueError:
            return JSONResponse({"message": "The request is invalid."}, 400)
        if not isinstance(body, dict):
            return JSONResponse({"message": "The request is invalid."}, 400)
        merchant = request.path_params["transaction"]
        if merchant != MERCHANT_ID or not hmac.compare_digest(
            str(body.get("secretKey", "")), SECRET_KEY
        ):
            return JSONResponse({"message": "Authorization has been denied."}, 401)
        # Table 1.0's types: the amount a decimal number, the currency an integer.
        amount = body.get("amount")
        value = amount if isinstance(amount, Decimal) else Decimal(0)
        whole_kobo = value.is_finite() and value == value.quantize(Decimal("0.01"))
        if body.get("currency") != 566 or not whole_kobo or value <= 0:
            return JSONResponse({"message": "Invalid amount or currency."}, 400)
        if not str(body.get("returnUrl", "")).startswith(("http://", "https://")):
            return JSONResponse({"message": "returnUrl is required."}, 400)
        transaction_id = str(next(self._ids)) + str(int(datetime.now(UTC).timestamp()))
        self.transactions[transaction_id] = {
            "Order Id": transaction_id,
            "Amount": f"{value:.2f}",
            "Currency": "566",
            "Status": "Initiated",
            "StatusDescription": "Transaction initiated",
            "Card Holder": "",
            "PAN": "",
            "Scheme": "",
            "Approval Code": "",
            "TranDateTime": datetime.now(UTC).strftime("%d/%m/%Y %H:%M:%S"),
            "_description": str(body.get("description", "")),
            "_return_url": str(body["returnUrl"]),
        }
        return JSONResponse(transaction_id)

    async def _status(self, request: Request) -> Response:
        transaction = self.transactions.get(request.path_params["transaction"])
        if transaction is None:
            return JSONResponse({"message": "Transaction not found."}, 404)
        return JSONResponse({k: v for k, v in transaction.items() if not k.startswith("_")})

    async def _page(self, request: Request) -> Response:
        transaction_id = request.path_params["transaction"]
        transaction = self.transactions.get(transaction_id)
        if transaction is None or transaction["Status"] != "Initiated":
            return HTMLResponse("<h1>This transaction can no longer be paid.</h1>", 404)
        page = f"""<!doctype html><html><head><title>Payarena (fake)</title></head><body>
<h1>Pay NGN {html.escape(transaction["Amount"])}</h1>
<p>{html.escape(transaction["_description"])}</p>
<form method="post" action="{html.escape(base(request))}/{html.escape(transaction_id)}">
<button name="choice" value="approve">Pay</button>
<button name="choice" value="cancel">Cancel</button>
<button name="choice" value="decline">Pay with the declined test card</button>
</form></body></html>"""
        return HTMLResponse(page)

    async def _choose(self, request: Request) -> Response:
        transaction_id = request.path_params["transaction"]
        transaction = self.transactions.get(transaction_id)
        if transaction is None or transaction["Status"] != "Initiated":
            return HTMLResponse("<h1>This transaction can no longer be paid.</h1>", 404)
        choice = str((await request.form()).get("choice"))
        status, description = _OUTCOMES.get(choice, _OUTCOMES["cancel"])
        transaction.update(Status=status, StatusDescription=description)
        if choice != "cancel":
            transaction.update(
                {"Card Holder": "ADA OBI", "PAN": "539983******8543", "Scheme": "Verve",
                 "Approval Code": "A1B2C3" if status == "Approved" else ""}
            )  # fmt: skip
        approved = "true" if status == "APPROVED" else "false"
        response = _post_back(
            transaction["_return_url"],
            {"trxId": transaction_id, "status": status.upper(), "approved": approved},
        )
        if self.callback_url is not None:
            response.background = BackgroundTask(self._post_callback, transaction_id)
        return response

    async def _expire(self, request: Request) -> Response:
        transaction_id = request.path_params["transaction"]
        if transaction_id not in self.transactions:
            return JSONResponse({"message": "Transaction not found."}, 404)
        self.expire(transaction_id)
        return Response(status_code=204)

    def _hanging(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            await self._hang_if_asked()
            return await handler(request)

        return endpoint

    def _build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/Status/{transaction}", self._hanging(self._status), methods=["GET"]),
                Route("/_fake/{transaction}/expire", self._expire, methods=["POST"]),
                Route("/{transaction}", self._page, methods=["GET"]),
                Route("/{transaction}", self._post, methods=["POST"]),
            ]
        )


def _post_back(url: str, fields: dict[str, str]) -> HTMLResponse:
    """The page that POSTs the customer's browser back to the merchant's ``returnUrl`` with
    ``fields``, as Payarena's gateway does (a form that submits itself; its button is there
    for a browser without JavaScript)."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    return HTMLResponse(
        f"""<!doctype html><html><head><title>Payarena (fake)</title></head>
<body onload="document.forms[0].submit()"><form method="post" action="{html.escape(url)}">
{inputs}<button>Return to the merchant</button></form></body></html>"""
    )


#: The fake with the module's credentials, for ``uvicorn processors.fakes.payarena:app``.
fake = FakePayarena()
app = fake.app


def serve(port: int = 12113, host: str = "127.0.0.1") -> None:
    """Serve :data:`app` on ``host:port`` (the demo's Payarena)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info")
