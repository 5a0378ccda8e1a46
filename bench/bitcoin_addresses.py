"""Bitcoin address derivation: receiving addresses derived per second, on one core.

    .venv/bin/python -m bench.bitcoin_addresses [--addresses 500] [--runs 5]

Derives ``--addresses`` consecutive receiving addresses (``0/i``) below BIP84's account key
through the port billing uses (:func:`billing.bitcoin.address_deriver`, bitcoinlib behind
it), once per address type, ``--runs`` times with fresh indexes, and prints the median
rate of each type.  The chain key is parsed once and kept (as the deriver keeps it), so the
figure is the cost of one public child derivation, its hash and its encoding: what
``requestBitcoinAddress`` spends on deriving, and what a watcher re-deriving a wallet's
addresses would.
"""

from __future__ import annotations

import argparse
import statistics
import time

from billing import bitcoin
from billing.bitcoin import EXTERNAL_CHAIN, AddressType, BitcoinNetwork

#: BIP84's account 0 (its test vector).
ACCOUNT_KEY = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUU"
    "kgDKf31mGDtKsAYz2oz2AGutZYs"
)


def rate(address_type: AddressType, first: int, count: int) -> float:
    """Addresses per second deriving indexes ``first`` … ``first + count - 1``."""
    deriver = bitcoin.address_deriver()
    started = time.perf_counter()
    for index in range(first, first + count):
        deriver.derive(ACCOUNT_KEY, BitcoinNetwork.MAINNET, address_type, EXTERNAL_CHAIN, index)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rate(AddressType.NATIVE_SEGWIT, 0, 1)  # loads bitcoinlib and parses the key
    for address_type in AddressType:
        rates = [
            rate(address_type, 1 + run * args.addresses, args.addresses) for run in range(args.runs)
        ]
        print(
            f"{address_type.value:<14} {statistics.median(rates):8.0f} addresses/s "
            f"(median of {args.runs} runs of {args.addresses}; "
            f"{min(rates):.0f}–{max(rates):.0f})"
        )


if __name__ == "__main__":
    main()
