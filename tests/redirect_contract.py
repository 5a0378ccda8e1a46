"""The contract every redirect payment system passes (PayPal, Skrill, Payarena, Remita).

A system's test module subclasses :class:`RedirectContract` and supplies an async ``harness``
fixture (a :class:`RedirectHarness`): the processor configured against its local fake over
real HTTP, and a customer who can act on the fake's page.  The customer's return is never
trusted: each test checks that only the system's own answer (a capture, a status query or a
verified notification) makes a payment count.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Protocol

import pytest

from billing.payment_systems import (
    ForgedNotification,
    IncomingRequest,
    NotificationKind,
    NotifiedProcessor,
    Payer,
    RedirectProcessor,
    RedirectRequest,
    RedirectStart,
    reject_mismatch,
)
from billing.processing import ChargeOutcome, ProcessorError


class Choice(StrEnum):
    """What the customer does on the system's page."""

    APPROVE = "APPROVE"
    CANCEL = "CANCEL"
    DECLINE = "DECLINE"


class RedirectHarness(Protocol):
    """A redirect processor wired to its fake, and a customer at the fake's page."""

    @property
    def processor(self) -> RedirectProcessor:
        """The processor, configured against the fake."""
        ...

    #: A currency the system takes and an amount above its minimum, in minor units.
    currency: str
    amount: int
    #: Whether the system signs its notifications (False: they only say "ask me").
    signs_notifications: bool

    async def pay(self, start: RedirectStart, choice: Choice) -> dict[str, str]:
        """Follow ``start`` to the fake's page as the customer would (GET the URL, or POST its
        form fields), do ``choice`` there, and return the query string the system appends to
        the return (or cancel) URL it sends the customer back to."""
        ...

    def hang(self) -> None:
        """Make the fake's next API call hang past the processor's timeout."""
        ...

    def expire(self, start: RedirectStart) -> None:
        """Let ``start``'s payment expire unpaid at the system (as if its lifetime passed)."""
        ...

    def notification(
        self,
        start: RedirectStart,
        request: RedirectRequest,
        kind: NotificationKind,
        *,
        amount: int | None = None,
        event_id: str = "evt_1",
    ) -> IncomingRequest:
        """The notification the system sends about ``start`` (signed, where it signs)."""
        ...

    def forged(self, notification: IncomingRequest) -> IncomingRequest:
        """``notification`` with a signature that does not verify."""
        ...


def request_for(harness: RedirectHarness, amount: int | None = None) -> RedirectRequest:
    """A redirect payment with every payer detail the systems ask for."""
    key = f"payment-{uuid.uuid4().hex[:12]}"
    return RedirectRequest(
        idempotency_key=key,
        amount=harness.amount if amount is None else amount,
        currency=harness.currency,
        description="Invoice INV-7",
        payer=Payer(customer_id=7, name="Ada Obi", email="ada@example.test"),
        return_url=f"https://kassa.example/portal/pay/return/{key}",
        cancel_url=f"https://kassa.example/portal/pay/cancel/{key}",
        notify_url="https://kassa.example/callbacks/3",
        phone="+2348012345678",
    )


def _notified(harness: RedirectHarness) -> NotifiedProcessor:
    assert isinstance(harness.processor, NotifiedProcessor)
    return harness.processor


class RedirectContract:
    """The assertions; subclasses provide the ``harness`` fixture."""

    async def test_an_approved_payment_is_confirmed_by_the_system(
        self, harness: RedirectHarness
    ) -> None:
        request = request_for(harness)
        start = await harness.processor.start_redirect(request)
        assert start.url.startswith("http") and start.external_id
        query = await harness.pay(start, Choice.APPROVE)
        result = await harness.processor.complete_return(start, query)
        assert result.status == ChargeOutcome.SUCCEEDED
        assert (result.amount, result.currency) == (request.amount, request.currency)
        status = await harness.processor.redirect_status(start)
        assert status.status == ChargeOutcome.SUCCEEDED

    async def test_a_canceled_payment_is_not_paid(self, harness: RedirectHarness) -> None:
        start = await harness.processor.start_redirect(request_for(harness))
        query = await harness.pay(start, Choice.CANCEL)
        result = await harness.processor.complete_return(start, query)
        assert result.status != ChargeOutcome.SUCCEEDED

    async def test_a_declined_payment_is_not_paid(self, harness: RedirectHarness) -> None:
        start = await harness.processor.start_redirect(request_for(harness))
        query = await harness.pay(start, Choice.DECLINE)
        result = await harness.processor.complete_return(start, query)
        assert result.status == ChargeOutcome.DECLINED

    async def test_coming_back_without_paying_proves_nothing(
        self, harness: RedirectHarness
    ) -> None:
        start = await harness.processor.start_redirect(request_for(harness))
        # The customer types the return address by hand, with what a success would carry.
        forged_query = {"status": "success", "token": start.external_id, "paymentId": "1"}
        result = await harness.processor.complete_return(start, forged_query)
        assert result.status != ChargeOutcome.SUCCEEDED

    async def test_a_system_that_does_not_answer_leaves_no_payment_behind(
        self, harness: RedirectHarness
    ) -> None:
        harness.hang()
        with pytest.raises(ProcessorError):
            await harness.processor.start_redirect(request_for(harness))

    async def test_an_abandoned_payment_expires(self, harness: RedirectHarness) -> None:
        start = await harness.processor.start_redirect(request_for(harness))
        harness.expire(start)
        status = await harness.processor.redirect_status(start)
        assert status.status == ChargeOutcome.DECLINED

    async def test_a_notification_names_the_payment(self, harness: RedirectHarness) -> None:
        processor = _notified(harness)
        request = request_for(harness)
        start = await harness.processor.start_redirect(request)
        await harness.pay(start, Choice.APPROVE)
        callback = harness.notification(start, request, NotificationKind.SUCCEEDED)
        notification = processor.parse_notification(callback)
        assert (
            notification.idempotency_key == request.idempotency_key
            or notification.processor_reference == start.external_id
        )
        assert processor.parse_notification(callback).event_id == notification.event_id
        assert 200 <= processor.acknowledge(notification).status < 300
        if harness.signs_notifications:
            assert notification.kind == NotificationKind.SUCCEEDED
            assert reject_mismatch(notification, request.amount, request.currency) is None
        else:
            assert notification.kind == NotificationKind.CHECK_STATUS

    async def test_a_forged_notification_is_refused(self, harness: RedirectHarness) -> None:
        if not harness.signs_notifications:
            pytest.skip("unsigned notifications count only through a status query")
        processor = _notified(harness)
        request = request_for(harness)
        start = await harness.processor.start_redirect(request)
        callback = harness.notification(start, request, NotificationKind.SUCCEEDED)
        with pytest.raises(ForgedNotification):
            processor.parse_notification(harness.forged(callback))

    async def test_a_notification_for_another_amount_is_caught(
        self, harness: RedirectHarness
    ) -> None:
        if not harness.signs_notifications:
            pytest.skip("unsigned notifications name no amount kassa would trust")
        processor = _notified(harness)
        request = request_for(harness)
        start = await harness.processor.start_redirect(request)
        await harness.pay(start, Choice.APPROVE)
        callback = harness.notification(
            start, request, NotificationKind.SUCCEEDED, amount=request.amount + 100
        )
        notification = processor.parse_notification(callback)
        assert reject_mismatch(notification, request.amount, request.currency) is not None
