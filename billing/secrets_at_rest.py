"""Secrets at rest: values kassa must be able to read back (a wallet's account key, the price
endpoints an owner polls) are stored sealed with a key from the environment
(``KASSA_ENCRYPTION_KEY``), so a copy of the database — a backup, a dump handed to support, a
read-only SQL injection — does not reveal them.

Format of a sealed value: ``v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``.

- ``v1`` is AES-256-GCM with a 96-bit random nonce, under a key derived from
  ``KASSA_ENCRYPTION_KEY`` with HKDF-SHA256 (``info`` ``kassa/seal/v1``).  The *purpose* (which
  column the value belongs in) is the associated data, so a value copied into another column
  does not open there.
- ``<key id>`` is 8 hex digits naming the key (from HKDF with its own ``info``, revealing
  nothing about it), so a value sealed under another key fails with an error that says so
  rather than with a bare authentication failure — and so that a later rotation can keep the
  previous key for reading and tell which one a value needs.

Values that must be found by equality (a wallet's account key, which is also unique) are
stored beside their sealed form as :func:`lookup_digest`: HMAC-SHA256 under a third derived
key.  The digest is deterministic (that is the point), so it says whether two rows hold the
same value but not what the value is; without the key it cannot even be checked against a
guess.

Development (and the tests) use :data:`DEVELOPMENT_ENCRYPTION_KEY` when none is set; outside
development ``settings.start_problems`` refuses to start without a key of at least
:data:`MIN_ENCRYPTION_KEY_LENGTH` characters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from settings import DEVELOPMENT_ENCRYPTION_KEY, Settings

VERSION = "v1"
NONCE_BYTES = 12

#: The purposes (associated data) of the values kassa seals, one per column.
WALLET_ACCOUNT_KEY = "bitcoin_wallets.account_key"
RATE_CONFIG = "bitcoin_settings.rate_config"
PROCESSOR_CREDENTIALS = "processor_accounts.credentials"


class SecretsError(Exception):
    """A sealed value cannot be opened: sealed under another key, damaged, or not sealed."""


def _derive(material: bytes, info: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info.encode()).derive(
        material
    )


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys derived from one ``KASSA_ENCRYPTION_KEY``.  Its ``repr`` shows only the id."""

    key_id: str
    seal_key: bytes
    lookup_key: bytes

    def __repr__(self) -> str:
        return f"Keys(key_id={self.key_id!r})"


@lru_cache(maxsize=8)
def keys_from(encryption_key: str) -> Keys:
    """Everything derived from ``encryption_key`` (cached: HKDF on every row would show)."""
    material = encryption_key.encode()
    return Keys(
        key_id=_derive(material, "kassa/key-id/v1")[:4].hex(),
        seal_key=_derive(material, "kassa/seal/v1"),
        lookup_key=_derive(material, "kassa/lookup/v1"),
    )


def keys_for(settings: Settings) -> Keys:
    """The keys of this installation: ``KASSA_ENCRYPTION_KEY``, or the public development
    key in development.  Outside development without a key, refuse (``kassa serve`` and
    ``kassa worker`` already refused to start; this stops a script that skipped the check)."""
    if settings.encryption_key:
        return keys_from(settings.encryption_key)
    if settings.development:
        return keys_from(DEVELOPMENT_ENCRYPTION_KEY)
    raise SecretsError("KASSA_ENCRYPTION_KEY is not set: sealed settings cannot be read or written")


def seal(keys: Keys, purpose: str, plaintext: str) -> str:
    """``plaintext`` sealed for the column ``purpose``."""
    nonce = os.urandom(NONCE_BYTES)
    body = AESGCM(keys.seal_key).encrypt(nonce, plaintext.encode(), purpose.encode())
    encoded = base64.urlsafe_b64encode(nonce + body).decode().rstrip("=")
    return f"{VERSION}.{keys.key_id}.{encoded}"


def open_sealed(keys: Keys, purpose: str, sealed: str) -> str:
    """The plaintext of ``sealed``; :class:`SecretsError` saying why when it cannot be
    opened.  The message never contains the value or the key."""
    parts = sealed.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise SecretsError(f"{purpose}: not a sealed value of a known version")
    _, key_id, encoded = parts
    if key_id != keys.key_id:
        raise SecretsError(
            f"{purpose}: sealed under encryption key {key_id}, but KASSA_ENCRYPTION_KEY is key "
            f"{keys.key_id}: start kassa with the key the database was written with"
        )
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        plain = AESGCM(keys.seal_key).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode()
        )
    except (InvalidTag, ValueError, binascii.Error) as error:
        raise SecretsError(f"{purpose}: damaged, or sealed for another column") from error
    return plain.decode()


def lookup_digest(keys: Keys, purpose: str, value: str) -> str:
    """The keyed digest ``value`` is found by in the column ``purpose`` (64 hex digits)."""
    message = purpose.encode() + b"\x00" + value.encode()
    return hmac.new(keys.lookup_key, message, hashlib.sha256).hexdigest()
