"""A chain watcher over Esplora's REST API (what mempool.space and Blockstream's explorer
serve, and anyone can host): :class:`billing.bitcoin.ChainWatcher` with httpx.

Three calls, read as the API documents them:

* ``GET /blocks/tip/height`` — the height of the tip, as plain text, to count confirmations
  (``tip − block_height + 1``);
* ``GET /address/:address/txs`` — the address's mempool transactions and its newest 25
  confirmed ones, then ``/address/:address/txs/chain/:last_seen_txid`` for each older page
  of 25, so an address with a long history is read whole;
* ``GET /tx/:txid/status`` — whether a transaction is still known (404 once it is gone).

Addresses are read by :data:`CONCURRENCY` workers, each over one keep-alive connection of
its own (httpcore's, beneath httpx: a shared httpx pool costs ~2.5 ms of client CPU per
request at this concurrency, its own connection per worker ~0.3 ms, which is what brings a
poll of 10,000 addresses under 10 s — ``docs/benchmarks.md``).  A connection the server
closed (idle, or after its keep-alive request limit) is opened again, and a request that
failed on a reused connection is sent once more: it is a GET.  When a transport is given
(the tests' and the demo's in-process fake chain) httpx is used with it instead.
Anything but a clean answer — refused, timed out, a 5xx, JSON of another shape — raises
:class:`~billing.bitcoin.WatcherUnavailable`: a partial answer would look like payments
that disappeared.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from typing import Any

import httpcore
import httpx

from billing.bitcoin import SeenOutput, WatchedAddress, WatcherUnavailable

#: Requests in flight at once: enough to poll 10,000 addresses in seconds, few enough for a
#: self-hosted server (public ones rate-limit far below this; host your own).  More does
#: not help on loopback: the client's CPU is the limit.
CONCURRENCY = 8
TIMEOUT_SECONDS = 10.0
#: Esplora's page of confirmed transactions.
CHAIN_PAGE = 25
_TXID = re.compile(r"[0-9a-f]{64}")
_TIMEOUTS = {"connect": TIMEOUT_SECONDS, "read": TIMEOUT_SECONDS, "write": TIMEOUT_SECONDS}
_HEADERS = [(b"Accept", b"application/json")]

#: GET ``path`` (below the base URL): the status and the body.
Fetch = Callable[[str], Awaitable[tuple[int, bytes]]]


class _Connection:
    """One keep-alive connection to the Esplora server, opened again when it was closed."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url
        self._origin = httpcore.URL(base_url).origin
        self._connection: httpcore.AsyncHTTPConnection | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        for attempt in (1, 2):
            connection = self._connection
            reused = connection is not None and not (
                connection.is_closed() or connection.has_expired()
            )
            if connection is None or not reused:
                if connection is not None:
                    await connection.aclose()
                connection = self._connection = httpcore.AsyncHTTPConnection(self._origin)
            try:
                response = await connection.request(
                    "GET", self._base + path, headers=_HEADERS, extensions={"timeout": _TIMEOUTS}
                )
            except httpcore.TimeoutException as error:
                await self.aclose()
                raise WatcherUnavailable(
                    f"Esplora did not answer: {type(error).__name__}"
                ) from None
            except (httpcore.NetworkError, httpcore.ProtocolError) as error:
                await self.aclose()
                if reused and attempt == 1:
                    continue  # closed by the server between two requests: once more, afresh
                raise WatcherUnavailable(
                    f"Esplora did not answer: {type(error).__name__}"
                ) from None
            return response.status, response.content
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._connection.aclose()
            self._connection = None


