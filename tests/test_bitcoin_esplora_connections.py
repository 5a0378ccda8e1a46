"""The Esplora watcher's own keep-alive connections (wallets/esplora.py): a server that
closes connections between requests (its keep-alive limit) loses no address, and a server
that fails mid-poll makes the whole poll unavailable rather than partial."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billing.bitcoin import WatchedAddress, WatcherUnavailable
from tests.bitcoin_chain import serving
from wallets.esplora import EsploraWatcher
from wallets.fake_chain import FakeChain, esplora_app

ADDRESSES = [f"tb1qconn{index:04d}" for index in range(60)]


def _closing_every(app: ASGIApp, every: int) -> ASGIApp:
    """``app``, answering every ``every``-th request with ``Connection: close``."""
    count = 0

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal count
        count += 1
        close = count % every == 0

        async def sending(message: Message) -> None:
            if close and message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"connection", b"close")]}
            await send(message)

        await app(scope, receive, sending)

    return wrapped


def _chain() -> FakeChain:
    chain = FakeChain()
    for index, address in enumerate(ADDRESSES[::3]):
        chain.pay(address, 10_000 + index)
    chain.mine()
    return chain


async def test_connections_closed_by_the_server_are_opened_again() -> None:
    watched = [WatchedAddress(a, datetime.now(UTC)) for a in ADDRESSES]
    with serving(_closing_every(esplora_app(_chain()), 3)) as server:
        outputs = await EsploraWatcher(server.url, concurrency=4).outputs(watched)
    assert sorted(o.satoshis for o in outputs) == [10_000 + i for i in range(20)]
    assert all(o.confirmations == 1 for o in outputs)


async def test_a_server_failing_mid_poll_makes_the_poll_unavailable() -> None:
    failing_after = 25
    count = 0
    inner = esplora_app(_chain())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal count
        count += 1
        if scope["type"] == "http" and count > failing_after:
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"down"})
            return
        await inner(scope, receive, send)

    watched = [WatchedAddress(a, datetime.now(UTC)) for a in ADDRESSES]
    with serving(app) as server, pytest.raises(WatcherUnavailable, match="503"):
        await EsploraWatcher(server.url, concurrency=4).outputs(watched)
