"""Cross-site request forgery protection for every state-changing portal request.

Each browser gets a random ``kassa_csrf`` cookie (HttpOnly, SameSite=Lax).  The token pages
carry is an HMAC, under the installation's secret key, of that cookie *and* the session
cookie; a POST (PUT, PATCH, DELETE) must send it back in the ``X-CSRF-Token`` header —
htmx does, from ``hx-headers`` on ``<body>`` — or in the ``csrf_token`` form field of a
plain form.  Anything else is refused with 403 before a handler runs.

Why this shape: nothing is stored on the server (the app tier stays stateless); another
site can neither read the token nor make one without the secret; and binding it to the
session means a token from before signing in or out stops working, so an attacker cannot
plant a cookie-and-token pair of their own in someone else's browser.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portals.rendering import error_page
from resolvers.sessions import SESSION_COOKIE
from schema.http import media_type
from settings import Settings

CSRF_COOKIE = "kassa_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Addresses another site POSTs the browser to: a payment system's return (Payarena's
#: post-back), whose handler only answers a 303 to the same address's GET, reading and
#: writing nothing (:func:`portals.redirect_pay.posted_back`); so there is nothing to forge.
CROSS_SITE_RETURNS = re.compile(r"/portal/pay/return/\d+")
#: Portal forms are a few fields; a bigger body is refused before it is read into memory.
MAX_FORM_BYTES = 64 * 1024


def token_for(settings: Settings, browser_key: str, session: str) -> str:
    message = f"{browser_key}\x00{session}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


class CSRFMiddleware:
    """Puts the expected token on ``request.state.csrf_token`` and checks unsafe methods."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        settings: Settings = request.app.state.settings
        browser_key = request.cookies.get(CSRF_COOKIE, "")
        new_key = None
        if len(browser_key) < 32:
            browser_key = new_key = secrets.token_urlsafe(32)
        expected = token_for(settings, browser_key, request.cookies.get(SESSION_COOKIE, ""))
        scope.setdefault("state", {})["csrf_token"] = expected

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and new_key is not None:
                cookie = Response()
                cookie.set_cookie(
                    CSRF_COOKIE,
                    new_key,
                    path="/",
                    httponly=True,
                    samesite="lax",
                    secure=not settings.development,
                )
                message["headers"] = [
                    *message.get("headers", []),
                    *((name, value) for name, value in cookie.raw_headers if name == b"set-cookie"),
                ]
            await send(message)

        if request.method not in SAFE_METHODS and not CROSS_SITE_RETURNS.fullmatch(
            request.url.path
        ):
            body = await self._read_body(receive)
            if body is None:
                refusal = await error_page(request, 413)
                await refusal(scope, receive, send_with_cookie)
                return
            sent = request.headers.get(CSRF_HEADER) or await _form_token(scope, body, receive)
            receive = _replay(body, receive)
            if new_key is not None or not hmac.compare_digest(sent.encode(), expected.encode()):
                refusal = await error_page(request, 403)
                await refusal(scope, receive, send_with_cookie)
                return

        await self.app(scope, receive, send_with_cookie)

    @staticmethod
    async def _read_body(receive: Receive) -> bytes | None:
        """The whole request body, or None when it is larger than :data:`MAX_FORM_BYTES`."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_FORM_BYTES:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, then: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the next app once, and after that
    passes on what the server says (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await then()

    return receive


async def _form_token(scope: Scope, body: bytes, receive: Receive) -> str:
    """The ``csrf_token`` field of a form body (URL-encoded or multipart), else ``""``."""
    content_type = media_type(Request(scope).headers.get("content-type"))
    if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return ""
    async with Request(scope, _replay(body, receive)).form() as form:
        value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else ""
