"""Domain errors.

A :class:`UserError` is an *expected* failure that the caller can fix (bad input, a declined
card, an unknown id).  Resolvers turn it into a payload ``errors`` entry; everything else is a
bug and becomes a masked top-level GraphQL error.
"""

from __future__ import annotations


class UserError(Exception):
    """An expected failure with a machine-readable ``code`` and the input ``field`` at fault."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"UserError({self.code!r}, {self.message!r}, field={self.field!r})"


class NotFound(UserError):
    """The object does not exist *or* is outside the caller's scope: the two look the same."""

    def __init__(self, what: str, field: str | None = "id") -> None:
        super().__init__("NOT_FOUND", f"{what} not found", field)


class Forbidden(Exception):
    """The caller may not do this at all (a top-level error, not a payload error)."""
