"""A chain watcher over Bitcoin Core's JSON-RPC: a watch-only descriptor wallet
(:class:`billing.bitcoin.ChainWatcher` with httpx).

Core only reports transactions of addresses its wallet knows, so each address is first
imported as an ``addr(…)`` descriptor (``getdescriptorinfo`` adds the checksum Core
requires, ``importdescriptors`` imports it with the time it was handed out, from which Core
rescans).  Then one ``listsinceblock`` (with watch-only and removed transactions) lists
every receive of the wallet with its confirmations; ``gettransaction`` answers for one
transaction.  Core keeps a replaced or double-spent transaction with *negative*
confirmations: it counts as gone.

The wallet is named in the URL (``http://127.0.0.1:8332/wallet/kassa``), with the RPC user
and password given apart.  Amounts arrive as JSON numbers in BTC; they are read as
``Decimal`` (never a float) and must be whole satoshi.  Anything but a clean answer raises
:class:`~billing.bitcoin.WatcherUnavailable`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import httpx

from billing.bitcoin import SeenOutput, WatchedAddress, WatcherUnavailable

TIMEOUT_SECONDS = 30.0
#: Descriptors imported per ``importdescriptors`` call.
IMPORT_BATCH = 1000
#: Core's code for "Invalid or non-wallet transaction id".
RPC_INVALID_ADDRESS_OR_KEY = -5
SATOSHI_PER_BTC = Decimal(10**8)


class RpcError(Exception):
    """Core answered with an error object: ``code`` and ``message`` are its own."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class BitcoinCoreWatcher:
    """Watches addresses through the Core wallet at ``url``."""

    def __init__(
        self,
        url: str,
        user: str | None = None,
        password: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self._auth = (user, password or "") if user else None
        self._transport = transport
        self._ids = itertools.count(1)
        #: Addresses this process has imported (importing again is harmless, only slower).
        self._imported: set[str] = set()

    async def _post(self, body: Any) -> Any:
        async with httpx.AsyncClient(
            timeout=TIMEOUT_SECONDS, transport=self._transport, auth=self._auth
        ) as client:
            try:
                response = await client.post(self.url, content=json.dumps(body))
            except httpx.HTTPError as error:
                raise WatcherUnavailable(
                    f"bitcoind did not answer: {type(error).__name__}"
                ) from None
        try:
            # Amounts are JSON numbers: read them as Decimal, never as floats.
            return json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise WatcherUnavailable(f"bitcoind answered {response.status_code}") from None

    @staticmethod
    def _result(answer: Any) -> Any:
        if not isinstance(answer, dict):
            raise WatcherUnavailable("bitcoind's answer is not a JSON-RPC reply")
        error = answer.get("error")
        if error:
            raise RpcError(int(error.get("code", 0)), str(error.get("message", "")))
        return answer.get("result")

    async def call(self, method: str, *params: Any) -> Any:
        """One RPC; an error object raises :class:`RpcError`."""
        body = {"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": params}
        return self._result(await self._post(body))

    async def _batch(self, method: str, params: list[list[Any]]) -> list[Any]:
        """Many calls of ``method`` in one JSON-RPC batch, results in order."""
        body = [
            {"jsonrpc": "1.0", "id": i, "method": method, "params": p} for i, p in enumerate(params)
        ]
        answers = await self._post(body)
        if not isinstance(answers, list) or len(answers) != len(params):
            raise WatcherUnavailable("bitcoind's batch answer does not match the batch")
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        return [self._result(by_id.get(i)) for i in range(len(params))]

    async def _import(self, addresses: Sequence[WatchedAddress]) -> None:
        new = [a for a in addresses if a.address not in self._imported]
        for start in range(0, len(new), IMPORT_BATCH):
            chunk = new[start : start + IMPORT_BATCH]
            try:
                infos = await self._batch(
                    "getdescriptorinfo", [[f"addr({a.address})"] for a in chunk]
                )
                requests = [
                    {
                        "desc": info["descriptor"],
                        "timestamp": int(a.since.timestamp()),
                        "label": "kassa",
                    }
                    for a, info in zip(chunk, infos, strict=True)
                ]
                results = await self.call("importdescriptors", requests)
            except (RpcError, KeyError, TypeError) as error:
                raise WatcherUnavailable(f"bitcoind refused the import: {error}") from None
            if not isinstance(results, list) or not all(r.get("success") for r in results):
                raise WatcherUnavailable("bitcoind did not import every address")
            self._imported.update(a.address for a in chunk)

    async def outputs(self, addresses: Sequence[WatchedAddress]) -> list[SeenOutput]:
        await self._import(addresses)
        wanted = {a.address for a in addresses}
        try:
            listed = await self.call("listsinceblock", "", 1, True, True)
        except RpcError as error:
            raise WatcherUnavailable(f"bitcoind refused listsinceblock: {error}") from None
        seen: dict[tuple[str, int], SeenOutput] = {}
        for entry in listed.get("transactions") or []:
            if entry.get("category") != "receive" or entry.get("address") not in wanted:
                continue
            confirmations = int(entry.get("confirmations", -1))
            if confirmations < 0:  # conflicted: replaced or double-spent
                continue
            output = SeenOutput(
                str(entry["txid"]),
                int(entry["vout"]),
                str(entry["address"]),
                _satoshis(entry.get("amount")),
                confirmations,
            )
            seen[(output.txid, output.vout)] = output
        return list(seen.values())

    async def confirmations(self, txid: str) -> int | None:
        try:
            tx = await self.call("gettransaction", txid, True)
        except RpcError as error:
            if error.code == RPC_INVALID_ADDRESS_OR_KEY:
                return None
            raise WatcherUnavailable(f"bitcoind refused gettransaction: {error}") from None
        confirmations = int(tx.get("confirmations", -1))
        return None if confirmations < 0 else confirmations


def _satoshis(amount: Any) -> int:
    if not isinstance(amount, Decimal | int) or isinstance(amount, bool):
        raise WatcherUnavailable("bitcoind sent an amount that is not a number")
    satoshis = Decimal(amount) * SATOSHI_PER_BTC
    if satoshis != satoshis.to_integral_value() or satoshis <= 0:
        raise WatcherUnavailable("bitcoind sent an amount that is not whole satoshi")
    return int(satoshis)
