"""The simulator passes the contract every processor passes (:mod:`tests.processor_contract`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

import pytest

from billing.payment_systems import IncomingRequest, NotificationKind, ProcessorConfig
from billing.processing import CardDetails, CardToken, ChargeRequest, ChargeResult
from processors.simulator import SIGNATURE_HEADER, SimulatorProcessor, notification_request
from tests.processor_contract import Behaviour, ProcessorContract

#: Stripe's published test numbers, which the simulator follows.
_NUMBERS = {
    Behaviour.APPROVE: "4242424242424242",
    Behaviour.DECLINE: "4000000000000002",
    Behaviour.INSUFFICIENT_FUNDS: "4000000000009995",
    Behaviour.TIMEOUT: "4000000000000119",
}


_SECRET = "whsec_contract"


@dataclass
class SimulatorHarness:
    processor: SimulatorProcessor

    async def stored_method(self, behaviour: Behaviour) -> CardToken:
        card = CardDetails(number=_NUMBERS[behaviour], exp_month=12, exp_year=2099, cvc="123")
        return await self.processor.tokenize(card)

    def signed_notification(
        self,
        kind: NotificationKind,
        request: ChargeRequest,
        result: ChargeResult,
        *,
        amount: int | None = None,
        event_id: str = "evt_1",
    ) -> IncomingRequest:
        return notification_request(
            _SECRET,
            kind,
            event_id=event_id,
            idempotency_key=request.idempotency_key,
            reference=result.processor_reference,
            amount=request.amount if amount is None else amount,
            currency=request.currency,
        )

    def forged(self, request: IncomingRequest) -> IncomingRequest:
        signed = request.headers[SIGNATURE_HEADER]
        stamp, _, _signature = signed.partition(",v1=")
        headers = {**request.headers, SIGNATURE_HEADER: f"{stamp},v1={'0' * 64}"}
        return replace(request, headers=headers)


class TestSimulatorContract(ProcessorContract):
    @pytest.fixture
    def harness(self) -> SimulatorHarness:
        config = ProcessorConfig(credentials={"webhook_secret": _SECRET})
        return SimulatorHarness(
            SimulatorProcessor(namespace=f"contract-{uuid.uuid4().hex}", config=config)
        )
