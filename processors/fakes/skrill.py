"""A fake Skrill for the tests and the demo: the part of Quick Checkout and the Merchant Query
Interface kassa speaks (:mod:`processors.skrill`), served by a Starlette app.

* ``POST /`` with ``prepare_only=1`` prepares a payment session for a configured merchant
  (``pay_to_email``) and answers its SID as plain text; a refusal is a 400 with Skrill's JSON
  ``{"code", "message"}``.
* ``GET /?sid=…`` is the payment page: Approve, Decline or Cancel (a form POSTed to
  ``/_fake/pay/{sid}``).  Approve makes a processed transaction (status 2) and sends the
  customer to ``return_url?transaction_id=…&msid=…`` (``msid`` as Skrill's secure return signs it: the
  upper-case MD5 of merchant_id + transaction_id + UPPER(MD5(secret word))); Decline makes a
  failed one (status -2) and returns to ``return_url?transaction_id=…``; Cancel makes none and
  returns to ``cancel_url``.  An expired session (:meth:`FakeSkrill.expire`) cannot be paid.
* Each transaction's status notification is kept in :attr:`FakeSkrill.notifications` and,
  with ``deliver=True``, POSTed to the payment's ``status_url`` (form fields signed with
  ``md5sig`` and ``sha2sig`` under the secret word).  :meth:`FakeSkrill.notification_fields`
  builds one for tests, with any status or amount; ``POST /_fake/chargeback`` charges a
  transaction back (status -3) for the demo.
* ``POST /app/query.pl`` is the MQI: ``action=status_trn`` with ``email``, ``password`` (the
  MD5 of the MQI password) and ``trn_id`` or ``mb_trn_id``; answers ``200\\t\\tOK`` and the
  transaction's fields URL-encoded on the next line, ``403\\t\\tTransaction not found: …`` or
  ``401\\t\\tCannot login``, always with HTTP 200, as Skrill does.

:meth:`FakeSkrill.hang` makes the next API call (prepare or MQI) answer only after
``hang_seconds``.  Run it alone with ``uvicorn processors.fakes.skrill:app``.  Nothing here
imports kassa's ``billing``.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import itertools
import json
import logging
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from processors.fakes.urls import base

log = logging.getLogger("kassa.fakes.skrill")

#: The merchant the module-level :data:`app` serves.
MERCHANT_EMAIL = "merchant@kassa.test"
MERCHANT_ID = "40009999"
SECRET_WORD = "kassa-fake-secret"
MQI_PASSWORD = "kassa-fake-mqi"

#: Skrill's failed_reason_code for "rejected by the bank" (what Decline answers).
DECLINE_REASON = "01"


def _md5_upper(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest().upper()


def _with_query(url: str, params: Mapping[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """An API call as the fake saw it (never its credentials)."""

    path: str
    action: str


@dataclass
class FakeSkrill:
    """One Skrill merchant's sessions and transactions, and the app serving them (:attr:`app`)."""

    merchant_email: str = MERCHANT_EMAIL
    merchant_id: str = MERCHANT_ID
    secret_word: str = SECRET_WORD
    mqi_password: str = MQI_PASSWORD
    hang_seconds: float = 5.0
    #: POST status notifications to each payment's ``status_url`` (the demo); tests read them
    #: from :attr:`notifications`.
    deliver: bool = False
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: By kassa's ``transaction_id``.
    transactions: dict[str, dict[str, str]] = field(default_factory=dict)
    notifications: list[dict[str, str]] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    _hang_next: bool = False
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(2_000_000_001))
    _deliveries: set[asyncio.Task[None]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/", self._prepare, methods=["POST"]),
                Route("/", self._page, methods=["GET"]),
                Route("/_fake/pay/{sid}", self._pay, methods=["POST"]),
                Route("/_fake/chargeback", self._chargeback, methods=["POST"]),
                Route("/app/query.pl", self._query, methods=["POST"]),
            ]
        )

    # --- switches and builders for tests ---------------------------------------------------

    def hang(self) -> None:
        """Answer the next API call only after ``hang_seconds``."""
        self._hang_next = True

    def expire(self, transaction_id: str) -> None:
        """Let every session prepared for ``transaction_id`` expire unpaid."""
        with self._lock:
            for session in self.sessions.values():
                if session["transaction_id"] == transaction_id:
                    session["expired"] = True

    def signed(self, fields: Mapping[str, str]) -> dict[str, str]:
        """``fields`` with ``md5sig`` and ``sha2sig`` computed under the secret word."""
        base = (
            fields["merchant_id"]
            + fields["transaction_id"]
            + _md5_upper(self.secret_word)
            + fields["mb_amount"]
            + fields["mb_currency"]
            + fields["status"]
        )
        sha2 = hashlib.sha256(base.encode()).hexdigest().upper()
        return {**fields, "md5sig": _md5_upper(base), "sha2sig": sha2}

    def notification_fields(
        self, transaction_id: str, *, status: str | None = None, mb_amount: str | None = None
    ) -> dict[str, str]:
        """The signed status notification Skrill posts about a transaction, with another
        ``status`` or ``mb_amount`` if asked (to test chargebacks and wrong amounts)."""
        transaction = dict(self.transactions[transaction_id])
        if status is not None:
            transaction["status"] = status
        if mb_amount is not None:
            transaction["mb_amount"] = mb_amount
        return self.signed(transaction)

    # --- API -------------------------------------------------------------------------------

    async def _hang_if_asked(self) -> None:
        if self._hang_next:
            self._hang_next = False
            await asyncio.sleep(self.hang_seconds)

    async def _prepare(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.requests.append(RecordedRequest("/", "prepare"))
        await self._hang_if_asked()
        if form.get("prepare_only") != "1":
            return _bad_request("only prepare_only=1 is supported by the fake")
        if form.get("pay_to_email") != self.merchant_email:
            return _bad_request("Invalid merchant email")
        missing = [
            name
            for name in ("transaction_id", "amount", "currency", "status_url")
            if not form.get(name)
        ]
        if missing:
            return _bad_request(f"Missing parameter: {missing[0]}")
        if form["transaction_id"] in self.transactions:
            return _bad_request("Transaction ID is already used")
        sid = secrets.token_hex(16)
        with self._lock:
            self.sessions[sid] = {**form, "expired": False}
        return PlainTextResponse(sid, media_type="text/html")

    async def _page(self, request: Request) -> Response:
        session = self.sessions.get(request.query_params.get("sid", ""))
        if session is None or session["expired"]:
            return HTMLResponse("<h1>Skrill</h1><p>This payment session has expired.</p>", 410)
        sid = html.escape(request.query_params["sid"])
        buttons = "".join(
            f'<button name="choice" value="{choice}">{choice.title()}</button>'
            for choice in ("approve", "decline", "cancel")
        )
        return HTMLResponse(
            f"<h1>Skrill (fake)</h1><p>Pay {html.escape(session['amount'])} "
            f"{html.escape(session['currency'])} to {html.escape(self.merchant_email)}</p>"
            f'<form method="post" action="{html.escape(base(request))}/_fake/pay/{sid}">{buttons}</form>'
        )

    async def _pay(self, request: Request) -> Response:
        form = await request.form()
        session = self.sessions.get(request.path_params["sid"])
        if session is None or session["expired"]:
            return HTMLResponse("<p>This payment session has expired.</p>", 410)
        choice = str(form.get("choice", ""))
        transaction_id = session["transaction_id"]
        if choice == "cancel":
            return RedirectResponse(session.get("cancel_url") or "/", 302)
        if transaction_id in self.transactions:
            return HTMLResponse("<p>This transaction was already made.</p>", 409)
        status = "2" if choice == "approve" else "-2"
        transaction = {
            "pay_to_email": self.merchant_email,
            "pay_from_email": session.get("pay_from_email", "payer@skrill.test"),
            "merchant_id": self.merchant_id,
            "transaction_id": transaction_id,
            "mb_transaction_id": str(next(self._ids)),
            "mb_amount": session["amount"],
            "mb_currency": session["currency"],
            "status": status,
            "amount": session["amount"],
            "currency": session["currency"],
        }
        if status == "-2":
            transaction["failed_reason_code"] = DECLINE_REASON
        with self._lock:
            self.transactions[transaction_id] = transaction
        self._notify(transaction_id, session.get("status_url", ""))
        back: dict[str, str] = {"transaction_id": transaction_id}
        if status == "2":
            back["msid"] = _md5_upper(
                self.merchant_id + transaction_id + _md5_upper(self.secret_word)
            )
        return RedirectResponse(_with_query(session.get("return_url") or "/", back), 302)

    async def _chargeback(self, request: Request) -> Response:
        transaction_id = str((await request.form()).get("transaction_id", ""))
        transaction = self.transactions.get(transaction_id)
        if transaction is None or transaction["status"] != "2":
            return PlainTextResponse("no processed transaction", 404)
        transaction["status"] = "-3"
        url = next(
            (
                s["status_url"]
                for s in self.sessions.values()
                if s["transaction_id"] == transaction_id
            ),
            "",
        )
        self._notify(transaction_id, url)
        return PlainTextResponse("charged back")

    async def _query(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.requests.append(RecordedRequest("/app/query.pl", form.get("action", "")))
        await self._hang_if_asked()
        password = hashlib.md5(self.mqi_password.encode(), usedforsecurity=False).hexdigest()
        if form.get("email") != self.merchant_email or form.get("password") != password:
            return _mqi("401\t\tCannot login")
        if form.get("action") != "status_trn":
            return _mqi("400\t\tUnknown action")
        wanted = form.get("trn_id") or form.get("mb_trn_id") or ""
        transaction = self.transactions.get(wanted) or next(
            (t for t in self.transactions.values() if t["mb_transaction_id"] == wanted), None
        )
        if transaction is None:
            return _mqi(f"403\t\tTransaction not found: {wanted}")
        return _mqi("200\t\tOK\n" + urlencode(self.signed(transaction)))

    # --- notifications ---------------------------------------------------------------------

    def _notify(self, transaction_id: str, status_url: str) -> None:
        fields = self.notification_fields(transaction_id)
        self.notifications.append(fields)
        if self.deliver and status_url:
            task = asyncio.get_running_loop().create_task(self._deliver(status_url, fields))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, url: str, fields: Mapping[str, str]) -> None:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                reply = await client.post(url, data=dict(fields))
            log.info("fake skrill: status %s delivered: %s", fields["status"], reply.status_code)
        except httpx.HTTPError as error:
            log.warning("fake skrill: notification not delivered: %s", type(error).__name__)


def _bad_request(message: str) -> Response:
    body = json.dumps({"code": "BAD_REQUEST", "message": message})
    return Response(body, 400, media_type="application/json")


def _mqi(text: str) -> Response:
    return PlainTextResponse(text + "\n", media_type="text/html")


fake = FakeSkrill()
app = fake.app


def serve(port: int = 12114, host: str = "127.0.0.1") -> None:
    """Serve the module's fake (:data:`fake`) until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info")
