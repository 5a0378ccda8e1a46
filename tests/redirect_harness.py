"""What the redirect systems' test harnesses share (PayPal, Skrill, Payarena, Remita).

Each system's test module builds its :class:`~tests.redirect_contract.RedirectHarness` on
:class:`FakeHarness`, because every fake's page has the same three buttons and every fake hangs
on demand.  What is left in the module is the system's own: its notifications, its forgeries
and how a payment expires there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from billing.payment_systems import RedirectProcessor, RedirectRequest, RedirectStart
from tests.redirect_browser import press
from tests.redirect_contract import Choice, RedirectHarness, request_for


class HangingFake(Protocol):
    """A fake whose next API call can be made to hang past the processor's timeout."""

    def hang(self) -> None: ...


FakeT = TypeVar("FakeT", bound=HangingFake)
ProcessorT = TypeVar("ProcessorT", bound=RedirectProcessor)


@dataclass
class FakeHarness(Generic[FakeT, ProcessorT]):
    """A processor wired to its fake, and a customer at the fake's page."""

    fake: FakeT
    processor: ProcessorT

    async def pay(self, start: RedirectStart, choice: Choice) -> dict[str, str]:
        """Press the fake's button named for ``choice`` (``approve``, ``cancel``, ``decline``)."""
        return await press(start.url, choice.lower(), start.form_fields)

    def hang(self) -> None:
        self.fake.hang()


class Clock:
    """A processor's clock, moved by the tests (to let a payment expire)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def move_to_expiry(self, start: RedirectStart) -> None:
        """Move to the moment ``start``'s payment expires (the system said when)."""
        assert start.expires_at is not None
        self.now = start.expires_at


def request_with(harness: RedirectHarness, **changes: Any) -> RedirectRequest:
    """The contract's payment (:func:`~tests.redirect_contract.request_for`) with ``changes``:
    another amount, currency, description or key, where a test is about one of them."""
    return replace(request_for(harness), **changes)
