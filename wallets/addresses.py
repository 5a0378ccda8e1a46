"""Receiving addresses below an account key, derived with bitcoinlib.

Three of bitcoinlib's habits are kept away from kassa's addresses:

* it ignores a hardened step on a public key rather than failing (and its own check lets
  index 2³¹ through), so :func:`derive` takes two integers, never a path, and refuses any
  index a public key cannot derive;
* it decodes base58 without its checksum, so the key is decoded by :mod:`wallets.keys`
  and handed to bitcoinlib as its parts;
* an ``HDKey`` remembers the first address it was asked for and answers later calls for
  another script type with it, and its ``regtest`` network has mainnet's base58 prefixes
  (Bitcoin Core's regtest uses testnet's): so each address is a fresh ``Address`` of the
  public key, with the network's prefixes chosen here.
"""

from __future__ import annotations

from functools import lru_cache

from bitcoinlib.keys import Address, HDKey

from billing.bitcoin import ACCOUNT_DEPTH, HARDENED, AddressType, BitcoinNetwork, DerivedAddress
from wallets.keys import base58check_decode

#: bitcoinlib's script type and encoding for each address type.
_SCRIPTS: dict[AddressType, tuple[str, str]] = {
    AddressType.NATIVE_SEGWIT: ("p2wpkh", "bech32"),
    AddressType.NESTED_SEGWIT: ("p2sh_p2wpkh", "base58"),
    AddressType.LEGACY: ("p2pkh", "base58"),
}
#: The bitcoinlib network whose base58 prefixes each network uses, and its bech32 prefix.
_NETWORKS: dict[BitcoinNetwork, tuple[str, str]] = {
    BitcoinNetwork.MAINNET: ("bitcoin", "bc"),
    BitcoinNetwork.TESTNET: ("testnet", "tb"),
    BitcoinNetwork.SIGNET: ("testnet", "tb"),
    BitcoinNetwork.REGTEST: ("testnet", "bcrt"),
}
#: Chain keys kept parsed: a wallet hands out addresses from one chain for a long time.
_CACHED_CHAINS = 256


def _check_index(value: int, what: str) -> None:
    if not 0 <= value < HARDENED:
        raise ValueError(f"{what} {value} is not a non-hardened index (0 to {HARDENED - 1})")


@lru_cache(maxsize=_CACHED_CHAINS)
def _chain_key(account_key: str, library_network: str, chain: int) -> HDKey:
    """The key of ``account_key/chain``, from the checksum-verified parts of the account key."""
    payload = base58check_decode(account_key)
    depth = payload[4]
    if depth != ACCOUNT_DEPTH:
        raise ValueError(f"not an account key (depth {depth})")
    account = HDKey(
        key=payload[45:],
        chain=payload[13:45],
        depth=depth,
        parent_fingerprint=payload[5:9],
        child_index=int.from_bytes(payload[9:13], "big"),
        is_private=False,
        network=library_network,
    )
    return account.child_public(chain)


def derive(
    account_key: str,
    network: BitcoinNetwork,
    address_type: AddressType,
    chain: int,
    index: int,
) -> DerivedAddress:
    """The address at ``chain/index`` below ``account_key``
    (:class:`billing.bitcoin.AddressDeriver`)."""
    _check_index(chain, "chain")
    _check_index(index, "index")
    library_network, bech32_prefix = _NETWORKS[network]
    public_key = _chain_key(account_key, library_network, chain).child_public(index).public_byte
    script_type, encoding = _SCRIPTS[address_type]
    address = Address(
        public_key,
        prefix=bech32_prefix if encoding == "bech32" else None,
        script_type=script_type,
        encoding=encoding,
        network=library_network,
    )
    return DerivedAddress(address=address.address, public_key=public_key.hex())
