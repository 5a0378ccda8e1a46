"""Both ends of a redirect system for its tests: the customer's browser on the system's page
(:func:`press`: open the page, press a button, read where the system sends the customer back —
without following it, since kassa's return address is not served here; :func:`round_trip`:
the same from the portal's page and back to the portal's return page) and kassa's callback
address (:class:`Inbox`, which keeps what the system posts to it)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import unescape
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing.payment_systems import IncomingRequest
from tests.portal_support import Browser

_FORM_ACTION = re.compile(r'<form[^>]*\baction="([^"]*)"', re.IGNORECASE)
_REDIRECT_FORM = re.compile(r'<form[^>]*\baction="([^"]*)"[^>]*id="redirect-form"')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', re.IGNORECASE)
_BUTTON = re.compile(r'<button[^>]*\bname="([^"]*)"[^>]*\bvalue="([^"]*)"', re.IGNORECASE)


async def press(
    url: str, button: str, form_fields: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Open ``url`` and press the page's button whose value is ``button``; return the query
    of the address the system redirects the customer to — or, for a system that POSTs the
    browser back (Payarena), the fields of the form that does it."""
    return (await _press(url, button, form_fields))[1]


async def round_trip(
    browser: Browser, sent: httpx.Response, payment_id: int, button: str
) -> httpx.Response:
    """The rest of a payment after the portal's page that sends the browser on (``sent``):
    follow its link (or submit Remita's form) to the system's page, press ``button`` there,
    and come back to the portal's return page as the system sends the browser — a redirect,
    or Payarena's post-back (a POST with no CSRF token, which the return address turns into
    its GET); the outcome page."""
    link = re.search(r'href="([^"]+)" id="redirect-link"', sent.text)
    if link is not None:
        posted, fields = await _press(unescape(link.group(1)), button)
    else:
        form = _REDIRECT_FORM.search(sent.text)
        assert form is not None, "the page sends the browser nowhere"
        inside = sent.text[form.end() : sent.text.index("</form>", form.end())]
        given = {unescape(k): unescape(v) for k, v in _HIDDEN.findall(inside)}
        posted, fields = await _press(unescape(form.group(1)), button, given)
    address = f"/portal/pay/return/{payment_id}"
    if posted:
        back = await browser.http.post(address, data=fields)
        assert back.status_code == 303, f"the return address answered {back.status_code}"
        return await browser.open(back.headers["location"])
    return await browser.open(f"{address}?{urlencode(fields)}")


async def _press(
    url: str, button: str, form_fields: Mapping[str, str] | None = None
) -> tuple[bool, dict[str, str]]:
    """:func:`press`, and whether the system POSTs the browser back."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=5.0) as browser:
        if form_fields is None:
            page = await browser.get(url)
        else:
            page = await browser.post(url, data=dict(form_fields))
        while page.is_redirect:  # the system's own hops, before its page
            page = await browser.get(urljoin(str(page.url), page.headers["location"]))
        page.raise_for_status()
        action = _FORM_ACTION.search(page.text)
        assert action is not None, "the system's page has no form"
        buttons = {value: name for name, value in _BUTTON.findall(page.text)}
        assert button in buttons, f"the system's page has no {button!r} button: {buttons}"
        answer = await browser.post(
            urljoin(str(page.url), unescape(action.group(1))), data={buttons[button]: button}
        )
        if answer.is_redirect:
            return False, dict(parse_qsl(urlsplit(answer.headers["location"]).query))
        assert answer.status_code == 200, f"the system answered {answer.status_code}"
        fields = _HIDDEN.findall(answer.text)
        assert fields, "the system neither redirected nor posted the browser back"
        return True, {unescape(name): unescape(value) for name, value in fields}


class Inbox:
    """A callback address: every request posted to ``app`` is kept as kassa receives it."""

    def __init__(self) -> None:
        self.received: list[IncomingRequest] = []
        self.app = Starlette(routes=[Route("/callbacks/{account}", self._keep, methods=["POST"])])

    async def _keep(self, request: Request) -> Response:
        self.received.append(
            IncomingRequest(
                request.method,
                request.url.path,
                {name.lower(): value for name, value in request.headers.items()},
                await request.body(),
                dict(request.query_params),
            )
        )
        return Response(status_code=200)
