"""Helpers for the portal tests; the fixtures are in :mod:`tests.portal_fixtures`.

:class:`Browser` acts like a person's browser over httpx: it keeps cookies, reads the forms
on the page it is on (their hidden CSRF token and form key included) and submits them, with
or without htmx's headers.  Test data is made through the real billing services
(:mod:`tests.factories`, which also makes the people who sign in).
:class:`Mailbox` is what an aiosmtpd server in the tests has received.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from html.parser import HTMLParser

import httpx
from aiosmtpd.smtp import SMTP, Envelope, Session

from billing import mailer
from tests.factories import CUSTOMER_EMAIL, PASSWORD
from tests.graphql_support import Api, signed_in_api

# --- reading pages ------------------------------------------------------------------------


class _PageParser(HTMLParser):
    """Collects every form's action and fields, and the text of every element with an id."""

    VOID = frozenset({"input", "br", "img", "meta", "link", "hr", "source", "wbr", "col", "area"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, list[str]] = {}
        self._open_ids: list[str | None] = []
        self._form: dict[str, str] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag not in self.VOID:
            self._open_ids.append(attributes.get("id"))
            if attributes.get("id"):
                self.texts.setdefault(attributes["id"], [])
        if tag == "form":
            self._form = {}
            self.forms.append((attributes.get("action", ""), self._form))
        elif tag == "input" and self._form is not None and "name" in attributes:
            kind = attributes.get("type", "text")
            if kind != "checkbox" or "checked" in attributes:
                self._form[attributes["name"]] = attributes.get("value", "on")
        elif tag == "select" and self._form is not None:
            self._select = attributes.get("name")
        elif (
            tag == "option"
            and self._form is not None
            and self._select is not None
            and ("selected" in attributes or self._select not in self._form)
        ):
            self._form[self._select] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        if tag not in self.VOID and self._open_ids:
            self._open_ids.pop()

    def handle_data(self, data: str) -> None:
        for element_id in self._open_ids:
            if element_id is not None:
                self.texts[element_id].append(data)


def parse(html: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(html)
    return parser


def text_of(html: str, element_id: str) -> str:
    """The text inside the element with ``element_id``, whitespace collapsed."""
    texts = parse(html).texts
    assert element_id in texts, f"no element #{element_id} on the page"
    return " ".join("".join(texts[element_id]).split())


def form_fields(html: str, action: str) -> dict[str, str]:
    """The fields (hidden ones included) of the form posting to ``action``."""
    for form_action, fields in parse(html).forms:
        if form_action == action:
            return dict(fields)
    raise AssertionError(f"no form posting to {action} on the page")


def csrf_token(html: str) -> str:
    """The token htmx sends: from ``hx-headers`` on ``<body>``."""
    marker = '"X-CSRF-Token": "'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


# --- the browser --------------------------------------------------------------------------

HTMX = {"HX-Request": "true"}


@dataclass
class Browser:
    """A browser session: cookies, the page it is on, and forms submitted from that page."""

    http: httpx.AsyncClient
    page: httpx.Response | None = None

    async def open(self, path: str, **headers: str) -> httpx.Response:
        """Follow redirects like a browser, and remember the page."""
        response = await self.http.get(path, headers=headers, follow_redirects=True)
        self.page = response
        return response

    async def submit(
        self,
        action: str,
        fields: dict[str, str] | None = None,
        *,
        htmx: bool = False,
        follow: bool = True,
    ) -> httpx.Response:
        """Fill in and send the form that posts to ``action`` on the current page.

        With ``htmx`` it goes as htmx sends it: the token in a header, ``HX-Request`` set,
        ``HX-Current-URL`` the page's address, and no redirect followed.
        """
        assert self.page is not None, "open a page first"
        data = {**form_fields(self.page.text, action), **(fields or {})}
        headers = {"referer": str(self.page.url)}
        if htmx:
            headers.update(
                HTMX,
                **{
                    "HX-Current-URL": str(self.page.url),
                    "X-CSRF-Token": csrf_token(self.page.text),
                },
            )
            data.pop("csrf_token", None)
        response = await self.http.post(
            action, data=data, headers=headers, follow_redirects=follow and not htmx
        )
        if not htmx:
            self.page = response
        return response

    async def sign_in(
        self, email: str = CUSTOMER_EMAIL, password: str = PASSWORD
    ) -> httpx.Response:
        await self.open("/portal/sign-in")
        return await self.submit("/portal/sign-in", {"email": email, "password": password})


# --- the API beside the pages ------------------------------------------------------------


async def customer_api(browser: Browser, email: str = CUSTOMER_EMAIL) -> Api:
    """The GraphQL API as the customer (or whoever ``email`` is), to compare the pages with."""
    return await signed_in_api(browser.http, email)


# --- mail ---------------------------------------------------------------------------------


class Inbox:
    """Collects what the SMTP server receives (on its own thread)."""

    def __init__(self) -> None:
        self._messages: list[Message] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        with self._lock:
            self._messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)


@dataclass
class Mailbox:
    host: str
    port: int
    inbox: Inbox

    async def received(self) -> list[Message]:
        """Every mail so far, after the app has finished sending what it started."""
        await mailer.drain()
        return self.inbox.messages()
