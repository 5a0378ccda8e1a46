"""A fake Bitcoin chain for the tests, the benchmark and the demo, served over the two real
HTTP APIs kassa's watchers speak: Esplora's REST (:func:`esplora_app`) and Bitcoin Core's
JSON-RPC (:func:`bitcoind_app`), as :mod:`processors.simulator` is the card processor's.

A test builds transactions (:meth:`FakeChain.pay`), mines them (:meth:`FakeChain.mine`),
replaces one before it is mined (:meth:`FakeChain.replace`), reorganises a mined one away
(:meth:`FakeChain.reorganise`) or takes the servers down (``chain.down = True``: every
request answers 503; stopping the server gives connection refused).  Nothing here
reaches the network: the apps are served on loopback by whoever runs them.

The Esplora app also takes two control requests, for ``kassa bitcoin fake-pay`` in the
demo: ``POST /_fake/pay`` (``{"address": …, "amount": "0.001"}``) and ``POST /_fake/mine``
(``{"blocks": n}``).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

SATOSHI_PER_BTC = 10**8
#: The first tip height: any number; a fresh regtest chain starts at 0, testnet far higher.
START_HEIGHT = 100
#: Esplora's page of confirmed transactions.
CHAIN_PAGE = 25


@dataclass
class FakeTx:
    txid: str
    #: (address, satoshi) per output, in order (``vout`` is the index).
    outputs: list[tuple[str, int]]
    #: None while in the mempool.
    block_height: int | None = None


@dataclass
class FakeChain:
    """The chain and mempool both fakes serve; ``gone`` are transactions replaced or
    reorganised away (Core's wallet still lists them, with negative confirmations)."""

    height: int = START_HEIGHT
    txs: dict[str, FakeTx] = field(default_factory=dict)
    gone: dict[str, FakeTx] = field(default_factory=dict)
    down: bool = False
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    #: address → txids paying it (also those since gone), so a lookup is not a full scan.
    _by_address: dict[str, list[str]] = field(default_factory=dict)

    def _txid(self) -> str:
        return hashlib.sha256(f"kassa-fake-{id(self)}-{next(self._counter)}".encode()).hexdigest()

    def pay(self, address: str, satoshis: int, *, also: Sequence[tuple[str, int]] = ()) -> str:
        """A new mempool transaction paying ``satoshis`` to ``address`` (output 0), and
        ``also`` in further outputs; its txid."""
        tx = FakeTx(self._txid(), [(address, satoshis), *also])
        self.txs[tx.txid] = tx
        for paid in {a for a, _ in tx.outputs}:
            self._by_address.setdefault(paid, []).append(tx.txid)
        return tx.txid

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` blocks; the first takes every mempool transaction."""
        for _ in range(blocks):
            self.height += 1
            for tx in self.txs.values():
                if tx.block_height is None:
                    tx.block_height = self.height

    def replace(self, txid: str) -> None:
        """The unconfirmed ``txid`` is replaced (RBF) or double-spent: it disappears."""
        tx = self.txs[txid]
        assert tx.block_height is None, "only an unconfirmed transaction can be replaced"
        self.gone[txid] = self.txs.pop(txid)

    def reorganise(self, txid: str) -> None:
        """A reorganisation takes the mined ``txid`` off the chain, and its inputs were spent
        elsewhere on the new branch: it is gone for good."""
        assert self.txs[txid].block_height is not None
        self.gone[txid] = self.txs.pop(txid)

    def confirmations(self, tx: FakeTx) -> int:
        return 0 if tx.block_height is None else self.height - tx.block_height + 1

    def paying(self, address: str) -> list[FakeTx]:
        """Transactions paying ``address``, newest first (mempool ones before mined ones)."""
        txs = [self.txs[t] for t in self._by_address.get(address, ()) if t in self.txs]
        return sorted(txs, key=lambda t: (t.block_height is not None, -(t.block_height or 0)))


#: The chain ``KASSA_BITCOIN_WATCHER=fake`` watches, in the serving process (the demo).
DEMO_CHAIN = FakeChain()
#: Where ``kassa serve`` serves :data:`DEMO_CHAIN`'s Esplora app (development, fake watcher):
#: ``kassa bitcoin fake-pay`` and ``fake-mine`` post to its control requests there.
DEMO_CHAIN_PATH = "/_fake/esplora"


def rebuild(chain: FakeChain, outputs: Sequence[tuple[str, int, str, int, int]]) -> None:
    """Put back on ``chain`` the transactions of outputs recorded earlier — (txid, vout,
    address, satoshi, confirmations) — so a fresh process's fake chain still shows the
    payments kassa knows of (the demo's, and those fed before a restart) rather than
    having them dropped or reversed as gone.  Only the outputs recorded are rebuilt."""
    by_txid: dict[str, dict[int, tuple[str, int]]] = {}
    depth: dict[str, int] = {}
    for txid, vout, address, satoshis, confirmations in outputs:
        by_txid.setdefault(txid, {})[vout] = (address, satoshis)
        depth[txid] = max(depth.get(txid, 0), confirmations)
    chain.height = max([chain.height, *depth.values()])
    for txid, outs in by_txid.items():
        if txid in chain.txs:
            continue
        listed = [outs.get(vout, ("", 0)) for vout in range(max(outs) + 1)]
        mined = chain.height - depth[txid] + 1 if depth[txid] > 0 else None
        chain.txs[txid] = FakeTx(txid, listed, mined)
        for address in {a for a, _ in listed if a}:
            chain._by_address.setdefault(address, []).append(txid)


# --- Esplora ---------------------------------------------------------------------------------


def _esplora_tx(chain: FakeChain, tx: FakeTx) -> dict[str, Any]:
    status: dict[str, Any] = {"confirmed": tx.block_height is not None}
    if tx.block_height is not None:
        status |= {"block_height": tx.block_height, "block_hash": f"{tx.block_height:064x}"}
    return {
        "txid": tx.txid,
        "version": 2,
        "locktime": 0,
        "vin": [],
        "vout": [
            {"scriptpubkey_address": address, "scriptpubkey_type": "v0_p2wpkh", "value": value}
            for address, value in tx.outputs
        ],
        "status": status,
    }


def esplora_app(chain: FakeChain) -> Starlette:
    """Esplora's REST API over ``chain`` (mount or serve it at the watcher's base URL)."""

    def unavailable() -> Response | None:
        return PlainTextResponse("Service Unavailable", 503) if chain.down else None

    async def tip(request: Request) -> Response:
        return unavailable() or PlainTextResponse(str(chain.height))

    async def address_txs(request: Request) -> Response:
        if (down := unavailable()) is not None:
            return down
        txs = chain.paying(request.path_params["address"])
        mempool = [t for t in txs if t.block_height is None][:50]
        mined = [t for t in txs if t.block_height is not None][:CHAIN_PAGE]
        return JSONResponse([_esplora_tx(chain, t) for t in mempool + mined])

    async def address_chain(request: Request) -> Response:
        if (down := unavailable()) is not None:
            return down
        mined = [t for t in chain.paying(request.path_params["address"]) if t.block_height]
        ids = [t.txid for t in mined]
        last = request.path_params["last"]
        start = ids.index(last) + 1 if last in ids else len(ids)
        return JSONResponse([_esplora_tx(chain, t) for t in mined[start : start + CHAIN_PAGE]])

    async def tx_status(request: Request) -> Response:
        if (down := unavailable()) is not None:
            return down
        tx = chain.txs.get(request.path_params["txid"])
        if tx is None:
            return PlainTextResponse("Transaction not found", 404)
        return JSONResponse(_esplora_tx(chain, tx)["status"])

    async def fake_pay(request: Request) -> Response:
        body = await request.json()
        try:
            satoshis = Decimal(str(body["amount"])) * SATOSHI_PER_BTC
        except (KeyError, InvalidOperation):
            return PlainTextResponse("give an address and an amount in BTC", 400)
        if satoshis != satoshis.to_integral_value() or satoshis <= 0:
            return PlainTextResponse("an amount is whole satoshi, above zero", 400)
        return JSONResponse({"txid": chain.pay(str(body.get("address")), int(satoshis))})

    async def fake_mine(request: Request) -> Response:
        body = await request.json()
        chain.mine(int(body.get("blocks", 1)))
        return JSONResponse({"height": chain.height})

    return Starlette(
        routes=[
            Route("/blocks/tip/height", tip),
            Route("/address/{address}/txs", address_txs),
            Route("/address/{address}/txs/chain/{last}", address_chain),
            Route("/tx/{txid}/status", tx_status),
            Route("/_fake/pay", fake_pay, methods=["POST"]),
            Route("/_fake/mine", fake_mine, methods=["POST"]),
        ]
    )


# --- Bitcoin Core ----------------------------------------------------------------------------

_ADDR_DESCRIPTOR = re.compile(r"addr\(([^)]+)\)#([0-9a-z]{8})")
#: Amounts are written as JSON numbers with 8 decimals, as Core writes them, not floats.
_AMOUNT = re.compile(r'"@amount:(-?[0-9]+\.[0-9]{8})"')


def _checksum(descriptor: str) -> str:
    """Stands in for Core's descriptor checksum: eight characters that only a
    ``getdescriptorinfo`` answer carries, so an import without one is refused as Core would."""
    return hashlib.sha256(descriptor.encode()).hexdigest()[:8]


def _btc(satoshis: int) -> str:
    whole, frac = divmod(satoshis, SATOSHI_PER_BTC)
    return f"@amount:{whole}.{frac:08d}"


class _RpcFailure(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code, self.message = code, message


def bitcoind_app(chain: FakeChain, user: str = "kassa", password: str = "kassa") -> Starlette:
    """Bitcoin Core's JSON-RPC for one watch-only wallet over ``chain``, at ``/`` and
    ``/wallet/<name>``, behind HTTP basic authentication as Core's is."""
    imported: set[str] = set()
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def receives(tx: FakeTx, confirmations: int) -> list[dict[str, Any]]:
        return [
            {
                "involvesWatchonly": True,
                "address": address,
                "category": "receive",
                "amount": _btc(value),
                "label": "kassa",
                "vout": vout,
                "confirmations": confirmations,
                "txid": tx.txid,
            }
            for vout, (address, value) in enumerate(tx.outputs)
            if address in imported
        ]

    def run(method: str, params: list[Any]) -> Any:
        if method == "getblockcount":
            return chain.height
        if method == "getdescriptorinfo":
            descriptor = str(params[0])
            return {"descriptor": f"{descriptor}#{_checksum(descriptor)}", "isrange": False}
        if method == "importdescriptors":
            results = []
            for request in params[0]:
                match = _ADDR_DESCRIPTOR.fullmatch(str(request.get("desc")))
                good = bool(match) and match[2] == _checksum(f"addr({match[1]})")  # type: ignore[index]
                if good:
                    imported.add(match[1])  # type: ignore[index]
                results.append({"success": good})
            return results
        if method == "listsinceblock":
            entries = [
                e for tx in chain.txs.values() for e in receives(tx, chain.confirmations(tx))
            ]
            entries += [e for tx in chain.gone.values() for e in receives(tx, -1)]
            return {"transactions": entries, "removed": [], "lastblock": f"{chain.height:064x}"}
        if method == "gettransaction":
            txid = str(params[0])
            if txid in chain.txs:
                return {"txid": txid, "confirmations": chain.confirmations(chain.txs[txid])}
            if txid in chain.gone:
                return {"txid": txid, "confirmations": -1}
            raise _RpcFailure(-5, "Invalid or non-wallet transaction id")
        raise _RpcFailure(-32601, "Method not found")

    def answer(request: dict[str, Any]) -> dict[str, Any]:
        try:
            result = run(str(request.get("method")), list(request.get("params") or []))
        except _RpcFailure as failure:
            error = {"code": failure.code, "message": failure.message}
            return {"result": None, "error": error, "id": request.get("id")}
        return {"result": result, "error": None, "id": request.get("id")}

    async def rpc(request: Request) -> Response:
        if chain.down:
            return PlainTextResponse("Service Unavailable", 503)
        if request.headers.get("authorization") != expected:
            return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'})
        body = json.loads(await request.body())
        reply = [answer(r) for r in body] if isinstance(body, list) else answer(body)
        text = _AMOUNT.sub(r"\1", json.dumps(reply))
        status = 500 if isinstance(reply, dict) and reply["error"] else 200
        return Response(text, status, media_type="application/json")

    return Starlette(
        routes=[
            Route("/", rpc, methods=["POST"]),
            Route("/wallet/{name}", rpc, methods=["POST"]),
        ]
    )