class EsploraWatcher:
    """Watches addresses through the Esplora server at ``base_url`` (``…/api``)."""

    def __init__(
        self,
        base_url: str,
        *,
        concurrency: int = CONCURRENCY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self._transport = transport

    def _client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency
        )
        return httpx.AsyncClient(
            base_url=self.base_url,
            timeout=TIMEOUT_SECONDS,
            limits=limits,
            transport=self._transport,
            follow_redirects=False,
        )

    @staticmethod
    def _httpx_fetch(client: httpx.AsyncClient) -> Fetch:
        async def fetch(path: str) -> tuple[int, bytes]:
            try:
                response = await client.get(path)
            except httpx.HTTPError as error:
                raise WatcherUnavailable(
                    f"Esplora did not answer: {type(error).__name__}"
                ) from None
            return response.status_code, response.content

        return fetch

    async def _history(self, fetch: Fetch, address: str) -> list[dict[str, Any]]:
        """Every transaction of ``address``: the first answer, then older confirmed pages."""
        txs: list[dict[str, Any]] = list(await _json(fetch, f"/address/{address}/txs"))
        confirmed = [tx for tx in txs if _status(tx).get("confirmed")]
        while len(confirmed) >= CHAIN_PAGE:
            last = _txid(confirmed[-1])
            page = list(await _json(fetch, f"/address/{address}/txs/chain/{last}"))
            txs += page
            confirmed = page
        return txs

    async def _read(
        self, fetch: Fetch, addresses: Iterator[str], tip: int, found: list[SeenOutput]
    ) -> None:
        """A worker: the next address not yet taken, until there is none."""
        for address in addresses:
            found += _paying(await self._history(fetch, address), address, tip)

    async def outputs(self, addresses: Sequence[WatchedAddress]) -> list[SeenOutput]:
        pending = iter([a.address for a in addresses])
        found: list[SeenOutput] = []
        if self._transport is not None:
            async with self._client() as client:
                fetch = self._httpx_fetch(client)
                tip = await _tip(fetch)
                await _all(self._read(fetch, pending, tip, found) for _ in range(self.concurrency))
        else:
            connections = [_Connection(self.base_url) for _ in range(self.concurrency)]
            try:
                tip = await _tip(connections[0].get)
                await _all(self._read(c.get, pending, tip, found) for c in connections)
            finally:
                for connection in connections:
                    await connection.aclose()
        unique = {(o.txid, o.vout): o for o in found}
        return list(unique.values())

    async def confirmations(self, txid: str) -> int | None:
        if not _TXID.fullmatch(txid):
            raise ValueError("not a transaction id")
        async with self._client() as client:
            fetch = self._httpx_fetch(client)
            code, body = await _checked(fetch, f"/tx/{txid}/status")
            if code == 404:
                return None
            try:
                status = json.loads(body)
            except ValueError:
                raise WatcherUnavailable("Esplora's transaction status is not JSON") from None
            return _confirmations(status, await _tip(fetch))


async def _all(workers: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run the workers; the first failure cancels the rest and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            for worker in workers:
                group.create_task(worker)
    except* WatcherUnavailable as failures:
        raise failures.exceptions[0] from None


async def _checked(fetch: Fetch, path: str) -> tuple[int, bytes]:
    code, body = await fetch(path)
    if code != 200 and code != 404:
        raise WatcherUnavailable(f"Esplora answered {code} to {path}")
    return code, body


async def _tip(fetch: Fetch) -> int:
    code, body = await _checked(fetch, "/blocks/tip/height")
    text = body.decode("ascii", "replace").strip()
    if code != 200 or not text.isdigit():
        raise WatcherUnavailable("Esplora gave no tip height")
    return int(text)


async def _json(fetch: Fetch, path: str) -> Any:
    code, body = await _checked(fetch, path)
    if code != 200:
        raise WatcherUnavailable(f"Esplora answered {code} to {path}")
    try:
        return json.loads(body)
    except ValueError:
        raise WatcherUnavailable(f"Esplora's answer to {path} is not JSON") from None


def _status(tx: dict[str, Any]) -> dict[str, Any]:
    status = tx.get("status")
    if not isinstance(status, dict):
        raise WatcherUnavailable("Esplora sent a transaction without a status")
    return status


def _txid(tx: dict[str, Any]) -> str:
    txid = tx.get("txid")
    if not isinstance(txid, str) or not _TXID.fullmatch(txid):
        raise WatcherUnavailable("Esplora sent a transaction without a valid txid")
    return txid


def _confirmations(status: dict[str, Any], tip: int) -> int:
    if not status.get("confirmed"):
        return 0
    height = status.get("block_height")
    if not isinstance(height, int) or isinstance(height, bool):
        raise WatcherUnavailable("Esplora sent a confirmed transaction without a height")
    return max(tip - height + 1, 1)


def _paying(txs: list[dict[str, Any]], address: str, tip: int) -> list[SeenOutput]:
    """The outputs of ``txs`` that pay ``address``."""
    seen = []
    for tx in txs:
        txid, confirmations = _txid(tx), _confirmations(_status(tx), tip)
        for vout, output in enumerate(tx.get("vout") or []):
            if output.get("scriptpubkey_address") != address:
                continue
            value = output.get("value")
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise WatcherUnavailable("Esplora sent an output without a satoshi value")
            seen.append(SeenOutput(txid, vout, address, value, confirmations))
    return seen
