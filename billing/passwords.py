"""Password hashing with argon2id (argon2-cffi's recommended parameters).

Only the hash is stored; it embeds its own salt and parameters, so hashes made with older
parameters keep verifying after the defaults change.
"""

from __future__ import annotations

import hashlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; False for a wrong password or an unreadable hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a hash was made with weaker parameters than today's (rehash at next sign-in)."""
    return _hasher.check_needs_rehash(password_hash)


def password_fingerprint(password_hash: str) -> str:
    """A short digest of a password hash, for tokens that must die when the password changes.

    Session and password-reset tokens carry it: a new password (a new hash, with a new salt)
    no longer matches, so every such token made before the change stops working.
    """
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]
