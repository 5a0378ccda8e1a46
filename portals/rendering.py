"""Turning a template and the API's answers into a response.

One template per page, with the parts htmx swaps in as named blocks: :func:`render` sends the
whole page to a browser and just the block to htmx (jinja2-fragments), always with
``Vary`` on the htmx headers so no cache hands one where the other was asked for.

The filters show values exactly as the API gives them, formatted with Babel for the reader's
locale (:func:`reader_locale`: the first of the browser's languages that Babel knows, else
:data:`LOCALE`): money keeps the API's digits (a Decimal from its string, never a float, with
as many decimals as the API gave) and gains the locale's separators (``30,468.90 NGN``, in
German ``30.468,90 NGN``), dates read ``2 Dec 2026`` (``2 Dez. 2026``), and instants are
shown in the customer's own time zone.  Enum values are named by :mod:`portals.words`.
"""

from __future__ import annotations

import contextlib
import json
import re
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.localedata import locale_identifiers
from babel.numbers import format_decimal
from jinja2_fragments.starlette import Jinja2Blocks
from starlette.requests import Request
from starlette.responses import Response

from portals import graphql, htmx, words
from portals.navigation import NAVIGATION, home_for

TEMPLATES = Jinja2Blocks(directory=Path(__file__).resolve().parent / "templates")
#: The locale pages are formatted for when the browser names none that Babel knows: British
#: English, ``2 Dec 2026``, ``30,468.90 NGN``, 24-hour time.
LOCALE = "en_GB"
#: The locale the page being rendered is formatted for (set by :func:`render`).
_locale: ContextVar[str] = ContextVar("reader_locale", default=LOCALE)
_KNOWN_LOCALES = frozenset(locale_identifiers())
#: An Accept-Language header longer than this is not a browser's: read none of it.
_MAX_ACCEPT_LANGUAGE = 512
DAY_FORMAT = "d MMM y"
MOMENT_FORMAT = "d MMM y HH:mm"

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


