"""One chain poll over many watched addresses: what the Bitcoin scan asks the watcher.

    .venv/bin/python -m bench.bitcoin_poll [--addresses 10000] [--paid 500] [--runs 3]
                                           [--concurrency 8]

Serves the fake chain's Esplora API (:mod:`wallets.fake_chain`) with uvicorn on a loopback
port, in a process of its own (as a real server is: in this one it would share the
interpreter lock with the client being measured), pays ``--paid`` of ``--addresses`` synthetic addresses (half of them mined), and times
:meth:`wallets.esplora.EsploraWatcher.outputs` over all the addresses: the tip height, then
one ``GET /address/:address/txs`` per address, by :data:`~wallets.esplora.CONCURRENCY`
workers each over a keep-alive connection of its own.  Prints the median of ``--runs`` polls.  The goal (issue 11)
is under 10 s for 10,000 addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import time
from datetime import UTC, datetime

import uvicorn

from billing.bitcoin import WatchedAddress
from wallets.esplora import CONCURRENCY, EsploraWatcher
from wallets.fake_chain import FakeChain, esplora_app


def _chain(addresses: list[str], paid: int) -> FakeChain:
    chain = FakeChain()
    step = max(len(addresses) // max(paid, 1), 1)
    for number, address in enumerate(addresses[::step][:paid]):
        chain.pay(address, 10_000 + number)
        if number % 2 == 0:
            chain.mine()
    return chain


def _serve(port: int, addresses: list[str], paid: int) -> None:
    """The server process."""
    app = esplora_app(_chain(addresses, paid))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int) -> None:
    for _ in range(500):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise SystemExit("the fake Esplora server did not start")


async def _poll(url: str, watched: list[WatchedAddress], concurrency: int) -> tuple[float, int]:
    started = time.perf_counter()
    outputs = await EsploraWatcher(url, concurrency=concurrency).outputs(watched)
    return time.perf_counter() - started, len(outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=10_000)
    parser.add_argument("--paid", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    args = parser.parse_args()
    addresses = [f"tb1qbench{index:010d}" for index in range(args.addresses)]
    since = datetime.now(UTC)
    watched = [WatchedAddress(address, since) for address in addresses]
    port = _free_port()
    server = multiprocessing.Process(target=_serve, args=(port, addresses, args.paid))
    server.start()
    try:
        _wait_for(port)
        url = f"http://127.0.0.1:{port}"
        results = [asyncio.run(_poll(url, watched, args.concurrency)) for _ in range(args.runs)]
    finally:
        server.terminate()
        server.join()
    seconds = [s for s, _ in results]
    print(
        f"{args.addresses} addresses, {results[0][1]} outputs found: median "
        f"{statistics.median(seconds):.2f} s per poll "
        f"({args.addresses / statistics.median(seconds):.0f} addresses/s; "
        f"runs {', '.join(f'{s:.2f}' for s in seconds)})"
    )


if __name__ == "__main__":
    main()
