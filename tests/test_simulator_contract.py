"""The simulator passes the contract every processor passes (:mod:`tests.processor_contract`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from billing.processing import CardDetails, CardToken
from processors.simulator import SimulatorProcessor
from tests.processor_contract import Behaviour, ProcessorContract

#: Stripe's published test numbers, which the simulator follows.
_NUMBERS = {
    Behaviour.APPROVE: "4242424242424242",
    Behaviour.DECLINE: "4000000000000002",
    Behaviour.INSUFFICIENT_FUNDS: "4000000000009995",
    Behaviour.TIMEOUT: "4000000000000119",
}


@dataclass
class SimulatorHarness:
    processor: SimulatorProcessor

    async def stored_method(self, behaviour: Behaviour) -> CardToken:
        card = CardDetails(number=_NUMBERS[behaviour], exp_month=12, exp_year=2099, cvc="123")
        return await self.processor.tokenize(card)


class TestSimulatorContract(ProcessorContract):
    @pytest.fixture
    def harness(self) -> SimulatorHarness:
        return SimulatorHarness(SimulatorProcessor(namespace=f"contract-{uuid.uuid4().hex}"))
