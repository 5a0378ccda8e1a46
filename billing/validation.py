"""Small input rules shared by the services: lengths, e-mail and phone shapes."""

from __future__ import annotations

import re

from billing.errors import UserError

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_RE = re.compile(r"^\+?[0-9 ()\-]{3,32}$")


def text(value: str | None, field: str, max_length: int, *, required: bool = False) -> str | None:
    """Strip ``value``; refuse it when longer than ``max_length`` or missing but required."""
    if value is None or not value.strip():
        if required:
            raise UserError("REQUIRED", f"{field} is required", field)
        return None
    value = value.strip()
    if len(value) > max_length:
        raise UserError("TOO_LONG", f"{field} is longer than {max_length} characters", field)
    return value


def required_text(value: str | None, field: str, max_length: int) -> str:
    result = text(value, field, max_length, required=True)
    assert result is not None
    return result


def email(value: str | None, field: str = "email", *, required: bool = False) -> str | None:
    value = text(value, field, 254, required=required)
    if value is not None and not _EMAIL_RE.match(value):
        raise UserError("INVALID_EMAIL", f"{value!r} is not an e-mail address", field)
    return value.lower() if value else value


def phone(value: str | None, field: str = "phone") -> str | None:
    value = text(value, field, 32)
    if value is not None and not _PHONE_RE.match(value):
        raise UserError("INVALID_PHONE", f"{value!r} is not a phone number", field)
    return value


def non_negative_int(value: int, field: str, maximum: int = 3650) -> int:
    if value < 0 or value > maximum:
        raise UserError("OUT_OF_RANGE", f"{field} must be between 0 and {maximum}", field)
    return value
