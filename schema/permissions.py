"""Field permissions: who may call a root field at all.

What a caller may *see* is decided by the services' scoping (someone else's object answers
"not found"); these classes only refuse callers who may not use a field at all, as top-level
errors with a ``code`` extension.
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from resolvers.context import Info


class IsAuthenticated(BasePermission):
    message = "Sign in or send an API key first."
    error_extensions = {"code": "UNAUTHENTICATED"}  # noqa: RUF012 (Strawberry reads it per class)

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return bool(info.context.viewer.authenticated)


class TestModeOnly(BasePermission):
    """The test clock exists only on test-mode installations (``KASSA_TEST_MODE``)."""

    message = "The test clock is only available in test mode."
    error_extensions = {"code": "FORBIDDEN"}  # noqa: RUF012 (Strawberry reads it per class)

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return bool(info.context.settings.test_mode)
