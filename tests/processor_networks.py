"""The card networks a GraphQL test can collect through (``pytest_plugins =
["tests.processor_networks"]``, beside ``tests.graphql_fixtures``).

The ``network`` fixture is parametrized over three processors, so a test that takes it runs
once through each:

* ``simulator`` — no processor account: billing uses its default processor, in-process.
* ``stripe`` and ``authorize_net`` — the processor's local fake served over real HTTP on a
  free port, and a provider's processor account for it made through GraphQL
  (``createProcessorAccount``, with the credentials the fake takes and ``baseUrl`` pointing at
  it), so every card the provider's customers store, and every charge to one, goes there.

Each network names the test cards that approve, decline and are short of funds (the
processor's own sandbox numbers) and lists the charges it saw.  One server per fake serves the
whole session; each test gets a fresh fake behind it, because kassa's keys (``attempt-1``…)
restart with the database and must not replay an earlier test's charge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from processors.fakes.authorize_net import FakeAuthorizeNet
from processors.fakes.stripe import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET, FakeStripe
from processors.simulator import SimulatorProcessor
from tests import factories
from tests.bitcoin_chain import LiveServer, serving
from tests.graphql_support import Api

#: How long the fakes' "hang" cards keep their answer: longer than a short client timeout.
HANG_SECONDS = 3.0


@dataclass(frozen=True)
class Network:
    """A processor as a collection test sees it: its test cards and what it was asked."""

    name: str
    approve: str
    decline: str
    insufficient: str
    #: The ``processorResponse`` an insufficient-funds decline reads (each processor's words).
    insufficient_words: str
    _charges: Callable[[], list[int]]
    #: The fake (None for the simulator), for tests that look at it further.
    fake: Any = None

    def charges(self) -> list[str]:
        """Every charge the network saw, approved or declined, as decimal amounts, oldest
        first."""
        return [f"{amount / 100:.2f}" for amount in self._charges()]


class _Current:
    """An ASGI app handing each request to the fake of the test now running."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="session")
def _stripe_server() -> Iterator[tuple[_Current, LiveServer]]:
    current = _Current(FakeStripe().app)
    with serving(current) as server:
        yield current, server


@pytest.fixture(scope="session")
def _authorize_net_server() -> Iterator[tuple[_Current, LiveServer]]:
    current = _Current(FakeAuthorizeNet().app)
    with serving(current) as server:
        yield current, server


async def _account(api: Api, processor: str, base_url: str, credentials: dict[str, str]) -> None:
    """The provider's processor account for ``processor`` at ``base_url``, in TEST mode."""
    made = await api.mutate(
        "createProcessorAccount",
        {
            "name": f"Cards ({processor})",
            "processor": processor,
            "mode": "TEST",
            "baseUrl": base_url,
            "credentials": [{"name": k, "value": v} for k, v in credentials.items()],
            "minimums": [{"currency": "USD", "amount": "0.50"}],
            "methodKinds": ["VISA", "MASTERCARD"],
        },
        "processorAccount { id }",
    )
    assert made["errors"] == [], made


def _simulator() -> Network:
    return Network(
        "simulator",
        factories.APPROVE,
        factories.DECLINE,
        factories.INSUFFICIENT,
        "The card has insufficient funds.",
        lambda: [charge.amount for charge in SimulatorProcessor().charges()],
    )


async def _stripe(api: Api, request: pytest.FixtureRequest) -> Network:
    current, server = request.getfixturevalue("_stripe_server")
    fake = FakeStripe(hang_seconds=HANG_SECONDS)
    current.app = fake.app
    await _account(
        api,
        "stripe",
        server.url,
        {
            "secret_key": SECRET_KEY,
            "publishable_key": PUBLISHABLE_KEY,
            "webhook_secret": WEBHOOK_SECRET,
        },
    )
    return Network(
        "stripe",
        "4242424242424242",
        "4000000000000341",  # attaches, then declines (Stripe's testing page)
        "4000000000009995",
        "Your card has insufficient funds.",  # Stripe's message, passed on as it is
        lambda: [int(charge["amount"]) for charge in list(fake.charges.values())],
        fake,
    )


async def _authorize_net(api: Api, request: pytest.FixtureRequest) -> Network:
    current, server = request.getfixturevalue("_authorize_net_server")
    fake = FakeAuthorizeNet(hang_seconds=HANG_SECONDS)
    current.app = fake.app
    await _account(
        api,
        "authorize_net",
        f"{server.url}/xml/v1/request.api",
        {
            "api_login_id": fake.login,
            "transaction_key": fake.transaction_key,
            "signature_key": fake.signature_key,
            "client_key": fake.client_key,
        },
    )
    return Network(
        "authorize_net",
        "4111111111111111",  # a sandbox test card
        "4000000000000002",  # the fake's own: response code 2, reason 2
        "4000000000009995",  # the fake's own: reason 295, partially approved (prepaid card)
        "The card has insufficient funds.",
        lambda: [
            int(t.amount * 100)
            for t in list(fake.transactions.values())
            if t.kind == "authCaptureTransaction"
        ],
        fake,
    )


@pytest.fixture(params=["simulator", "stripe", "authorize_net"])
async def network(request: pytest.FixtureRequest, api: Api) -> Network:
    """The processor the provider's customers' cards go to (see the module's docstring)."""
    if request.param == "stripe":
        return await _stripe(api, request)
    if request.param == "authorize_net":
        return await _authorize_net(api, request)
    return _simulator()
