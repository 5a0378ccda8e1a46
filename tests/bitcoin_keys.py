"""Published Bitcoin test keys, and the same keys re-encoded for the test networks.

The mainnet keys are BIP84's and SLIP-132's (the BIP39 mnemonic "abandon … about"); the
testnet one is BIP49's.  kassa's test settings take payments on testnet, so the mainnet
accounts are also given with testnet prefixes: the same 78 bytes under another version,
which derive the same public keys (and so the same addresses, with testnet's prefixes).
"""

from __future__ import annotations

import hashlib

from wallets.keys import base58check_decode

#: BIP84, m/84'/0'/0'.
BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUU"
    "kgDKf31mGDtKsAYz2oz2AGutZYs"
)
#: BIP84's account key in private: what an operator must never paste.
BIP84_ZPRV = (
    "zprvAdG4iTXWBoARxkkzNpNh8r6Qag3irQB8PzEMkAFeTRXxHpbF9z4QgEvBRmfvqWvGp42t42nvgGpNgYSJ"
    "A9iefm1yYNZKEm7z6qUWCroSQnE"
)
#: BIP84's root (depth 0): a public key, but not an account's.
BIP84_ROOT_ZPUB = (
    "zpub6jftahH18ngZxLmXaKw3GSZzZsszmt9WqedkyZdezFtWRFBZqsQH5hyUmb4pCEeZGmVfQuP5bedXTB8i"
    "s6fTv19U1GQRyQUKQGUTzyHACMF"
)
#: SLIP-132, m/49'/0'/0' (first address 37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf).
SLIP132_YPUB = (
    "ypub6Ww3ibxVfGzLrAH1PNcjyAWenMTbbAosGNB6VvmSEgytSER9azLDWCxoJwW7Ke7icmizBMXrzBx9979F"
    "faHxHcrArf3zbeJJJUZPf663zsP"
)
#: SLIP-132, m/44'/0'/0' (first address 1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA).
SLIP132_XPUB = (
    "xpub6BosfCnifzxcFwrSzQiqu2DBVTshkCXacvNsWGYJVVhhawA7d4R5WSWGFNbi8Aw6ZRc1brxMyWMzG3DS"
    "SSSoekkudhUd9yLb6qx39T9nMdj"
)
#: BIP49, m/49'/1'/0' on testnet (its account0Xpriv, made public).
BIP49_UPUB = (
    "upub5EFU65HtV5TeiSHmZZm7FUffBGy8UKeqp7vw43jYbvZPpoVsgU93oac7Wk3u6moKegAEWtGNF8DehrnH"
    "tv21XXEMYRUocHqguyjknFHYfgY"
)
BIP49_TPRV = (
    "tprv8gRrNu65W2Msef2BdBSUgFdRTGzC8EwVXnV7UGS3faeXtuMVtGfEdidVeGbThs4ELEoayCAzZQ4uUji9"
    "DUiAs7erdVskqju7hrBcDvDsdbY"
)
MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
#: A WIF private key (compressed, mainnet) of the same mnemonic.
WIF = "L4p2b9VAf8k5aUahF1JCJUzZkgNEAqLfq8DDdQiyAprQAKSbu8hf"

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
VPUB_VERSION = "045f1cf6"
TPUB_VERSION = "043587cf"


def base58check(payload: bytes) -> str:
    """``payload`` with its checksum, in base58 (what wallets show)."""
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number = int.from_bytes(data, "big")
    text = ""
    while number:
        number, digit = divmod(number, 58)
        text = _ALPHABET[digit] + text
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + text


def reencoded(key: str, version: str) -> str:
    """``key`` under another version (prefix): the same key, as another network shows it."""
    return base58check(bytes.fromhex(version) + base58check_decode(key)[4:])


def with_typo(key: str) -> str:
    """``key`` with its last character changed: its checksum no longer holds."""
    return key[:-1] + ("b" if key[-1] != "b" else "c")


#: Three testnet account keys of three different accounts, one per owner in a test.
TESTNET_VPUB = reencoded(BIP84_ZPUB, VPUB_VERSION)
TESTNET_UPUB = BIP49_UPUB
TESTNET_TPUB = reencoded(SLIP132_XPUB, TPUB_VERSION)
