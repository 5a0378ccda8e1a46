"""Cash terminal networks: the processor a terminal network's processor account names.

A terminal network is not called by kassa: its machines take the customer's cash and the
network pushes the payment in through kassa's signed ``/terminal/v1`` API
(:mod:`billing.terminals`, documented for integrators in ``docs/terminals.md``).  So this
processor only *declares* the network to the registry — the flow it supports
(:attr:`~billing.payment_systems.Capability.INBOUND`), no payment methods a customer stores,
and the one credential an administrator sets on the network's processor account,
``signing_secret``, the key both sides sign requests with (sealed at rest like every
processor credential and never shown back).

Administrators manage networks as processor accounts: one account per network, per owner (a
reseller's network reaches only that reseller's customers).  The card calls are refused,
since nothing is ever charged through a network.
"""

from __future__ import annotations

from billing.payment_systems import Capability, MethodKind, ProcessorConfig
from billing.processing import (
    CardDetails,
    CardToken,
    ChargeRefused,
    ChargeRequest,
    ChargeResult,
    RefundResult,
)


class CashTerminalProcessor:
    """A cash terminal network (registry name ``cash_terminal``)."""

    name = "cash_terminal"
    capabilities = frozenset({Capability.INBOUND})
    #: Cash pushed in by the network: no card brand or bank debit describes it.
    method_kinds: frozenset[MethodKind] = frozenset()

    def __init__(self, *, config: ProcessorConfig | None = None) -> None:
        """Made per request like every processor; billing reads the account's
        ``signing_secret`` itself to check a request, so nothing of ``config`` is kept."""

    def _refused(self) -> ChargeRefused:
        return ChargeRefused(
            "NOT_SUPPORTED", "a cash terminal network pushes payments in; kassa charges nothing"
        )

    async def tokenize(self, card: CardDetails) -> CardToken:
        raise self._refused()

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        raise self._refused()

    async def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """Never charged through, so nothing is ever found."""
        return None

    async def refund(
        self, processor_reference: str, amount: int, idempotency_key: str
    ) -> RefundResult:
        raise self._refused()
