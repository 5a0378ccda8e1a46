"""argon2 password hashes: salted, verifiable, never the password itself."""

from __future__ import annotations

from billing.passwords import hash_password, needs_rehash, verify_password


def test_hash_is_argon2id_and_never_contains_the_password() -> None:
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert "correct horse battery" not in hashed


def test_same_password_hashes_differently_each_time() -> None:
    assert hash_password("s3cret-pass") != hash_password("s3cret-pass")


def test_verify_accepts_the_right_password_only() -> None:
    hashed = hash_password("s3cret-pass")
    assert verify_password(hashed, "s3cret-pass") is True
    assert verify_password(hashed, "s3cret-pasS") is False
    assert verify_password(hashed, "") is False


def test_verify_refuses_a_garbage_hash_instead_of_raising() -> None:
    assert verify_password("not-a-hash", "whatever") is False
    assert verify_password("", "whatever") is False


def test_fresh_hash_needs_no_rehash() -> None:
    assert needs_rehash(hash_password("s3cret-pass")) is False
