"""Who may open a page, and the way back to it after signing in.

The session itself is :mod:`resolvers.sessions`'s: a signed token in the HttpOnly, SameSite=Lax
``kassa_session`` cookie, valid for 12 hours and until the password changes.  Here a page
handler declares the roles it serves with :func:`requires`; a visitor without a (live)
session is sent to the sign-in page with ``?next=`` set to the page they were on, and comes
back to it once signed in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from portals import graphql, htmx, rendering
from portals.graphql import Visitor
from portals.navigation import HOME, home_for
from resolvers import sessions

SIGN_IN_PATH = "/portal/sign-in"

#: The page shown for the API's top-level error codes (any other is a bug: 500).
REFUSALS = {"FORBIDDEN": 403, "BAD_USER_INPUT": 400}

#: A page handler: the request and the signed-in visitor it was checked for.
Page = Callable[[Request, Visitor], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def safe_next(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default``.

    ``next`` comes from the address bar, so anything that could leave the site — another
    host (``//evil.example``, ``/\\evil.example``), a scheme, control characters — is
    ignored rather than followed (an open redirect helps phishing).
    """
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or any(char < " " or char == "\\" for char in target)
    ):
        return default
    return target


def _same_origin_path(request: Request, address: str | None) -> str | None:
    if not address:
        return None
    parts = urlsplit(address)
    if parts.netloc != request.url.netloc or not parts.path.startswith("/"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def page_path(request: Request) -> str | None:
    """The page the visitor was looking at when this request was made.

    For htmx that is the browser's address (``HX-Current-URL``), not the fragment or action
    requested; for a plain form it is the page the form was on (``Referer``); for a page
    it is the page itself.
    """
    if htmx.is_htmx(request):
        return _same_origin_path(request, request.headers.get("hx-current-url"))
    if request.method not in ("GET", "HEAD"):
        return _same_origin_path(request, request.headers.get("referer"))
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def sign_in_url(next_path: str | None, notice: str | None = None) -> str:
    query = {name: value for name, value in (("next", next_path), ("notice", notice)) if value}
    return SIGN_IN_PATH + (f"?{urlencode(query)}" if query else "")


def to_sign_in(request: Request) -> Response:
    """Off to the sign-in page, to come back here afterwards.

    A session cookie that no longer works (expired, or the password changed) is dropped,
    and the sign-in page says why the visitor is there.
    """
    if sessions.SESSION_COOKIE not in request.cookies:
        return htmx.redirect(request, sign_in_url(page_path(request)))
    response = htmx.redirect(request, sign_in_url(page_path(request), "session-ended"))
    sessions.clear_session_cookie(response, request.app.state.settings)
    return response


def requires(*roles: str) -> Callable[[Page], Endpoint]:
    """Make ``page`` an endpoint for signed-in visitors with one of ``roles`` only.

    The API's own refusals are turned into pages here, once for every handler: no session
    → the sign-in page; someone else's object or an unknown id → 404; a role that may not
    do it → 403, except on another role's home page (``/portal``, ``/admin``), which sends
    the visitor on to their own, as signing in does — an administrator following a link to
    ``/portal`` means the start page, not the customer portal; a mangled address (a foreign
    ``after`` cursor) → 400; anything else → 500 (the schema has already logged it).
    """

    def decorate(page: Page) -> Endpoint:
        @wraps(page)
        async def endpoint(request: Request) -> Response:
            try:
                visitor = await graphql.visitor(request)
                if not visitor.authenticated:
                    return to_sign_in(request)
                if visitor.role not in roles:
                    own_home = home_for(visitor.role)
                    if (
                        request.method == "GET"
                        and request.url.path in HOME.values()
                        and request.url.path != own_home
                    ):
                        return htmx.redirect(request, own_home)
                    return await rendering.error_page(
                        request, 403, "This part of kassa is not for your kind of sign-in."
                    )
                return await page(request, visitor)
            except graphql.SignInRequired:
                return to_sign_in(request)
            except graphql.ObjectNotFound:
                return await rendering.error_page(request, 404)
            except graphql.OperationFailed as failure:
                status = next(
                    (status for code, status in REFUSALS.items() if code in failure.codes), 500
                )
                return await rendering.error_page(request, status)

        return endpoint

    return decorate
