"""Turning a template and the API's answers into a response.

One template per page, with the parts htmx swaps in as named blocks: :func:`render` sends the
whole page to a browser and just the block to htmx (jinja2-fragments), always with
``Vary`` on the htmx headers so no cache hands one where the other was asked for.

The filters show values exactly as the API gives them: money stays the API's decimal string
beside its currency (never a float), dates stay ISO dates, and instants are shown in the
customer's own time zone.
"""

from __future__ import annotations

import contextlib
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2_fragments.starlette import Jinja2Blocks
from starlette.requests import Request
from starlette.responses import Response

from portals import graphql, htmx
from portals.navigation import NAVIGATION, home_for

TEMPLATES = Jinja2Blocks(directory=Path(__file__).resolve().parent / "templates")
DAY_FORMAT = "%-d %b %Y"

#: Sent with every page.  Scripts and styles come from /static only (htmx is configured not
#: to inject its own styles), nothing may frame a page, and the address of a page — which
#: for a password reset holds its token — is never sent to another site.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Pages show someone's money: no cache, shared or private, may keep a copy.
    "Cache-Control": "no-store",
}

#: htmx settings (read from a <meta> tag).  Every response is swapped, errors included —
#: form errors come with 422 and error pages retarget themselves to <main> — so the
#: visitor always sees what happened.  No page snapshots in localStorage (they would hold
#: someone's invoices after signing out): going back asks the server, which sends the whole
#: page for a history restore.  No eval, no script tags, no injected styles (see the CSP).
HTMX_CONFIG = json.dumps(
    {
        "responseHandling": [{"code": "204", "swap": False}, {"code": "...", "swap": True}],
        "historyCacheSize": 0,
        "allowEval": False,
        "allowScriptTags": False,
        "includeIndicatorStyles": False,
    }
)

ERROR_TITLES = {
    400: "That address is not right",
    403: "Not allowed",
    404: "Page not found",
    413: "Too much data",
    500: "Something went wrong",
}
ERROR_MESSAGES = {
    400: "Part of the address is not something we can read. Go back and follow the link again.",
    403: "You may not do this here. If you were filling in a form, it may have expired: "
    "reload the page and try again.",
    404: "There is nothing here, or it is not yours to see.",
    413: "That form sent more data than a form here can hold.",
    500: "We could not finish this just now. Please try again in a moment.",
}


def money(value: dict[str, str] | None) -> str:
    """``{"amount": "12.30", "currency": "USD"}`` → ``12.30 USD``: the API's digits, as given."""
    return "" if value is None else f"{value['amount']} {value['currency']}"


def day(value: str | None) -> str:
    """An ISO date (a customer's local calendar day) as ``16 Mar 2026``."""
    return "" if not value else date.fromisoformat(value).strftime(DAY_FORMAT)


def previous_day(value: str) -> str:
    """The ISO day before ``value``: the last day of a period whose end is exclusive."""
    return (date.fromisoformat(value) - timedelta(days=1)).isoformat()


def _local(value: str, time_zone: str | None) -> datetime:
    instant = datetime.fromisoformat(value)
    return instant.astimezone(ZoneInfo(time_zone)) if time_zone else instant


def moment(value: str | None, time_zone: str | None = None) -> str:
    """An ISO instant as ``16 Mar 2026 13:05`` in ``time_zone`` (the customer's)."""
    return "" if not value else _local(value, time_zone).strftime(f"{DAY_FORMAT} %H:%M")


def local_day(value: str | None, time_zone: str | None = None) -> str:
    """The calendar day an ISO instant falls on in ``time_zone``."""
    return "" if not value else _local(value, time_zone).strftime(DAY_FORMAT)


def is_zero(value: dict[str, str]) -> bool:
    """Whether a Money is nothing at all, read from its digits (``"0.00"``, ``"-0"``)."""
    return value["amount"].lstrip("-").strip("0.") == ""


def is_negative(value: dict[str, str]) -> bool:
    """Whether a Money is below zero (for a balance: credit)."""
    return value["amount"].startswith("-") and not is_zero(value)


def label(value: str | None) -> str:
    """An API enum value as words: ``PARTIALLY_PAID`` → ``Partially paid``."""
    return "" if not value else value.replace("_", " ").capitalize()


def sentence(value: str | None) -> str:
    """An API message as a sentence: capitalised, ending in a full stop."""
    if not value:
        return ""
    text = value[0].upper() + value[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


TEMPLATES.env.filters.update(
    money=money,
    day=day,
    previous_day=previous_day,
    moment=moment,
    local_day=local_day,
    label=label,
    sentence=sentence,
)
TEMPLATES.env.tests.update(zero=is_zero, negative=is_negative)
# The shared macros as a global rather than imported by each template: a block rendered on
# its own (an htmx fragment) does not run the template's top-level imports.
TEMPLATES.env.globals["ui"] = TEMPLATES.env.get_template("macros.html").module


def _layout(request: Request) -> dict[str, Any]:
    """What ``base.html`` needs: the CSRF token and the visitor's role-aware navigation."""
    visitor: graphql.Visitor | None = getattr(request.state, "visitor", None)
    role = visitor.role if visitor is not None and visitor.authenticated else None
    return {
        "csrf_token": request.state.csrf_token,
        "htmx_config": HTMX_CONFIG,
        "visitor": visitor,
        "navigation": NAVIGATION.get(role or "", ()),
        "home": home_for(role),
        "path": request.url.path,
    }


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    fragment: str | None = None,
    status_code: int = 200,
) -> Response:
    """The page, or only its block ``fragment`` when htmx asks for a part of the page.

    A history restore, a boosted request and a plain browser request get the whole page.
    """
    block = fragment if fragment is not None and htmx.wants_fragment(request) else None
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {**_layout(request), **context},
        status_code=status_code,
        headers=SECURITY_HEADERS,
        block_name=block,
    )
    return htmx.add_vary(response)


async def error_page(request: Request, status_code: int, message: str | None = None) -> Response:
    """A page saying what went wrong, in the visitor's layout when we know who they are.

    To htmx it is the content of ``<main>``, retargeted there: the error replaces the page's
    content rather than squeezing into whatever small part the request meant to update.
    """
    if getattr(request.state, "visitor", None) is None and status_code != 500:
        with contextlib.suppress(graphql.OperationFailed):  # then it shows no navigation
            await graphql.visitor(request)
    response = render(
        request,
        "error.html",
        {
            "status_code": status_code,
            "title": ERROR_TITLES.get(status_code, "Error"),
            "message": message or ERROR_MESSAGES.get(status_code, ""),
        },
        fragment="main",
        status_code=status_code,
    )
    if htmx.wants_fragment(request):
        htmx.retarget(response, "#main", "innerHTML")
    return response
