"""Addresses derived from an account key match the published test vectors (BIP32's public
derivation, BIP49, BIP84, SLIP-132), and bitcoinlib's pitfalls stay guarded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import wallets
from billing.bitcoin import HARDENED, AddressType, BitcoinNetwork
from tests.bitcoin_keys import (
    BIP49_UPUB,
    BIP84_ZPUB,
    SLIP132_XPUB,
    SLIP132_YPUB,
    TESTNET_VPUB,
)
from wallets.addresses import derive
from wallets.keys import base58check_decode

MAIN, TEST, REGTEST = BitcoinNetwork.MAINNET, BitcoinNetwork.TESTNET, BitcoinNetwork.REGTEST
NATIVE, NESTED, LEGACY = AddressType.NATIVE_SEGWIT, AddressType.NESTED_SEGWIT, AddressType.LEGACY

#: (account key, network, type, chain, index, expected address), from the BIPs' own pages.
VECTORS = [
    # BIP84: account 0's first and second receiving addresses and first change address.
    (BIP84_ZPUB, MAIN, NATIVE, 0, 0, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"),
    (BIP84_ZPUB, MAIN, NATIVE, 0, 1, "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"),
    (BIP84_ZPUB, MAIN, NATIVE, 1, 0, "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"),
    # BIP49 (testnet): account 0's first receiving address.
    (BIP49_UPUB, TEST, NESTED, 0, 0, "2Mww8dCYPUpKHofjgcXcBCEGmniw9CoaiD2"),
    # SLIP-132's BIP44 and BIP49 accounts of the same mnemonic: the first receiving address.
    (SLIP132_XPUB, MAIN, LEGACY, 0, 0, "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"),
    (SLIP132_YPUB, MAIN, NESTED, 0, 0, "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf"),
    # BIP84's account as a testnet key, and on regtest (Bitcoin Core's bcrt prefix).
    (TESTNET_VPUB, TEST, NATIVE, 0, 0, "tb1qcr8te4kr609gcawutmrza0j4xv80jy8zmfp6l0"),
    (TESTNET_VPUB, REGTEST, NATIVE, 0, 0, "bcrt1qcr8te4kr609gcawutmrza0j4xv80jy8zeqchgx"),
]


@pytest.mark.parametrize(
    ("key", "network", "address_type", "chain", "index", "expected"),
    VECTORS,
    ids=[f"{v[0][:4]}-{v[2].value}-{v[3]}/{v[4]}" for v in VECTORS],
)
def test_derivation_matches_the_published_vectors(
    key: str,
    network: BitcoinNetwork,
    address_type: AddressType,
    chain: int,
    index: int,
    expected: str,
) -> None:
    assert derive(key, network, address_type, chain, index).address == expected


def test_public_derivation_matches_bip32_test_vector_1() -> None:
    """BIP32 test vector 1: from the public key of m/0H/1/2H (depth 3), public derivation of
    /2 and then /1000000000 gives the public keys the vector lists for those paths."""
    account = (
        "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7"
        "n7epu4trkrX7x7DogT5Uv6fcLW5"
    )
    m_0h_1_2h_2_1000000000 = (
        "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8"
        "yGasTvXEYBVPamhGW6cFJodrTHy"
    )
    derived = derive(account, MAIN, LEGACY, 2, 1_000_000_000)
    assert derived.public_key == base58check_decode(m_0h_1_2h_2_1000000000)[45:].hex()


@pytest.mark.parametrize(("chain", "index"), [(0, HARDENED), (HARDENED, 0), (0, -1), (0, 2**32)])
def test_no_hardened_step_is_ever_derived_from_a_public_key(chain: int, index: int) -> None:
    """bitcoinlib would quietly derive something (even at exactly 2³¹): kassa refuses."""
    with pytest.raises(ValueError, match="non-hardened"):
        derive(BIP84_ZPUB, MAIN, NATIVE, chain, index)


def test_one_key_gives_each_type_its_own_address_whatever_was_asked_before() -> None:
    """bitcoinlib's keys remember their first address; each derivation here is fresh."""
    asked = [derive(BIP84_ZPUB, MAIN, t, 0, 0).address for t in (NATIVE, NESTED, LEGACY, NATIVE)]
    assert asked == [
        "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
        "3GtVZYzsKF6Feikdjd4bDyPdAiyeHANY9b",
        "1JaUQDVNRdhfNsVncGkXedaPSM5Gc54Hso",
        "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
    ]


def test_bitcoinlib_keeps_its_files_in_a_private_directory_of_kassa() -> None:
    data_dir = Path(wallets.DATA_DIR)
    assert os.environ["BCL_DATA_DIR"] == str(data_dir)
    assert data_dir.is_dir() and data_dir.stat().st_mode & 0o077 == 0
    assert not data_dir.is_relative_to(Path.home())


def test_deriving_in_a_fresh_process_writes_nothing_to_the_home_directory(
    tmp_path: Path,
) -> None:
    """A new process, with HOME (and a stray BCL_DATA_DIR) pointed at an empty directory,
    derives an address: bitcoinlib is loaded and used, and that directory stays empty."""
    code = (
        "import wallets\n"
        "from billing.bitcoin import AddressType, BitcoinNetwork\n"
        "from wallets.addresses import derive\n"
        f"print(derive({BIP84_ZPUB!r}, BitcoinNetwork.MAINNET, AddressType.NATIVE_SEGWIT, 0, 0)"
        ".address)\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "BCL_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
    assert list(tmp_path.iterdir()) == []
