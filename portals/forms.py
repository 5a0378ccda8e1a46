"""What a form shows: the values typed, the API's errors beside their fields, a form key.

Form fields are named as the API's input fields (``email``, ``timeZone``, ``cardNumber``),
so a ``UserError``'s ``field`` finds its input without a mapping; an error about no field
on the form (a declined card, a rule about the whole request) is shown above it.

Forms that move money carry a ``key``: a random idempotency key made when the form is drawn
and sent back in a hidden field.  Submitting the same form twice (a double click, a
reload) therefore sends the same key, and the API makes one payment and replays it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

KEY_FIELD = "key"


def new_key() -> str:
    return secrets.token_urlsafe(18)


def idempotency_key(values: Mapping[str, str]) -> str:
    """The submitted form's key, as the API's ``idempotencyKey``.

    A form that somehow lost its key gets a fresh one: the money still moves once.
    """
    return values.get(KEY_FIELD) or new_key()


@dataclass
class Form:
    values: dict[str, str] = field(default_factory=dict)
    #: Messages by field name, shown beside the field.
    errors: dict[str, str] = field(default_factory=dict)
    #: Messages about no field on the form, shown above it.
    problems: list[str] = field(default_factory=list)
    key: str = field(default_factory=new_key)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.problems

    @property
    def status_code(self) -> int:
        """422 while the form shows errors, so the page's status says it was refused."""
        return 200 if self.ok else 422

    @classmethod
    def with_errors(
        cls,
        values: Mapping[str, str],
        errors: Iterable[Mapping[str, Any]],
        fields: Iterable[str],
        aliases: Mapping[str, str] | None = None,
    ) -> Form:
        """A form showing ``values`` again with the API's ``errors`` placed.

        ``fields`` are the inputs the form shows; ``aliases`` maps an API field to the input
        that stands for it (``expiry`` → ``expMonth``).
        """
        shown = set(fields)
        form = cls(values=dict(values))
        for error in errors:
            name = (aliases or {}).get(error["field"], error["field"])
            if name in shown and name not in form.errors:
                form.errors[name] = error["message"]
            else:
                form.problems.append(error["message"])
        return form


def after(
    values: Mapping[str, str],
    errors: Iterable[Mapping[str, Any]],
    fields: Iterable[str],
    aliases: Mapping[str, str] | None = None,
) -> Form:
    """The form to draw after a submission: a fresh one (with a new key) when the API took
    it, the same values with the errors placed when it did not."""
    errors = list(errors)
    if not errors:
        return Form()
    return Form.with_errors(values, errors, fields, aliases)


def choice(value: str | None, allowed: tuple[str, ...]) -> str | None:
    """``value`` if it is one of ``allowed`` (an API enum's values), else None.

    A select or an address can send anything; an unknown enum value would make the API
    refuse the whole request as malformed rather than show a mistake to correct.
    """
    return value if value in allowed else None


def whole_number(values: Mapping[str, str], name: str, errors: dict[str, str]) -> int | None:
    """A number field, or an error beside it in ``errors``.

    Checked before the mutation because the API takes an ``Int``: text there would make the
    whole request malformed (a top-level error), not a mistake shown beside the field.
    """
    text = values.get(name, "").strip()
    if text.isascii() and text.isdigit():
        return int(text)
    errors[name] = "enter digits only"
    return None


async def read_all(request: Request, name: str) -> list[str]:
    """Every value submitted under ``name`` (checkboxes of one name), which :func:`read`
    keeps only one of."""
    async with request.form() as submitted:
        return [value for value in submitted.getlist(name) if isinstance(value, str)]


async def read(request: Request) -> dict[str, str]:
    """The submitted text fields (the CSRF token and form key included; files ignored)."""
    async with request.form() as submitted:
        return {name: value for name, value in submitted.items() if isinstance(value, str)}
