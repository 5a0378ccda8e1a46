"""Bitcoin: what billing needs from a key library, and the rules for the keys it accepts.

kassa never holds a private key.  An owner of customers (the provider, or a reseller) gives
the *account-level extended public key* of its wallet (``m/purpose'/coin'/account'``), and
kassa derives one receiving address per request from the external chain below it
(``…/0/i``).  The owner's own wallet software, which holds the private keys, sees the funds.

Billing defines the two ports here and ``wallets`` implements them with bitcoinlib, so the
domain never imports a Bitcoin library (``tests/test_layers.py``), the way card processors
plug in through :mod:`billing.processing`:

* :class:`KeyInspector` reads what an extended key's serialisation says about itself,
  after checking its base58check checksum (bitcoinlib does not);
* :class:`AddressDeriver` derives the address at ``chain/index`` below an account key, with
  non-hardened steps only (bitcoinlib silently ignores a hardened step on a public key and
  would hand out an address nobody can spend from).

Everything else here is plain data and the policy on keys, which is the same whatever library
reads them: :func:`refuse_secrets` and :func:`check_account_key`.  Error messages never
quote what was pasted: it may have been a private key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol
from urllib.parse import quote

from billing.errors import UserError

#: BIP44's ``m / purpose' / coin_type' / account'``: the depth of an account's key.
ACCOUNT_DEPTH = 3
#: The external (receiving) chain below an account; 1 is change, which kassa never uses.
EXTERNAL_CHAIN = 0
#: Indexes from here on are hardened, which a public key cannot derive.
HARDENED = 2**31
#: The longest extended key (111 base58 characters) with room for stray whitespace trimmed.
KEY_LENGTH = 120
#: BIP39 mnemonics have 12 to 24 words (Electrum's 12 or 13), of lower-case letters.
_SEED_WORDS = re.compile(r"[a-z]+(?:\s+[a-z]+){11,23}")
#: 24 words of BIP39's list (at most 8 letters each) and the spaces between them.
_LONGEST_SEED = 24 * 8 + 23
#: 32 or 64 bytes of hex: a raw private key or a BIP32 seed.
_RAW_SECRET = re.compile(r"(?:[0-9a-f]{64}){1,2}")


class BitcoinNetwork(StrEnum):
    """The chain an installation takes payments on (``KASSA_BITCOIN_NETWORK``).

    Testnet, signet and regtest share the testnet key prefixes (tpub/upub/vpub); a key says
    only "mainnet" or "a test network".
    """

    MAINNET = "MAINNET"
    TESTNET = "TESTNET"
    SIGNET = "SIGNET"
    REGTEST = "REGTEST"

    @property
    def is_mainnet(self) -> bool:
        return self is BitcoinNetwork.MAINNET


class AddressType(StrEnum):
    """The script of the addresses handed out (one per wallet)."""

    #: P2WPKH, BIP84, ``bc1q…``: the cheapest to spend, the default.
    NATIVE_SEGWIT = "NATIVE_SEGWIT"
    #: P2SH-P2WPKH, BIP49, ``3…``: for wallets that cannot pay to bech32.
    NESTED_SEGWIT = "NESTED_SEGWIT"
    #: P2PKH, BIP44, ``1…``.
    LEGACY = "LEGACY"


@dataclass(frozen=True, slots=True)
class ExtendedKeyFacts:
    """What an extended key's 78 bytes say about it (BIP32, with SLIP-132's prefixes).

    ``implied_type`` is the address type a ypub/zpub (upub/vpub) stands for; None for an
    xpub/tpub, which is used for every type.  ``multisig`` marks the capitalised Ypub/Zpub
    family, whose keys belong to multisig scripts.
    """

    prefix: str
    mainnet: bool
    private: bool
    depth: int
    implied_type: AddressType | None
    multisig: bool = False


@dataclass(frozen=True, slots=True)
class DerivedAddress:
    """One derived address and its public key (hex, compressed), which a watcher importing
    keys and the published test vectors both speak in."""

    address: str
    public_key: str


class KeyInspector(Protocol):
    """Reads a pasted extended key.  Implemented in ``wallets``."""

    def inspect(self, text: str) -> ExtendedKeyFacts:
        """The facts of the key ``text`` (already stripped).

        Raises :class:`UserError` ``INVALID_KEY`` for anything that is not an extended key,
        ``BAD_CHECKSUM`` when its base58check checksum is wrong (a typo), and
        ``PRIVATE_KEY_REFUSED`` for a WIF private key; an extended *private* key is reported
        (``private``) for :func:`check_account_key` to refuse.
        """
        ...


class AddressDeriver(Protocol):
    """Derives receiving addresses below an account key.  Implemented in ``wallets``."""

    def derive(
        self,
        account_key: str,
        network: BitcoinNetwork,
        address_type: AddressType,
        chain: int,
        index: int,
    ) -> DerivedAddress:
        """The address at ``chain/index`` below ``account_key`` (a key
        :func:`check_account_key` accepted).  Both steps are non-hardened (below
        :data:`HARDENED`); anything else is a ``ValueError``, never a silent wrong address."""
        ...


_inspector: KeyInspector | None = None
_deriver: AddressDeriver | None = None


def use_key_library(inspector: KeyInspector, deriver: AddressDeriver) -> None:
    """Make these the implementations billing asks (once per process, by each entry point,
    as :func:`billing.processing.use_directory` is for processors)."""
    global _inspector, _deriver
    _inspector, _deriver = inspector, deriver


def key_inspector() -> KeyInspector:
    if _inspector is None:
        raise RuntimeError("no Bitcoin key library: the entry point must call use_key_library")
    return _inspector


def address_deriver() -> AddressDeriver:
    if _deriver is None:
        raise RuntimeError("no Bitcoin key library: the entry point must call use_key_library")
    return _deriver


# --- the policy on keys --------------------------------------------------------------------


def refuse_secrets(text: str, field: str = "accountKey") -> None:
    """Refuse what is plainly a secret before any library reads it: a mnemonic (12 to 24
    words) or raw hex (a private key or a seed); ``text`` is stripped and lower-cased.  WIF and extended private keys are refused once
    decoded (:class:`KeyInspector`, :func:`check_account_key`)."""
    if _SEED_WORDS.fullmatch(text):
        raise UserError(
            "SEED_REFUSED",
            "this looks like a recovery phrase (seed words): never give it to anyone; "
            "give the account's extended public key (xpub, ypub or zpub) instead",
            field,
        )
    if _RAW_SECRET.fullmatch(text):
        raise UserError(
            "PRIVATE_KEY_REFUSED",
            "this looks like a private key or seed in hex: kassa takes only an extended "
            "public key (xpub, ypub or zpub)",
            field,
        )


def check_account_key(
    facts: ExtendedKeyFacts,
    network: BitcoinNetwork,
    address_type: AddressType | None,
    field: str = "accountKey",
) -> AddressType:
    """The address type to derive with, if ``facts`` describe a key kassa may use on
    ``network``; a UserError otherwise.

    * only public keys: an xprv (any ``…prv``) is refused;
    * single-signature keys: Ypub/Zpub (multisig) are refused;
    * the network the installation runs on: a mainnet key on a test network (or the
      reverse) would hand out addresses no payment can reach;
    * account level (depth 3): a deeper or shallower key would derive addresses the owner's
      wallet, which scans ``account/0/i``, never looks at;
    * the script its prefix implies: a zpub/vpub is native segwit and a ypub/upub nested
      segwit, so choosing another type would derive addresses the wallet does not scan;
      an xpub/tpub says nothing of the script (modern wallets export every account as one),
      so any type may be chosen, native segwit unless said otherwise.
    """
    if facts.private:
        raise UserError(
            "PRIVATE_KEY_REFUSED",
            f"this is a private key ({facts.prefix}): kassa takes only the public one "
            f"({facts.prefix[0]}pub); whoever has seen it can spend the wallet's funds",
            field,
        )
    if facts.multisig:
        raise UserError(
            "MULTISIG_KEY_REFUSED",
            f"a {facts.prefix} belongs to a multisig wallet, which kassa does not derive for",
            field,
        )
    if facts.mainnet != network.is_mainnet:
        expected = "mainnet (xpub, ypub, zpub)" if network.is_mainnet else "testnet "
        if not network.is_mainnet:
            expected += "(tpub, upub, vpub)"
        raise UserError(
            "NETWORK_MISMATCH",
            f"a {facts.prefix} is a key for "
            f"{'mainnet' if facts.mainnet else 'a test network'}; this installation takes "
            f"payments on {network.value.lower()}, so it needs a {expected} key",
            field,
        )
    if facts.depth != ACCOUNT_DEPTH:
        raise UserError(
            "NOT_ACCOUNT_KEY",
            f"this key is at depth {facts.depth}; kassa needs the account's key, at depth "
            f"{ACCOUNT_DEPTH} (m/purpose'/coin'/account'), as wallets export it",
            field,
        )
    if address_type is None:
        return facts.implied_type or AddressType.NATIVE_SEGWIT
    if facts.implied_type is not None and address_type != facts.implied_type:
        raise UserError(
            "ADDRESS_TYPE_MISMATCH",
            f"a {facts.prefix} is for {facts.implied_type.value.lower().replace('_', ' ')} "
            f"addresses, not {address_type.value.lower().replace('_', ' ')}",
            "addressType",
        )
    return address_type


def account_key(
    text: str,
    network: BitcoinNetwork,
    address_type: AddressType | None,
    field: str = "accountKey",
) -> tuple[str, AddressType]:
    """``text`` as a key kassa may store, with the address type to derive with; every rule
    above in order, with nothing written on the way."""
    key = text.strip()
    if not key:
        raise UserError("REQUIRED", "the account's extended public key is required", field)
    if len(key) <= _LONGEST_SEED:
        refuse_secrets(key.lower(), field)
    if len(key) > KEY_LENGTH or len(key.split()) > 1:
        raise UserError("INVALID_KEY", "this is not an extended public key", field)
    facts = key_inspector().inspect(key)
    return key, check_account_key(facts, network, address_type, field)


# --- watching the chain, and prices -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchedAddress:
    """An address to watch, and when it was handed out: a watcher that must be told about
    addresses (Bitcoin Core) looks for payments from then on, none can be older."""

    address: str
    since: datetime


@dataclass(frozen=True, slots=True)
class SeenOutput:
    """One output paying a watched address, as the chain shows it now: ``confirmations`` 0
    while in the mempool, 1 once in the tip block."""

    txid: str
    vout: int
    address: str
    satoshis: int
    confirmations: int


class WatcherUnavailable(Exception):
    """The watcher did not answer (down, refused, 5xx, an answer it cannot read).  Nothing is
    concluded from a poll that raised it: no payment is dropped because the watcher was away."""


class ChainWatcher(Protocol):
    """What billing asks of a chain watcher.  Implemented in ``wallets`` (Esplora, Bitcoin
    Core); either answers for every address asked or raises :class:`WatcherUnavailable`."""

    async def outputs(self, addresses: Sequence[WatchedAddress]) -> list[SeenOutput]:
        """Every output, confirmed or in the mempool, that pays one of ``addresses``."""
        ...

    async def confirmations(self, txid: str) -> int | None:
        """The transaction's confirmations now (0: in the mempool), or None when the chain
        and mempool no longer have it (replaced, double-spent or reorganised away)."""
        ...


class PriceUnavailable(Exception):
    """A price endpoint gave no usable price (unreachable, refused target, not JSON, no
    number at the path).  The message names the cause, never the response body."""


class PriceSource(Protocol):
    """Reads the price of one bitcoin from an HTTP endpoint.  Implemented in ``wallets``."""

    async def price(self, url: str, json_path: str) -> Decimal:
        """The number at ``json_path`` (dot-separated keys and list indexes) in the JSON
        ``url`` answers; :class:`PriceUnavailable` otherwise."""
        ...


_watcher: ChainWatcher | None = None
_prices: PriceSource | None = None


def use_chain(watcher: ChainWatcher | None, prices: PriceSource | None) -> None:
    """Make these the watcher and price source billing asks (each entry point, at start; a
    test may swap in its own).  None: not configured, and the jobs that need one skip."""
    global _watcher, _prices
    _watcher, _prices = watcher, prices


def chain_watcher() -> ChainWatcher | None:
    return _watcher


def price_source() -> PriceSource | None:
    return _prices


# --- payment requests ---------------------------------------------------------------------

#: bech32 (BIP173) human-readable parts: such an address may be written in capitals.
_BECH32_PREFIXES = ("bc1", "tb1", "bcrt1")


def qr_address(address: str) -> str:
    """``address`` as a payment URI carries it: a bech32 address in capitals, which BIP173
    allows and which QR codes store in their denser alphanumeric mode; a base58 address as
    it is (its case is part of it)."""
    return address.upper() if address.lower().startswith(_BECH32_PREFIXES) else address


def btc_decimal(satoshis: int) -> str:
    """Satoshi as BIP21 writes an amount: decimal BTC, no trailing zeros (``0.00123``)."""
    whole, frac = divmod(satoshis, 10**8)
    return f"{whole}.{frac:08d}".rstrip("0").rstrip(".")


def bip21_uri(address: str, satoshis: int | None, label: str, message: str) -> str:
    """``bitcoin:ADDRESS?amount=…&label=…&message=…`` (BIP21), with the amount only when
    one is asked and the texts percent-encoded."""
    params = [("amount", btc_decimal(satoshis))] if satoshis else []
    params += [(k, v) for k, v in (("label", label), ("message", message)) if v]
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in params)
    return f"bitcoin:{qr_address(address)}" + (f"?{query}" if query else "")
