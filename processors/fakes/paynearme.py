"""A fake PayNearMe for the tests and the demo: the part of API v3.0 and of the callbacks
kassa speaks (:mod:`processors.paynearme`), served by a Starlette app.

* ``POST /json-api/create_order`` and ``POST /json-api/find_orders`` take PayNearMe's signed
  JSON bodies (HMAC-SHA256 under the site's secret key over the sorted ``name`` + ``value``
  pairs).  A wrong signature, site or version is a 400 ``{"status": "error", "errors":
  [{"description": …}]}``, as is a missing parameter or a ``site_order_identifier`` already
  used.  An order lists :data:`RETAILERS`, each with a ``slip`` whose ``full_encoding`` is what
  the store scans and whose ``slip_url`` is the fake's printable slip (``GET /slip/{order}``).
* :meth:`FakePayNearMe.pay_at_store` is a customer paying cash at a store: the signed
  authorization callback goes to the site's callback URL, and if the answer's
  ``accept_payment`` is ``yes`` the cash is taken and the signed confirmation callback follows.
  :meth:`FakePayNearMe.reverse` sends a reversal.  ``POST /_fake/pay`` (``order``: the order
  id, the scanned code or kassa's reference; ``amount``) and ``POST /_fake/reverse``
  (``pnm_payment_identifier``) do the same for the demo.  Callbacks go to ``callback_url`` with
  ``?pnm_callback=authorization|confirmation|reversal`` — the three URLs a site registers in
  PayNearMe's portal — as GET requests with the parameters in the query string, as PayNearMe's
  callback samples receive them (``callback_method="POST"`` sends them as a form instead).
* :meth:`FakePayNearMe.callback_params` builds a signed callback for tests, with any timestamp.

:meth:`FakePayNearMe.hang` makes the next API call answer only after ``hang_seconds``.  Run it
alone with ``uvicorn processors.fakes.paynearme:app``.  Nothing here imports kassa's
``billing``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import itertools
import json
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from processors.fakes.urls import base

log = logging.getLogger("kassa.fakes.paynearme")

#: The site the module-level :data:`app` serves.
SITE_IDENTIFIER = "S9900000001"
SECRET_KEY = "kassa-fake-paynearme-secret"
API_VERSION = "3.0"
RETAILERS = ("7-Eleven", "ACE Cash Express", "Family Dollar", "CVS Pharmacy")
AUTHORIZATION, CONFIRMATION, REVERSAL = "authorization", "confirmation", "reversal"
_REQUIRED = {
    "create_order": (
        "order_amount",
        "order_currency",
        "site_customer_identifier",
        "order_type",
        "order_is_standing",
    ),
    "find_orders": (),
}


def sign(params: Mapping[str, str], secret_key: str) -> str:
    """PayNearMe's signature of ``params`` (``signature`` itself left out)."""
    text = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "signature")
    return hmac.new(secret_key.encode(), text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Delivery:
    """A callback the fake sent and what the site answered."""

    kind: str
    params: dict[str, str]
    status: int
    reply: str


@dataclass
class FakePayNearMe:
    """One PayNearMe site's orders and payments, and the app serving them (:attr:`app`)."""

    site_identifier: str = SITE_IDENTIFIER
    secret_key: str = SECRET_KEY
    #: The site's callback address (kassa's ``/callbacks/{account}``).
    callback_url: str = ""
    callback_method: str = "GET"
    hang_seconds: float = 5.0
    clock: Callable[[], float] = time.time
    #: By ``pnm_order_identifier``.
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: By ``pnm_payment_identifier``: the cash taken.
    payments: dict[str, dict[str, str]] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    #: The API calls made, by name (never their bodies).
    calls: list[str] = field(default_factory=list)
    _hang_next: bool = False
    _order_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(85237034088))
    _payment_ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(798183461108)
    )

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/json-api/create_order", self._create_order, methods=["POST"]),
                Route("/json-api/find_orders", self._find_orders, methods=["POST"]),
                Route("/slip/{order_id}", self._slip_page, methods=["GET"]),
                Route("/_fake/pay", self._pay, methods=["POST"]),
                Route("/_fake/reverse", self._reverse, methods=["POST"]),
            ]
        )

    def hang(self) -> None:
        """Answer the next API call only after ``hang_seconds``."""
        self._hang_next = True

    # --- API -------------------------------------------------------------------------------

    async def _signed_body(self, request: Request, call: str) -> dict[str, str] | Response:
        """The call's verified parameters, or PayNearMe's 400 refusal."""
        self.calls.append(call)
        if self._hang_next:
            self._hang_next = False
            await asyncio.sleep(self.hang_seconds)
        try:
            decoded = json.loads(await request.body())
        except ValueError:
            return _refusal("Request body is not valid JSON")
        if not isinstance(decoded, dict):
            return _refusal("Request body is not valid JSON")
        body = {str(k): _text(v) for k, v in decoded.items()}
        if body.get("site_identifier") != self.site_identifier:
            return _refusal("Invalid site_identifier")
        if body.get("version") != API_VERSION:
            return _refusal("Unsupported version")
        if not body.get("timestamp", "").isdigit():
            return _refusal("Missing required parameter: timestamp")
        given = body.get("signature", "").encode()
        if not hmac.compare_digest(given, sign(body, self.secret_key).encode()):
            return _refusal("Invalid signature")
        missing = [name for name in _REQUIRED[call] if not body.get(name)]
        if missing:
            return _refusal(f"Missing required parameter: {missing[0]}")
        return body

    async def _create_order(self, request: Request) -> Response:
        body = await self._signed_body(request, "create_order")
        if isinstance(body, Response):
            return body
        if body["order_currency"] != "USD":
            return _refusal("order_currency must be USD")
        reference = body.get("site_order_identifier", "")
        if reference and any(o["site_order_identifier"] == reference for o in self.orders.values()):
            return _refusal("site_order_identifier has already been used")
        order_id = str(next(self._order_ids))
        here = base(request)
        slip = {
            "full_encoding": f"8850{order_id}",
            "slip_url": f"{here}/slip/{order_id}",
            "slip_pdf_url": f"{here}/slip/{order_id}?format=pdf",
        }
        order: dict[str, Any] = {
            "site_identifier": self.site_identifier,
            "pnm_order_identifier": int(order_id),  # PayNearMe sends it as a bare number
            "site_order_identifier": reference,
            "order_status": "open",
            "order_amount": body["order_amount"],
            "order_currency": "USD",
            "order_type": body["order_type"],
            "order_is_standing": body["order_is_standing"] == "true",
            "order_tracking_url": f"{here}/slip/{order_id}",
            "customer": {
                "pnm_customer_identifier": f"U{order_id[-10:]}",
                "site_customer_identifier": body["site_customer_identifier"],
                "pnm_customer_addressee": body.get("site_customer_name", ""),
            },
            "retailers": [{"retailer_name": name, "slip": slip} for name in RETAILERS],
        }
        self.orders[order_id] = order
        return JSONResponse({"status": "ok", "orders": order}, 201)

    async def _find_orders(self, request: Request) -> Response:
        body = await self._signed_body(request, "find_orders")
        if isinstance(body, Response):
            return body
        wanted = {
            name: body[name]
            for name in (
                "site_order_identifier",
                "pnm_order_identifier",
                "site_customer_identifier",
            )
            if body.get(name)
        }
        found = [
            order
            for order in self.orders.values()
            if all(_field(order, name) == value for name, value in wanted.items())
        ]
        return JSONResponse({"status": "ok", "orders": found})

    async def _slip_page(self, request: Request) -> Response:
        order = self.orders.get(request.path_params["order_id"])
        if order is None:
            return HTMLResponse("<p>No such order.</p>", 404)
        code = html.escape(order["retailers"][0]["slip"]["full_encoding"])
        return HTMLResponse(
            f"<h1>PayNearMe (fake) payment slip</h1><p>Show this code at "
            f"{html.escape(', '.join(RETAILERS))}: <code>{code}</code></p>"
        )

    # --- the store -------------------------------------------------------------------------

    def find(self, key: str) -> dict[str, Any] | None:
        """The order ``key`` names: its PayNearMe id, its scanned code or the site's
        reference."""
        return next(
            (
                order
                for order_id, order in self.orders.items()
                if key
                in {
                    order_id,
                    order["site_order_identifier"],
                    order["retailers"][0]["slip"]["full_encoding"],
                }
            ),
            None,
        )

    def callback_params(
        self,
        kind: str,
        order: Mapping[str, Any],
        payment_id: str,
        amount: str,
        *,
        timestamp: float | None = None,
        status: str = "payment",
    ) -> dict[str, str]:
        """The signed parameters of a ``kind`` callback about payment ``payment_id`` of
        ``amount`` (a USD decimal string) to ``order``."""
        params = {
            "site_identifier": self.site_identifier,
            "timestamp": str(int(self.clock() if timestamp is None else timestamp)),
            "version": API_VERSION,
            "site_customer_identifier": order["customer"]["site_customer_identifier"],
            "site_order_identifier": order["site_order_identifier"],
            "pnm_order_identifier": str(order["pnm_order_identifier"]),
            "pnm_payment_identifier": payment_id,
            "payment_amount": amount,
            "payment_currency": "USD",
        }
        if kind in {AUTHORIZATION, CONFIRMATION}:
            params["retailer_name"] = RETAILERS[0]
        if kind == CONFIRMATION:
            params.update(status=status, net_payment_amount=amount, net_payment_currency="USD")
        params["signature"] = sign(params, self.secret_key)
        return params

    async def pay_at_store(
        self, key: str, amount: str, *, callback_url: str | None = None
    ) -> dict[str, Any]:
        """A customer pays ``amount`` in cash against order ``key`` (see :meth:`find`): ask
        the site, and take the cash and confirm if it accepts.  Returns what happened."""
        order = self.find(key)
        if order is None:
            return {"accepted": False, "error": "no such order"}
        url = callback_url or self.callback_url
        payment_id = str(next(self._payment_ids))
        asked = await self._deliver(
            url, AUTHORIZATION, self.callback_params(AUTHORIZATION, order, payment_id, amount)
        )
        if not _accepted(asked.reply):
            return {"accepted": False, "pnm_payment_identifier": payment_id}
        self.payments[payment_id] = {
            "pnm_order_identifier": str(order["pnm_order_identifier"]),
            "payment_amount": amount,
            "status": "approved",
        }
        confirmed = await self._deliver(
            url, CONFIRMATION, self.callback_params(CONFIRMATION, order, payment_id, amount)
        )
        return {
            "accepted": True,
            "pnm_payment_identifier": payment_id,
            "confirmation_status": confirmed.status,
        }

    async def reverse(self, payment_id: str, *, callback_url: str | None = None) -> Delivery:
        """Reverse payment ``payment_id`` and tell the site."""
        payment = self.payments[payment_id]
        payment["status"] = "reversed"
        order = self.orders[payment["pnm_order_identifier"]]
        params = self.callback_params(REVERSAL, order, payment_id, payment["payment_amount"])
        return await self._deliver(callback_url or self.callback_url, REVERSAL, params)

    async def _deliver(self, url: str, kind: str, params: dict[str, str]) -> Delivery:
        """Send one callback to ``url`` (with ``?pnm_callback=kind``) and record the answer."""
        address = f"{url}{'&' if '?' in url else '?'}pnm_callback={kind}"
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                if self.callback_method == "GET":
                    reply = await client.get(f"{address}&{urlencode(params)}")
                else:
                    reply = await client.post(address, data=params)
            delivery = Delivery(kind, params, reply.status_code, reply.text)
        except httpx.HTTPError as error:
            log.warning("fake paynearme: %s callback not delivered: %s", kind, type(error).__name__)
            delivery = Delivery(kind, params, 0, "")
        self.deliveries.append(delivery)
        return delivery

    async def _pay(self, request: Request) -> Response:
        form = await request.form()
        outcome = await self.pay_at_store(
            str(form.get("order", "")),
            str(form.get("amount", "")),
            callback_url=str(form.get("callback_url", "")) or None,
        )
        return JSONResponse(outcome, 200 if "error" not in outcome else 404)

    async def _reverse(self, request: Request) -> Response:
        form = await request.form()
        payment_id = str(form.get("pnm_payment_identifier", ""))
        if payment_id not in self.payments:
            return JSONResponse({"error": "no such payment"}, 404)
        delivery = await self.reverse(
            payment_id, callback_url=str(form.get("callback_url", "")) or None
        )
        return JSONResponse({"status": delivery.status})


def _text(value: Any) -> str:
    """A JSON value as PayNearMe signs it (booleans as ``true``/``false``)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _field(order: Mapping[str, Any], name: str) -> str:
    if name == "site_customer_identifier":
        return str(order["customer"][name])
    return str(order.get(name, ""))


def _accepted(reply: str) -> bool:
    """Whether a ``payment_authorization_response`` says ``accept_payment`` ``yes``."""
    try:
        root = ET.fromstring(reply)
    except ET.ParseError:
        return False
    answer = root.find("{*}authorization/{*}accept_payment")
    return answer is not None and (answer.text or "").strip().lower() == "yes"


def _refusal(description: str) -> Response:
    return JSONResponse({"status": "error", "errors": [{"description": description}]}, 400)


fake = FakePayNearMe()
app = fake.app


def serve(port: int = 12116, host: str = "127.0.0.1") -> None:
    """Serve the module's fake (:data:`fake`) until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info")