def reader_locale(accept_language: str | None) -> str:
    """The locale to format for, from an ``Accept-Language`` header (RFC 9110, q-weighted).

    Only the formatting of numbers and dates follows it: the portal's words are English.
    Malformed entries are skipped; a header naming no locale Babel knows gives :data:`LOCALE`.
    """
    if not accept_language or len(accept_language) > _MAX_ACCEPT_LANGUAGE:
        return LOCALE
    weighted: list[tuple[float, str]] = []
    for entry in accept_language.split(","):
        tag, _, parameter = entry.strip().partition(";")
        if not re.fullmatch(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*", tag):
            continue
        weight = 1.0
        if parameter:
            match = re.fullmatch(r"\s*q=(0(\.\d{0,3})?|1(\.0{0,3})?)\s*", parameter)
            if match is None:
                continue
            weight = float(match.group(1))
        if weight > 0:
            weighted.append((weight, tag.replace("-", "_")))
    preferred = [tag for _, tag in sorted(weighted, key=lambda pair: -pair[0])]
    chosen = Locale.negotiate(preferred, _KNOWN_LOCALES)
    return str(chosen) if chosen is not None else LOCALE


def money(value: dict[str, str] | None) -> str:
    """``{"amount": "30468.90", "currency": "NGN"}`` → ``30,468.90 NGN``.

    Exactly the API's digits (as many decimals as it gave, none rounded away), grouped as
    the locale groups them; the currency code follows, as on the invoice PDF.
    """
    if value is None:
        return ""
    amount = value["amount"]
    decimals = len(amount.partition(".")[2])
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return f"{format_decimal(Decimal(amount), pattern, locale=_locale.get())} {value['currency']}"


def day(value: str | None) -> str:
    """An ISO date (a customer's local calendar day) as ``16 Mar 2026``."""
    return (
        ""
        if not value
        else format_date(date.fromisoformat(value), DAY_FORMAT, locale=_locale.get())
    )


def previous_day(value: str) -> str:
    """The ISO day before ``value``: the last day of a period whose end is exclusive."""
    return (date.fromisoformat(value) - timedelta(days=1)).isoformat()


def _local(value: str, time_zone: str | None) -> datetime:
    instant = datetime.fromisoformat(value)
    return instant.astimezone(ZoneInfo(time_zone)) if time_zone else instant


def moment(value: str | None, time_zone: str | None = None) -> str:
    """An ISO instant as ``16 Mar 2026 13:05`` in ``time_zone`` (the customer's)."""
    if not value:
        return ""
    return format_datetime(_local(value, time_zone), MOMENT_FORMAT, locale=_locale.get())


def local_day(value: str | None, time_zone: str | None = None) -> str:
    """The calendar day an ISO instant falls on in ``time_zone``."""
    return (
        "" if not value else format_date(_local(value, time_zone), DAY_FORMAT, locale=_locale.get())
    )


def is_zero(value: dict[str, str]) -> bool:
    """Whether a Money is nothing at all, read from its digits (``"0.00"``, ``"-0"``)."""
    return value["amount"].lstrip("-").strip("0.") == ""


def is_negative(value: dict[str, str]) -> bool:
    """Whether a Money is below zero (for a balance: credit)."""
    return value["amount"].startswith("-") and not is_zero(value)


#: The two-digit country calling codes (ITU-T E.164); zones 1 and 7 have one digit, and
#: every other code has three.  Enough to split a bare ``+`` number after its country code.
_TWO_DIGIT_CODES = frozenset(
    {20, 27, *range(30, 35), 36, 39, 40, 41, *range(43, 50), *range(51, 59), *range(60, 67)}
    | {81, 82, 84, 86, *range(90, 96), 98}
)


def phone(value: str | None) -> str:
    """A phone number as people write it: ``+442079460001`` → ``+44 207 946 0001``.

    The API keeps what the customer typed (digits, spaces, brackets, dashes).  A number
    typed with its own spacing is shown as typed; a bare run of digits is split after the
    country code and then in groups of three or four, so it can be read out.  No national
    numbering plan is consulted: the grouping may not be the country's own, but it is
    easier to read than twelve digits in a row.
    """
    if not value:
        return ""
    text = " ".join(value.split())
    if not re.fullmatch(r"\+?\d{7,}", text):
        return text
    digits = text.removeprefix("+")
    code = ""
    if text.startswith("+"):
        size = 1 if digits[0] in "17" else 2 if int(digits[:2]) in _TWO_DIGIT_CODES else 3
        code, digits = "+" + digits[:size], digits[size:]
    groups = [digits[-4:]]
    digits = digits[:-4]
    while len(digits) > 4:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    return " ".join(part for part in (code, digits, *groups) if part)


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
    label=words.name,
    phone=phone,
    sentence=sentence,
)
TEMPLATES.env.tests.update(zero=is_zero, negative=is_negative)
# The shared macros as a global rather than imported by each template: a block rendered on
# its own (an htmx fragment) does not run the template's top-level imports.
TEMPLATES.env.globals["words"] = words  # before the macros, which use it
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


def security_headers(script_from: str | None = None) -> dict[str, str]:
    """:data:`SECURITY_HEADERS`, letting the page load the script at ``script_from`` and let
    it talk to and frame its own origin (where Stripe.js and Accept.js send the card, so the
    number goes from the browser to the processor)."""
    if not script_from:
        return SECURITY_HEADERS
    parts = urlsplit(script_from)
    origin = f"{parts.scheme}://{parts.netloc}"
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return SECURITY_HEADERS
    policy = (
        SECURITY_HEADERS["Content-Security-Policy"]
        .replace("script-src 'self'", f"script-src 'self' {origin}")
        .replace(
            "default-src 'self';",
            f"default-src 'self'; connect-src 'self' {origin}; frame-src {origin};",
        )
    )
    return {**SECURITY_HEADERS, "Content-Security-Policy": policy}


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    fragment: str | None = None,
    status_code: int = 200,
    script_from: str | None = None,
) -> Response:
    """The page, or only its block ``fragment`` when htmx asks for a part of the page.

    A history restore, a boosted request and a plain browser request get the whole page.
    ``script_from`` is a payment processor's script the page loads (Stripe.js, Accept.js):
    its origin alone is added to the Content-Security-Policy (:func:`security_headers`).
    """
    block = fragment if fragment is not None and htmx.wants_fragment(request) else None
    # The template is rendered here, inside TemplateResponse, so the filters see this locale.
    reading = _locale.set(reader_locale(request.headers.get("accept-language")))
    try:
        response = TEMPLATES.TemplateResponse(
            request,
            template,
            {**_layout(request), **context},
            status_code=status_code,
            headers=security_headers(script_from),
            block_name=block,
        )
    finally:
        _locale.reset(reading)
    response.headers["Vary"] = "Accept-Language"
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
