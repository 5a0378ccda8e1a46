"""Reading a pasted extended key: base58check, BIP32's 78 bytes and SLIP-132's prefixes.

bitcoinlib decodes base58 without verifying the four-byte checksum, so a key with a typo
would be taken as some other, valid-looking key whose addresses nobody owns.  The checksum
(the first four bytes of SHA-256 applied twice) is checked here before anything else looks at
the key, and so is that the public key is a point of the curve (a key that decodes but is
no key would make bitcoinlib derive garbage).  No bitcoinlib is needed for either.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from billing.bitcoin import AddressType, ExtendedKeyFacts
from billing.errors import UserError

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_DIGIT = {char: value for value, char in enumerate(_ALPHABET)}
#: version (4) depth (1) parent fingerprint (4) child number (4) chain code (32) key (33).
EXTENDED_KEY_BYTES = 78
#: WIF private keys: a version byte, 32 bytes and an optional 0x01 (compressed).
_WIF_VERSIONS = {0x80, 0xEF}
_FIELD = "accountKey"
#: secp256k1's field prime: the curve is y² = x³ + 7 over it.
_P = 2**256 - 2**32 - 977


@dataclass(frozen=True, slots=True)
class _Version:
    prefix: str
    mainnet: bool
    private: bool
    implied_type: AddressType | None
    multisig: bool = False


def _versions() -> dict[bytes, _Version]:
    """BIP32's xpub/tpub and SLIP-132's registered single- and multi-signature prefixes."""
    native, nested = AddressType.NATIVE_SEGWIT, AddressType.NESTED_SEGWIT
    rows = [
        # mainnet
        ("0488b21e", "xpub", True, False, None, False),
        ("0488ade4", "xprv", True, True, None, False),
        ("049d7cb2", "ypub", True, False, nested, False),
        ("049d7878", "yprv", True, True, nested, False),
        ("04b24746", "zpub", True, False, native, False),
        ("04b2430c", "zprv", True, True, native, False),
        ("0295b43f", "Ypub", True, False, nested, True),
        ("0295b005", "Yprv", True, True, nested, True),
        ("02aa7ed3", "Zpub", True, False, native, True),
        ("02aa7a99", "Zprv", True, True, native, True),
        # testnet, signet and regtest
        ("043587cf", "tpub", False, False, None, False),
        ("04358394", "tprv", False, True, None, False),
        ("044a5262", "upub", False, False, nested, False),
        ("044a4e28", "uprv", False, True, nested, False),
        ("045f1cf6", "vpub", False, False, native, False),
        ("045f18bc", "vprv", False, True, native, False),
        ("024289ef", "Upub", False, False, nested, True),
        ("024285b5", "Uprv", False, True, nested, True),
        ("02575483", "Vpub", False, False, native, True),
        ("02575048", "Vprv", False, True, native, True),
    ]
    return {
        bytes.fromhex(version): _Version(prefix, mainnet, private, implied, multisig)
        for version, prefix, mainnet, private, implied, multisig in rows
    }


VERSIONS = _versions()


def _not_a_key() -> UserError:
    return UserError("INVALID_KEY", "this is not an extended public key", _FIELD)


def base58check_decode(text: str) -> bytes:
    """The payload of a base58check string, whose checksum must hold.

    ``INVALID_KEY`` for a character outside base58 or a string too short to carry a
    checksum; ``BAD_CHECKSUM`` when the checksum does not match (a mistyped character).
    """
    number = 0
    for char in text:
        digit = _DIGIT.get(char)
        if digit is None:
            raise _not_a_key()
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    leading_zeros = len(text) - len(text.lstrip("1"))
    data = b"\x00" * leading_zeros + body
    if len(data) < 5:
        raise _not_a_key()
    payload, checksum = data[:-4], data[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
        raise UserError(
            "BAD_CHECKSUM",
            "the key's checksum does not match: a character is mistyped or missing; "
            "copy it again from the wallet",
            _FIELD,
        )
    return payload


def inspect(text: str) -> ExtendedKeyFacts:
    """The facts of the extended key ``text`` (:class:`billing.bitcoin.KeyInspector`)."""
    payload = base58check_decode(text)
    if payload[0] in _WIF_VERSIONS and len(payload) in (33, 34):
        raise UserError(
            "PRIVATE_KEY_REFUSED",
            "this is a private key (WIF): kassa takes only an extended public key; whoever "
            "has seen it can spend what it holds",
            _FIELD,
        )
    if len(payload) != EXTENDED_KEY_BYTES:
        raise _not_a_key()
    version = VERSIONS.get(payload[:4])
    if version is None:
        raise UserError(
            "UNKNOWN_KEY_VERSION",
            "this extended key's prefix is not a Bitcoin one kassa knows "
            "(xpub, ypub, zpub, tpub, upub, vpub)",
            _FIELD,
        )
    depth = payload[4]
    key_data = payload[45:]
    if not version.private and not on_curve(key_data):
        raise _not_a_key()
    return ExtendedKeyFacts(
        prefix=version.prefix,
        mainnet=version.mainnet,
        private=version.private,
        depth=depth,
        implied_type=version.implied_type,
        multisig=version.multisig,
    )


def on_curve(key_data: bytes) -> bool:
    """Whether ``key_data`` is a compressed secp256k1 point: 02 or 03, then an x for which
    x³ + 7 has a square root modulo the prime (p ≡ 3 mod 4, so the root is a power)."""
    if len(key_data) != 33 or key_data[0] not in (2, 3):
        return False
    x = int.from_bytes(key_data[1:], "big")
    if x >= _P:
        return False
    right = (pow(x, 3, _P) + 7) % _P
    root = pow(right, (_P + 1) // 4, _P)
    return root * root % _P == right
