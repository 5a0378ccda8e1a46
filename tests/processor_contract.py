"""The contract every payment processor passes, whoever wrote it.

A processor's test module subclasses :class:`ProcessorContract` and supplies an async
``harness`` fixture (a :class:`ContractHarness`): the processor configured against its local
fake over real HTTP, a way to store a payment method that behaves as asked, and — for
processors that call kassa back — the callback its real system would send, signed or forged.
The same assertions then run for the simulator, the card-token processors and external
modules, so "it speaks the interface" means one thing for all of them.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Protocol

import pytest

from billing.payment_systems import (
    Capability,
    ForgedNotification,
    IncomingRequest,
    NotificationKind,
    NotifiedProcessor,
    reject_mismatch,
)
from billing.processing import (
    CardProcessor,
    CardToken,
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    ProcessorTimeout,
)


class Behaviour(StrEnum):
    """What charges to a stored method do (the fakes decide by their test numbers)."""

    APPROVE = "APPROVE"
    DECLINE = "DECLINE"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    TIMEOUT = "TIMEOUT"


class ContractHarness(Protocol):
    """A processor wired to its fake, as a processor's test module provides it."""

    processor: CardProcessor

    async def stored_method(self, behaviour: Behaviour) -> CardToken:
        """A payment method stored through the processor whose charges do ``behaviour``."""
        ...

    def signed_notification(
        self,
        kind: NotificationKind,
        request: ChargeRequest,
        result: ChargeResult,
        *,
        amount: int | None = None,
        event_id: str = "evt_1",
    ) -> IncomingRequest:
        """The callback the real system sends about ``result``, signed as it signs;
        ``amount`` overrides the amount it names."""
        ...

    def forged(self, request: IncomingRequest) -> IncomingRequest:
        """``request`` with a signature that does not verify."""
        ...


def _key() -> str:
    """A fresh idempotency key, like ``attempt-<id>`` (fakes outlive a single test)."""
    return f"attempt-{uuid.uuid4().hex[:12]}"


def _request(method: CardToken, amount: int = 1250, currency: str = "USD") -> ChargeRequest:
    return ChargeRequest(
        token=method.token,
        amount=amount,
        currency=currency,
        idempotency_key=_key(),
        description="Invoice INV-1",
    )


def _notified(harness: ContractHarness) -> NotifiedProcessor:
    processor = harness.processor
    if Capability.NOTIFICATIONS not in getattr(processor, "capabilities", frozenset()):
        pytest.skip(f"{processor.name} does not call kassa back")
    assert isinstance(processor, NotifiedProcessor)
    return processor


class ProcessorContract:
    """The assertions; subclasses provide the ``harness`` fixture."""

    async def test_an_approved_charge_names_its_amount_and_reference(
        self, harness: ContractHarness
    ) -> None:
        method = await harness.stored_method(Behaviour.APPROVE)
        request = _request(method)
        result = await harness.processor.charge(request)
        assert result.status == ChargeOutcome.SUCCEEDED
        assert (result.amount, result.currency) == (request.amount, request.currency)
        assert result.processor_reference

    async def test_a_replayed_key_charges_once(self, harness: ContractHarness) -> None:
        method = await harness.stored_method(Behaviour.APPROVE)
        request = _request(method)
        first = await harness.processor.charge(request)
        again = await harness.processor.charge(request)
        assert again.processor_reference == first.processor_reference
        assert again.status == first.status
        found = await harness.processor.lookup(request.idempotency_key)
        assert found is not None and found.processor_reference == first.processor_reference

    async def test_a_declined_card_is_a_result_with_a_code(self, harness: ContractHarness) -> None:
        method = await harness.stored_method(Behaviour.DECLINE)
        result = await harness.processor.charge(_request(method))
        assert result.status == ChargeOutcome.DECLINED
        assert result.decline_code

    async def test_insufficient_funds_has_its_own_code(self, harness: ContractHarness) -> None:
        method = await harness.stored_method(Behaviour.INSUFFICIENT_FUNDS)
        result = await harness.processor.charge(_request(method))
        assert result.status == ChargeOutcome.DECLINED
        assert result.decline_code == "insufficient_funds"

    async def test_a_timeout_is_unknown_and_found_again_by_its_key(
        self, harness: ContractHarness
    ) -> None:
        method = await harness.stored_method(Behaviour.TIMEOUT)
        request = _request(method, amount=777)
        with pytest.raises(ProcessorTimeout):
            await harness.processor.charge(request)
        found = await harness.processor.lookup(request.idempotency_key)
        assert found is not None
        assert found.status != ChargeOutcome.UNKNOWN
        assert found.amount == 777

    async def test_a_key_never_sent_is_not_found(self, harness: ContractHarness) -> None:
        assert await harness.processor.lookup(_key()) is None

    async def test_part_of_a_charge_can_be_refunded(self, harness: ContractHarness) -> None:
        method = await harness.stored_method(Behaviour.APPROVE)
        charged = await harness.processor.charge(_request(method, amount=2000))
        assert charged.processor_reference is not None
        refund = await harness.processor.refund(charged.processor_reference, 500, _key())
        assert refund.succeeded, refund.message

    async def test_a_signed_notification_names_the_charge_and_its_amount(
        self, harness: ContractHarness
    ) -> None:
        processor = _notified(harness)
        method = await harness.stored_method(Behaviour.APPROVE)
        request = _request(method, amount=4321)
        result = await harness.processor.charge(request)
        callback = harness.signed_notification(NotificationKind.SUCCEEDED, request, result)
        notification = processor.parse_notification(callback)
        assert notification.kind == NotificationKind.SUCCEEDED
        assert (
            notification.idempotency_key == request.idempotency_key
            or notification.processor_reference == result.processor_reference
        )
        assert reject_mismatch(notification, request.amount, request.currency) is None
        assert processor.parse_notification(callback).event_id == notification.event_id
        assert 200 <= processor.acknowledge(notification).status < 300

    async def test_a_forged_notification_is_refused(self, harness: ContractHarness) -> None:
        processor = _notified(harness)
        method = await harness.stored_method(Behaviour.APPROVE)
        request = _request(method)
        result = await harness.processor.charge(request)
        callback = harness.signed_notification(NotificationKind.SUCCEEDED, request, result)
        with pytest.raises(ForgedNotification):
            processor.parse_notification(harness.forged(callback))

    async def test_a_notification_for_another_amount_is_caught(
        self, harness: ContractHarness
    ) -> None:
        processor = _notified(harness)
        method = await harness.stored_method(Behaviour.APPROVE)
        request = _request(method, amount=1000)
        result = await harness.processor.charge(request)
        callback = harness.signed_notification(
            NotificationKind.SUCCEEDED, request, result, amount=1, event_id="evt_wrong"
        )
        notification = processor.parse_notification(callback)
        assert reject_mismatch(notification, request.amount, request.currency) is not None

    async def test_a_chargeback_reverses(self, harness: ContractHarness) -> None:
        processor = _notified(harness)
        method = await harness.stored_method(Behaviour.APPROVE)
        request = _request(method)
        result = await harness.processor.charge(request)
        callback = harness.signed_notification(
            NotificationKind.REVERSED, request, result, event_id="evt_chargeback"
        )
        assert processor.parse_notification(callback).kind == NotificationKind.REVERSED
