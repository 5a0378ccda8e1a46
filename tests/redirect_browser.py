"""Both ends of a redirect system for its tests: the customer's browser on the system's page
(:func:`press`: open the page, press a button, read where the system sends the customer back —
without following it, since kassa's return address is not served here) and kassa's callback
address (:class:`Inbox`, which keeps what the system posts to it)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import unescape
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing.payment_systems import IncomingRequest

_FORM_ACTION = re.compile(r'<form[^>]*\baction="([^"]*)"', re.IGNORECASE)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', re.IGNORECASE)
_BUTTON = re.compile(r'<button[^>]*\bname="([^"]*)"[^>]*\bvalue="([^"]*)"', re.IGNORECASE)


async def press(
    url: str, button: str, form_fields: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Open ``url`` and press the page's button whose value is ``button``; return the query
    of the address the system redirects the customer to — or, for a system that POSTs the
    browser back (Payarena), the fields of the form that does it."""
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
            return dict(parse_qsl(urlsplit(answer.headers["location"]).query))
        assert answer.status_code == 200, f"the system answered {answer.status_code}"
        fields = _HIDDEN.findall(answer.text)
        assert fields, "the system neither redirected nor posted the browser back"
        return {unescape(name): unescape(value) for name, value in fields}


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
