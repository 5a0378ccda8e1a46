"""Reading the price of a bitcoin from an HTTP endpoint (:class:`billing.bitcoin.PriceSource`).

An administrator types the endpoint's URL, so fetching it must not become a way to make
kassa reach what only kassa can reach (server-side request forgery): outside development
the URL must be ``https://``, and every address its host name resolves to must be a public
one — no loopback, private, link-local (cloud metadata at 169.254.169.254), multicast or
reserved address.  Redirects are not followed (a public host could redirect inward), and
the answer is read up to :data:`MAX_BYTES`.  The check resolves the name once and the
request resolves it again, so a name whose answers change between the two (DNS rebinding)
is not fully excluded: run kassa where its outbound traffic is filtered too
(``docs/security.md``).

The price is the number at a dot-separated JSON path (``data.amount``, ``0.price``), a JSON
number or a decimal string, read as ``Decimal``: never a float.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import httpx

from billing.bitcoin import PriceUnavailable

TIMEOUT_SECONDS = 10.0
#: A price answer is a few hundred bytes; anything far larger is not one.
MAX_BYTES = 256 * 1024


def public_address(ip: str) -> bool:
    """Whether ``ip`` is an address of the public internet."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def check_target(url: str, allow_private: bool) -> None:
    """Refuse a URL kassa must not fetch (see the module docstring)."""
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise PriceUnavailable("a price endpoint must be an https:// address")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, parts.port or 443, type=socket.SOCK_STREAM
        )
    except OSError:
        raise PriceUnavailable(f"cannot resolve {parts.hostname}") from None
    if not infos or not all(public_address(str(info[4][0])) for info in infos):
        raise PriceUnavailable(
            f"{parts.hostname} resolves to an address that is not public: refused"
        )


def at_path(document: Any, json_path: str) -> Decimal:
    """The positive number at ``json_path`` in ``document``."""
    value = document
    for step in json_path.split("."):
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            raise PriceUnavailable(f"the answer has nothing at {json_path}")
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise PriceUnavailable(f"the value at {json_path} is not a number")
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise PriceUnavailable(f"the value at {json_path} is not a number") from None
    if not price.is_finite() or price <= 0:
        raise PriceUnavailable(f"the value at {json_path} is not a positive price")
    return price


class HttpPriceSource:
    """Fetches prices with httpx; ``allow_private`` (development) lets a local price server
    (or the demo's) be used."""

    def __init__(
        self, *, allow_private: bool = False, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.allow_private = allow_private
        self._transport = transport

    async def price(self, url: str, json_path: str) -> Decimal:
        await check_target(url, self.allow_private)
        async with httpx.AsyncClient(
            timeout=TIMEOUT_SECONDS, follow_redirects=False, transport=self._transport
        ) as client:
            try:
                async with client.stream("GET", url, headers={"Accept": "application/json"}) as r:
                    if r.status_code != 200:
                        raise PriceUnavailable(f"the endpoint answered {r.status_code}")
                    body = b""
                    async for chunk in r.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_BYTES:
                            raise PriceUnavailable("the answer is too large to be a price")
            except httpx.HTTPError as error:
                raise PriceUnavailable(
                    f"the endpoint did not answer ({type(error).__name__})"
                ) from None
        try:
            document = json.loads(body, parse_float=Decimal)
        except ValueError:
            raise PriceUnavailable("the answer is not JSON") from None
        return at_path(document, json_path)
