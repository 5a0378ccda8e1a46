"""Field permissions: who may use a field at all.

Which *objects* a caller may see is decided by the services' scoping (someone else's object
answers "not found"); these classes refuse callers who may not use a field at all — a root
field, or a field of an object they do see — as top-level errors with a ``code`` extension.
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from billing.access import sees_books
from resolvers.context import Info


class ViewerPermission(BasePermission):
    """A permission decided from the viewer (and the settings) alone — never the object the
    field is on nor its arguments — and at once (not awaited), so one answer holds for the
    whole request: :mod:`schema.json_reads` asks it once, not once per invoice."""


class IsAuthenticated(ViewerPermission):
    message = "Sign in or send an API key first."
    error_extensions = {"code": "UNAUTHENTICATED"}  # noqa: RUF012 (Strawberry reads it per class)

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return bool(info.context.viewer.authenticated)


class TestModeOnly(ViewerPermission):
    """The test clock exists only on test-mode installations (``KASSA_TEST_MODE``)."""

    message = "The test clock is only available in test mode."
    error_extensions = {"code": "FORBIDDEN"}  # noqa: RUF012 (Strawberry reads it per class)

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return bool(info.context.settings.test_mode)


class SeesBooks(ViewerPermission):
    """The detail of a customer's money, refused to its distributor
    (:func:`billing.access.sees_books`): charges, invoice amounts, lines and PDFs, card
    attempts, payments, cards, the ledger."""

    message = (
        "A distributor sees its customers' profile, accounts, balance and what their invoices "
        "still need, not their books."
    )
    error_extensions = {"code": "FORBIDDEN"}  # noqa: RUF012 (Strawberry reads it per class)

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return sees_books(info.context.viewer)
