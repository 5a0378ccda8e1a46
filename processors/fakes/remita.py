"""A fake Remita for the tests and the demo: the part of Remita's e-Collections API and payment
page kassa speaks (:mod:`processors.remita`), served by a Starlette app.

* ``POST /remita/exapp/api/v1/send/api/echannelsvc/merchant/api/paymentinit`` generates an RRR
  for the JSON payment when ``Authorization: remitaConsumerKey={merchantId},
  remitaConsumerToken={SHA-512(merchantId + serviceTypeId + orderId + amount + apiKey)}``
  matches, and answers JSONP as Remita does: ``jsonp ({"statuscode":"025","RRR":…})``.  A
  missing payer field or a bad request is ``022``, another merchant or a wrong hash ``023``
  (the fake's choice of Remita's codes).
* ``POST /remita/ecomm/finalize.reg`` (``merchantId``, ``rrr``, ``hash`` = SHA-512(merchantId
  + rrr + apiKey), ``responseurl``) is the payment page: Approve (status ``00``), Decline
  (``02``, failed) or Cancel (``012``, aborted), each sending the customer back to
  ``responseurl?RRR=…&orderID=…``.
* ``GET …/echannelsvc/{merchantId}/{rrr}/{SHA-512(rrr + apiKey + merchantId)}/status.reg``
  answers the RRR's status JSON (``021`` until it is paid); an unknown RRR is ``022`` and a
  wrong hash ``023``.  ``…/{merchantId}/{orderId}/{SHA-512(orderId + apiKey +
  merchantId)}/orderstatus.reg`` answers the same for the RRR generated under an orderId.
* A paid RRR's notification — Remita's unsigned JSON array — is kept in
  :attr:`FakeRemita.notifications` and, with ``notification_url``, POSTed there;
  :meth:`FakeRemita.notification_body` builds one for any RRR (a forger's too).

Every API call is recorded in :attr:`FakeRemita.calls` (method, path, and whether it
authenticated), so tests can tell that nothing was sent; :meth:`FakeRemita.hang` makes the next
API call answer only after ``hang_seconds``.  The defaults are Remita's public demo merchant.
Run it alone with ``uvicorn processors.fakes.remita:app``.  Nothing here imports kassa's
``billing``.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from processors.fakes.urls import base

log = logging.getLogger("kassa.fakes.remita")

#: Remita's public demo merchant (its documentation's test credentials).
MERCHANT_ID = "2547916"
SERVICE_TYPE_ID = "4430731"
API_KEY = "1946"

ECHANNEL = "/remita/exapp/api/v1/send/api/echannelsvc"
_OUTCOMES = {
    "approve": ("00", "Successful"),
    "decline": ("02", "Transaction Failed"),
    "cancel": ("012", "User Aborted Transaction"),
}


def sha512(*parts: str) -> str:
    return hashlib.sha512("".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Call:
    """An API call as the fake saw it (never its credentials)."""

    method: str
    path: str
    authorized: bool


@dataclass
class FakeRemita:
    """One Remita merchant's RRRs and the app serving them (:attr:`app`)."""

    merchant_id: str = MERCHANT_ID
    service_type_id: str = SERVICE_TYPE_ID
    api_key: str = API_KEY
    hang_seconds: float = 5.0
    #: Where paid RRRs are notified (Remita's is set in the merchant profile), or None.
    notification_url: str | None = None
    #: By RRR: the payment as generated, its ``status`` and ``message``.
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    notifications: list[bytes] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    _hang_next: bool = False
    _deliveries: set[asyncio.Task[None]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route(f"{ECHANNEL}/merchant/api/paymentinit", self._init, methods=["POST"]),
                Route("/remita/ecomm/finalize.reg", self._page, methods=["POST"]),
                Route("/_fake/pay/{rrr}", self._pay, methods=["POST"]),
                Route(f"{ECHANNEL}/{{merchant}}/{{rrr}}/{{digest}}/status.reg", self._status),
                Route(
                    f"{ECHANNEL}/{{merchant}}/{{order}}/{{digest}}/orderstatus.reg",
                    self._order_status,
                ),
            ]
        )

    # --- switches and builders for tests ---------------------------------------------------

    def hang(self) -> None:
        """Answer the next API call only after ``hang_seconds``."""
        self._hang_next = True

    def notification_body(self, rrr: str, *, amount: str | None = None) -> bytes:
        """The JSON Remita posts about a paid RRR (unsigned: anyone can send one)."""
        payment = self.payments.get(rrr, {})
        item = {
            "rrr": rrr,
            "channel": "CARD",
            "amount": amount or payment.get("amount", "0.00"),
            "transactiondate": payment.get("paymentDate") or time.strftime("%Y-%m-%d %H:%M:%S"),
            "debitdate": payment.get("paymentDate") or time.strftime("%Y-%m-%d %H:%M:%S"),
            "bank": "057",
            "serviceTypeId": self.service_type_id,
            "orderRef": payment.get("orderId", ""),
            "payerName": payment.get("payerName", ""),
            "payerEmail": payment.get("payerEmail", ""),
            "payerPhoneNumber": payment.get("payerPhone", ""),
            "type": "PY",
        }
        return json.dumps([item]).encode()

    # --- API -------------------------------------------------------------------------------

    def _authorized(self, request: Request, token: str) -> bool:
        expected = f"remitaConsumerKey={self.merchant_id},remitaConsumerToken={token}"
        return request.headers.get("authorization", "").replace(" ", "") == expected

    async def _hang_if_asked(self) -> None:
        if self._hang_next:
            self._hang_next = False
            await asyncio.sleep(self.hang_seconds)

    async def _init(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = {}
        body = {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
        token = sha512(
            self.merchant_id,
            body.get("serviceTypeId", ""),
            body.get("orderId", ""),
            body.get("amount", ""),
            self.api_key,
        )
        authorized = self._authorized(request, token)
        self.calls.append(Call("POST", request.url.path, authorized))
        await self._hang_if_asked()
        if not authorized or body.get("serviceTypeId") != self.service_type_id:
            return _jsonp({"statuscode": "023", "status": "Invalid Service Type or Merchant"})
        required = ("amount", "orderId", "payerName", "payerEmail", "payerPhone")
        if any(not body.get(name) for name in required):
            return _jsonp({"statuscode": "022", "status": "Invalid Request"})
        rrr = "".join(secrets.choice("0123456789") for _ in range(12))
        with self._lock:
            self.payments[rrr] = {
                **body,
                "RRR": rrr,
                "status": "021",
                "message": "Transaction Pending",
                "paymentDate": None,
            }
        return _jsonp({"statuscode": "025", "RRR": rrr, "status": "Payment Reference generated"})

    async def _page(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        rrr = form.get("rrr", "")
        payment = self.payments.get(rrr)
        expected = sha512(self.merchant_id, rrr, self.api_key)
        if (
            payment is None
            or form.get("merchantId") != self.merchant_id
            or form.get("hash") != expected
        ):
            return HTMLResponse("<h1>Remita</h1><p>Invalid payment request.</p>", 400)
        payment["responseurl"] = form.get("responseurl", "")
        buttons = "".join(
            f'<button name="choice" value="{choice}">{choice.title()}</button>'
            for choice in _OUTCOMES
        )
        return HTMLResponse(
            f"<h1>Remita (fake)</h1><p>RRR {html.escape(rrr)}: pay "
            f"NGN {html.escape(payment['amount'])}</p>"
            f'<form method="post" action="{html.escape(base(request))}/_fake/pay/{html.escape(rrr)}">'
            f"{buttons}</form>"
        )

    async def _pay(self, request: Request) -> Response:
        form = await request.form()
        payment = self.payments.get(request.path_params["rrr"])
        outcome = _OUTCOMES.get(str(form.get("choice", "")))
        if payment is None or outcome is None or payment["status"] != "021":
            return HTMLResponse("<p>This RRR cannot be paid.</p>", 400)
        payment["status"], payment["message"] = outcome
        if outcome[0] == "00":
            payment["paymentDate"] = time.strftime("%Y-%m-%d %H:%M:%S")
            self._notify(payment["RRR"])
        back = urlencode({"RRR": payment["RRR"], "orderID": payment["orderId"]})
        url = payment.get("responseurl") or "/"
        return RedirectResponse(f"{url}{'&' if '?' in url else '?'}{back}", 302)

    async def _status(self, request: Request) -> Response:
        merchant, rrr, digest = (request.path_params[k] for k in ("merchant", "rrr", "digest"))
        expected = sha512(rrr, self.api_key, self.merchant_id)
        authorized = merchant == self.merchant_id and digest == expected
        authorized = authorized and self._authorized(request, expected)
        self.calls.append(Call("GET", "/status.reg", authorized))
        await self._hang_if_asked()
        if not authorized:
            return JSONResponse({"status": "023", "message": "Invalid Merchant or Hash"})
        payment = self.payments.get(rrr)
        if payment is None:
            return JSONResponse({"status": "022", "message": "Invalid Request"})
        return JSONResponse(_status_of(payment))

    async def _order_status(self, request: Request) -> Response:
        merchant, order, digest = (request.path_params[k] for k in ("merchant", "order", "digest"))
        expected = sha512(order, self.api_key, self.merchant_id)
        authorized = merchant == self.merchant_id and digest == expected
        authorized = authorized and self._authorized(request, expected)
        self.calls.append(Call("GET", "/orderstatus.reg", authorized))
        await self._hang_if_asked()
        if not authorized:
            return JSONResponse({"status": "023", "message": "Invalid Merchant or Hash"})
        payment = next((p for p in self.payments.values() if p["orderId"] == order), None)
        if payment is None:
            return JSONResponse({"status": "022", "message": "Invalid Request"})
        return JSONResponse(_status_of(payment))

    # --- notifications ---------------------------------------------------------------------

    def _notify(self, rrr: str) -> None:
        body = self.notification_body(rrr)
        self.notifications.append(body)
        if self.notification_url:
            task = asyncio.get_running_loop().create_task(self._deliver(body))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, body: bytes) -> None:
        assert self.notification_url is not None
        headers = {"Content-Type": "application/json"}
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                reply = await client.post(self.notification_url, content=body, headers=headers)
            log.info("fake remita: notification delivered: %s", reply.status_code)
        except httpx.HTTPError as error:
            log.warning("fake remita: notification not delivered: %s", type(error).__name__)


def _status_of(payment: Mapping[str, Any]) -> dict[str, Any]:
    """The status.reg answer: the amount as the decimal text it was generated with."""
    return {
        "amount": payment["amount"],
        "RRR": payment["RRR"],
        "orderId": payment["orderId"],
        "message": payment["message"],
        "transactiontime": payment["paymentDate"],
        "paymentDate": payment["paymentDate"],
        "status": payment["status"],
    }


def _jsonp(answer: Mapping[str, str]) -> Response:
    return Response(f"jsonp ({json.dumps(answer)})", media_type="application/json")


fake = FakeRemita()
app = fake.app


def serve(port: int = 12115, host: str = "127.0.0.1") -> None:
    """Serve the module's fake (:data:`fake`) until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info")
