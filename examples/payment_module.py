"""A kassa payment module in one short file: the reference for docs/payment-modules.md.

It keeps tokens, charges and refunds in memory and decides like a card network's test mode:
4242 4242 4242 4242 (and any other number) is approved, 4000 0000 0000 0002 declined
(``card_declined``), 4000 0000 0000 9995 declined for ``insufficient_funds``,
4000 0000 0000 0119 charged but answered only after ``hang_seconds`` (kassa gives up waiting
and finds the charge by ``/status``), and 4000 0000 0000 3220 left ``PENDING`` until
:meth:`PaymentModule.settle` calls kassa back with the result.  To connect a real payment
system, replace what :meth:`PaymentModule.charge` decides with a call to it.

Standalone on purpose (the standard library, Starlette and uvicorn; nothing of kassa), so it
can be copied.  Run it with ``KASSA_MODULE_SECRET=... python payment_module.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Json = dict[str, Any]
Handler = Callable[[Any], Awaitable[tuple[int, Json]]]
#: What charges to a test card do; any other number is approved.
BEHAVIOURS = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000119": "hang",
    "4000000000003220": "pending",
}
STATUSES = {"approve": "SUCCEEDED", "hang": "SUCCEEDED", "pending": "PENDING"}  # else DECLINED
MESSAGES = {"SUCCEEDED": "Approved.", "DECLINED": "The card was declined.", "PENDING": "Pending."}


def sign(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """The protocol's signature of a request, an answer (its request's method and path) or a
    callback: ``v1=`` hex HMAC-SHA256 of ``"{timestamp}.{method}.{path}."`` + the raw body."""
    message = f"{timestamp}.{method}.{path}.".encode() + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed(secret: str, method: str, path: str, body: bytes) -> dict[str, str]:
    """Headers for a JSON message sent now."""
    now = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-Kassa-Timestamp": now,
        "X-Kassa-Signature": sign(secret, now, method, path, body),
    }


def error(code: str, message: str) -> Json:
    return {"error": {"code": code, "message": message}}


class PaymentModule:
    """The module's state and its Starlette ``app``."""

    def __init__(self, secret: str, hang_seconds: float = 30.0) -> None:
        self.secret, self.hang_seconds = secret, hang_seconds
        self.cards: dict[str, str] = {}  # token → the test number's behaviour, never the number
        self.charges: dict[str, Json] = {}  # by idempotency key: the charge as answered
        self.asked: dict[str, tuple[Any, ...]] = {}  # by idempotency key: token, amount, currency
        self.callback_urls: dict[str, str] = {}
        self.refunds: dict[str, tuple[tuple[Any, ...], Json]] = {}  # by key: asked, answer
        handlers = [self.tokenize, self.charge, self.status, self.refund]
        routes = [Route(f"/{h.__name__}", self._signed(h), methods=["POST"]) for h in handlers]
        self.app = Starlette(routes=routes)

    def _signed(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Refuse a request kassa did not sign in the last five minutes; sign every answer."""

        async def endpoint(request: Request) -> Response:
            body, path = await request.body(), request.url.path
            stamp = request.headers.get("x-kassa-timestamp", "")
            fresh = stamp.isdecimal() and abs(time.time() - int(stamp)) <= 300
            expected = sign(self.secret, stamp, request.method, path, body).encode()
            if not fresh or not hmac.compare_digest(
                request.headers.get("x-kassa-signature", "").encode(), expected
            ):
                status, answer = 401, error("bad_signature", "not signed by kassa just now")
            else:
                try:
                    status, answer = await handler(json.loads(body))
                except (ValueError, KeyError, TypeError):
                    status, answer = 400, error("bad_request", "a field is missing or malformed")
            out = json.dumps(answer).encode()
            return Response(out, status, headers=signed(self.secret, request.method, path, out))

        return endpoint

    async def tokenize(self, body: Any) -> tuple[int, Json]:
        number = str(body["card"]["number"])  # used once here; never logged nor kept
        token = f"tok_{secrets.token_hex(12)}"
        self.cards[token] = BEHAVIOURS.get(number, "approve")
        return 200, {"token": token}

    async def charge(self, body: Any) -> tuple[int, Json]:
        key, asked = body["idempotency_key"], (body["token"], body["amount"], body["currency"])
        if key in self.charges:
            if self.asked[key] != asked:
                return 409, error("idempotency_conflict", "this key was used for another charge")
            return 200, self.charges[key]
        token, amount, currency = asked
        if token not in self.cards:
            return 422, error("invalid_token", "no card has this token")
        if type(amount) is not int or amount <= 0 or len(str(currency)) != 3:
            return 422, error("invalid_amount", "a positive integer amount of a currency, please")
        behaviour = self.cards[token]
        status = STATUSES.get(behaviour, "DECLINED")
        self.asked[key], self.callback_urls[key] = asked, body.get("callback_url") or ""
        self.charges[key] = {
            "idempotency_key": key,
            "reference": f"ch_{secrets.token_hex(12)}",
            "status": status,
            "amount": amount,
            "currency": currency,
            "decline_code": behaviour if status == "DECLINED" else None,
            "message": MESSAGES[status],
        }
        if behaviour == "hang":
            await asyncio.sleep(self.hang_seconds)
        return 200, self.charges[key]

    async def status(self, body: Any) -> tuple[int, Json]:
        charge = self.charges.get(body["idempotency_key"])
        return (200, charge) if charge else (404, error("not_found", "no charge under this key"))

    async def refund(self, body: Any) -> tuple[int, Json]:
        key, asked = body["idempotency_key"], (body["reference"], body["amount"])
        if key in self.refunds:
            first, answer = self.refunds[key]
            return (200, answer) if first == asked else (409, error("idempotency_conflict", key))
        charged = sum(
            c["amount"]
            for c in self.charges.values()
            if c["reference"] == asked[0] and c["status"] == "SUCCEEDED"
        )
        refunded = sum(
            a[1] for a, r in self.refunds.values() if a[0] == asked[0] and r["refund_reference"]
        )
        ok = type(asked[1]) is int and 0 < asked[1] <= charged - refunded
        answer = {
            "idempotency_key": key,
            "status": "SUCCEEDED" if ok else "FAILED",
            "refund_reference": f"re_{secrets.token_hex(12)}" if ok else None,
            "message": "Refunded." if ok else "Nothing refundable of that charge.",
        }
        self.refunds[key] = (asked, answer)
        return 200, answer

    def settle(self, key: str, decline_code: str | None = None, event_id: str = "") -> int:
        """Decide a PENDING charge and call kassa back; the HTTP status kassa answered.

        A real module retries until kassa answers 2xx, with the same ``event_id``."""
        charge = self.charges[key]
        charge["status"] = "DECLINED" if decline_code else "SUCCEEDED"
        charge["decline_code"], charge["message"] = decline_code, MESSAGES[charge["status"]]
        kind = "FAILED" if decline_code else "SUCCEEDED"
        return post_callback(self.callback_urls[key], self.secret, event(charge, kind, event_id))


def event(charge: Json, kind: str, event_id: str = "") -> Json:
    """A callback about ``charge``: kind SUCCEEDED, FAILED, REVERSED (a chargeback) or
    REFUNDED, under an id kassa applies once."""
    fields = ("idempotency_key", "reference", "amount", "currency", "decline_code", "message")
    return {"event_id": event_id or f"evt_{secrets.token_hex(12)}", "kind": kind} | {
        name: charge[name] for name in fields
    }


def post_callback(url: str, secret: str, payload: Json) -> int:
    """POST ``payload`` signed to kassa's callback ``url``; the HTTP status it answered."""
    body = json.dumps(payload).encode()
    headers = signed(secret, "POST", urllib.parse.urlsplit(url).path, body)
    request = urllib.request.Request(url, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return refused.code


if __name__ == "__main__":
    module = PaymentModule(os.environ["KASSA_MODULE_SECRET"])
    uvicorn.run(module.app, host="127.0.0.1", port=int(os.environ.get("PORT", "8700")))
