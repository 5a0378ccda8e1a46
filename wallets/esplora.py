"""A chain watcher over Esplora's REST API (what mempool.space and Blockstream's explorer
serve, and anyone can host): :class:`billing.bitcoin.ChainWatcher` with httpx.

Three calls, read as the API documents them:

* ``GET /blocks/tip/height`` — the height of the tip, as plain text, to count confirmations
  (``tip − block_height + 1``);
* ``GET /address/:address/txs`` — the address's mempool transactions and its newest 25
  confirmed ones, then ``/address/:address/txs/chain/:last_seen_txid`` for each older page
  of 25, so an address with a long history is read whole;
* ``GET /tx/:txid/status`` — whether a transaction is still known (404 once it is gone).

Addresses are read concurrently (:data:`CONCURRENCY` at once) over one connection pool.
Anything but a clean answer — refused, timed out, a 5xx, JSON of another shape — raises
:class:`~billing.bitcoin.WatcherUnavailable`: a partial answer would look like payments
that disappeared.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

import httpx

from billing.bitcoin import SeenOutput, WatchedAddress, WatcherUnavailable

#: Requests in flight at once: enough to poll 10,000 addresses in seconds, few enough for a
#: self-hosted server (public ones rate-limit far below this; host your own).
CONCURRENCY = 48
TIMEOUT_SECONDS = 10.0
#: Esplora's page of confirmed transactions.
CHAIN_PAGE = 25
_TXID = re.compile(r"[0-9a-f]{64}")


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

    async def _get(self, client: httpx.AsyncClient, path: str) -> httpx.Response:
        try:
            response = await client.get(path)
        except httpx.HTTPError as error:
            raise WatcherUnavailable(f"Esplora did not answer: {type(error).__name__}") from None
        if response.status_code != 200 and response.status_code != 404:
            raise WatcherUnavailable(f"Esplora answered {response.status_code} to {path}")
        return response

    async def _tip(self, client: httpx.AsyncClient) -> int:
        response = await self._get(client, "/blocks/tip/height")
        text = response.text.strip()
        if response.status_code != 200 or not text.isdigit():
            raise WatcherUnavailable("Esplora gave no tip height")
        return int(text)

    async def _json(self, client: httpx.AsyncClient, path: str) -> Any:
        response = await self._get(client, path)
        if response.status_code != 200:
            raise WatcherUnavailable(f"Esplora answered {response.status_code} to {path}")
        try:
            return response.json()
        except ValueError:
            raise WatcherUnavailable(f"Esplora's answer to {path} is not JSON") from None

    async def _history(self, client: httpx.AsyncClient, address: str) -> list[dict[str, Any]]:
        """Every transaction of ``address``: the first answer, then older confirmed pages."""
        txs: list[dict[str, Any]] = list(await self._json(client, f"/address/{address}/txs"))
        confirmed = [tx for tx in txs if _status(tx).get("confirmed")]
        while len(confirmed) >= CHAIN_PAGE:
            last = _txid(confirmed[-1])
            page = list(await self._json(client, f"/address/{address}/txs/chain/{last}"))
            txs += page
            confirmed = page
        return txs

    async def outputs(self, addresses: Sequence[WatchedAddress]) -> list[SeenOutput]:
        semaphore = asyncio.Semaphore(self.concurrency)
        async with self._client() as client:
            tip = await self._tip(client)

            async def one(address: str) -> list[SeenOutput]:
                async with semaphore:
                    return _paying(await self._history(client, address), address, tip)

            found = await asyncio.gather(*(one(a.address) for a in addresses))
        unique = {(o.txid, o.vout): o for outputs in found for o in outputs}
        return list(unique.values())

    async def confirmations(self, txid: str) -> int | None:
        if not _TXID.fullmatch(txid):
            raise ValueError("not a transaction id")
        async with self._client() as client:
            response = await self._get(client, f"/tx/{txid}/status")
            if response.status_code == 404:
                return None
            try:
                status = response.json()
            except ValueError:
                raise WatcherUnavailable("Esplora's transaction status is not JSON") from None
            return _confirmations(status, await self._tip(client))


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
