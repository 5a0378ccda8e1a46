"""Wallets: payment by cryptocurrency, to begin with Bitcoin.

This package implements the ports of :mod:`billing.bitcoin` with bitcoinlib and imports
nothing of kassa but billing's interfaces and value types (``tests/test_layers.py``):

* :mod:`wallets.keys` reads a pasted extended public key, checking its base58check checksum
  itself (bitcoinlib does not);
* :mod:`wallets.addresses` derives receiving addresses below it, one non-hardened step at a
  time (bitcoinlib silently ignores a hardened step on a public key).

bitcoinlib keeps configuration, logs and databases in a data directory, ``~/.bitcoinlib``
unless ``BCL_DATA_DIR`` names another, and reads it once, when it is first imported.  kassa
uses it only for key arithmetic, so it gets a private directory of this process's own,
made here, before any module of this package can import bitcoinlib, and removed at exit:
never the user's home, and never a shared directory whose ``networks.json`` someone else
could have written.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from typing import Protocol

from billing import bitcoin
from billing.bitcoin import (
    AddressDeriver,
    AddressType,
    BitcoinNetwork,
    ChainWatcher,
    DerivedAddress,
    ExtendedKeyFacts,
    KeyInspector,
)

if "bitcoinlib" in sys.modules:  # pragma: no cover - an import-order bug, caught at start
    raise ImportError("bitcoinlib was imported before wallets: its data directory is not kassa's")

#: bitcoinlib's data directory for this process (mode 0700).
DATA_DIR = tempfile.mkdtemp(prefix="kassa-bitcoinlib-")
os.environ["BCL_DATA_DIR"] = DATA_DIR
_OWNER_PID = os.getpid()


def _remove_data_dir() -> None:
    """At exit, in the process that made it (a forked child shares the path, not the dir's
    lifetime)."""
    if os.getpid() == _OWNER_PID:
        shutil.rmtree(DATA_DIR, ignore_errors=True)


atexit.register(_remove_data_dir)


class _KeyLibrary:
    """Both ports, importing bitcoinlib (a third of a second) only when first used, so a
    command that never touches a Bitcoin key never loads it."""

    def inspect(self, text: str) -> ExtendedKeyFacts:
        from wallets import keys

        return keys.inspect(text)

    def derive(
        self,
        account_key: str,
        network: BitcoinNetwork,
        address_type: AddressType,
        chain: int,
        index: int,
    ) -> DerivedAddress:
        from wallets import addresses

        return addresses.derive(account_key, network, address_type, chain, index)


class ChainSettings(Protocol):
    """What :func:`serve_billing` reads of kassa's settings (``settings.Settings``, which
    this package may not import)."""

    @property
    def bitcoin_watcher(self) -> str: ...
    @property
    def esplora_url(self) -> str | None: ...
    @property
    def bitcoind_url(self) -> str | None: ...
    @property
    def bitcoind_user(self) -> str | None: ...
    @property
    def bitcoind_password(self) -> str | None: ...
    @property
    def development(self) -> bool: ...


def watcher_for(settings: ChainSettings) -> ChainWatcher | None:
    """The chain watcher ``KASSA_BITCOIN_WATCHER`` names: ``esplora`` (``KASSA_ESPLORA_URL``),
    ``core`` (``KASSA_BITCOIND_URL`` and credentials), ``fake`` (the in-process fake chain
    the demo feeds, development only) or none."""
    if settings.bitcoin_watcher == "esplora" and settings.esplora_url:
        from wallets.esplora import EsploraWatcher

        return EsploraWatcher(settings.esplora_url)
    if settings.bitcoin_watcher == "core" and settings.bitcoind_url:
        from wallets.bitcoind import BitcoinCoreWatcher

        return BitcoinCoreWatcher(
            settings.bitcoind_url, settings.bitcoind_user, settings.bitcoind_password
        )
    if settings.bitcoin_watcher == "fake" and settings.development:
        import httpx

        from wallets import fake_chain
        from wallets.esplora import EsploraWatcher

        transport = httpx.ASGITransport(app=fake_chain.esplora_app(fake_chain.DEMO_CHAIN))
        return EsploraWatcher("http://fake-esplora", transport=transport)
    return None


def serve_billing(settings: ChainSettings | None = None) -> None:
    """Hand bitcoinlib's implementations, the chain watcher and the price source to billing
    (:func:`billing.bitcoin.use_key_library`, :func:`billing.bitcoin.use_chain`): called
    once by each entry point, as ``processors.registry.serve_billing`` is.  Price endpoints
    on private or loopback addresses are allowed in development only."""
    from wallets.prices import HttpPriceSource

    library = _KeyLibrary()
    inspector: KeyInspector = library
    deriver: AddressDeriver = library
    bitcoin.use_key_library(inspector, deriver)
    if settings is not None:
        prices = HttpPriceSource(allow_private=settings.development)
        bitcoin.use_chain(watcher_for(settings), prices)
