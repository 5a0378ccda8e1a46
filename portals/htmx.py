"""The few htmx request and response headers the portals use (https://htmx.org/reference/).

Written here rather than taken from htmx-flask, which is a Flask extension: kassa runs on
Starlette, and these are a handful of header reads and writes.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

#: Request headers a page's body depends on: caches must keep one copy per value.
VARY = ("HX-Request", "HX-History-Restore-Request", "HX-Boosted")


def is_htmx(request: Request) -> bool:
    """The request was made by htmx (any kind: a swap, a boosted link, a history restore)."""
    return request.headers.get("hx-request") == "true"


def is_history_restore(request: Request) -> bool:
    """htmx is restoring a page from history after missing its cache: it needs the whole page."""
    return request.headers.get("hx-history-restore-request") == "true"


def is_boosted(request: Request) -> bool:
    """A boosted link or form: htmx swaps the whole ``<body>``, so it needs the whole page."""
    return request.headers.get("hx-boosted") == "true"


def wants_fragment(request: Request) -> bool:
    """Whether to answer with just the part of the page htmx swaps in."""
    return is_htmx(request) and not is_history_restore(request) and not is_boosted(request)


def add_vary(response: Response) -> Response:
    """Declare that the response depends on the htmx request headers (:data:`VARY`)."""
    present = [value.strip() for value in response.headers.get("vary", "").split(",") if value]
    wanted = present + [name for name in VARY if name not in present]
    response.headers["Vary"] = ", ".join(wanted)
    return response


def retarget(response: Response, selector: str, swap: str) -> Response:
    """Have htmx swap the response into ``selector`` (``HX-Retarget``) the ``swap`` way
    (``HX-Reswap``), instead of where the request said."""
    response.headers["HX-Retarget"] = selector
    response.headers["HX-Reswap"] = swap
    return response


def redirect(request: Request, url: str, status_code: int = 303) -> Response:
    """Send the browser to ``url``: an ``HX-Redirect`` for htmx (which would otherwise swap
    the next page into a fragment's place), an ordinary redirect otherwise."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return Response(status_code=status_code, headers={"Location": url})
