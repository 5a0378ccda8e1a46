"""Fixtures for redirect payment tests (``pytest_plugins = ["tests.redirect_fixtures"]``): the
PayPal, Skrill, Payarena and Remita fakes served over real HTTP on loopback, and a processor account of
the provider's for each, pointed at its fake."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from billing.db import Database
from billing.processor_accounts import AccountInput, create_account
from processors.fakes import payarena as payarena_fake
from processors.fakes import paypal as paypal_fake
from processors.fakes import remita as remita_fake
from processors.fakes import skrill as skrill_fake
from tests.bitcoin_chain import LiveServer, serving
from tests.factories import admin_viewer

# Each test has fresh fakes: the database starts again at payment 1, and a system keeps what
# it was asked under ``payment-1`` (as the real ones do, for idempotency).


@pytest.fixture
def paypal() -> paypal_fake.FakePayPal:
    return paypal_fake.FakePayPal()


@pytest.fixture
def payarena() -> payarena_fake.FakePayarena:
    return payarena_fake.FakePayarena()


@pytest.fixture
def remita() -> remita_fake.FakeRemita:
    return remita_fake.FakeRemita()


@pytest.fixture
def skrill() -> skrill_fake.FakeSkrill:
    return skrill_fake.FakeSkrill()


@pytest.fixture
def paypal_server(paypal: paypal_fake.FakePayPal) -> Iterator[LiveServer]:
    with serving(paypal.app) as live:
        yield live


@pytest.fixture
def skrill_server(skrill: skrill_fake.FakeSkrill) -> Iterator[LiveServer]:
    with serving(skrill.app) as live:
        yield live


@pytest.fixture
def payarena_server(payarena: payarena_fake.FakePayarena) -> Iterator[LiveServer]:
    with serving(payarena.app) as live:
        yield live


@pytest.fixture
def remita_server(remita: remita_fake.FakeRemita) -> Iterator[LiveServer]:
    with serving(remita.app) as live:
        yield live


async def make_redirect_account(
    db: Database,
    processor: str,
    url: str,
    credentials: dict[str, str],
    minimums: list[tuple[str, str]],
    reseller_id: int | None = None,
) -> int:
    async with db.transaction() as session:
        made = await create_account(
            session,
            admin_viewer(),
            AccountInput(
                name=processor.capitalize(),
                processor=processor,
                credentials=credentials,
                base_url=url,
                minimums=minimums,
                method_kinds=[],
            ),
            reseller_id,
        )
    return made.id


#: Each system's fake credentials and the minimum its account takes (in the currency its
#: customers pay in: Payarena and Remita take naira only).
ACCOUNTS: dict[str, tuple[dict[str, str], tuple[str, str]]] = {
    "paypal": (
        {
            "client_id": paypal_fake.CLIENT_ID,
            "client_secret": paypal_fake.CLIENT_SECRET,
            "webhook_id": paypal_fake.WEBHOOK_ID,
        },
        ("USD", "1.00"),
    ),
    "skrill": (
        {
            "merchant_email": skrill_fake.MERCHANT_EMAIL,
            "merchant_id": skrill_fake.MERCHANT_ID,
            "secret_word": skrill_fake.SECRET_WORD,
            "mqi_password": skrill_fake.MQI_PASSWORD,
        },
        ("USD", "1.00"),
    ),
    "payarena": (
        {"merchant_id": payarena_fake.MERCHANT_ID, "secret_key": payarena_fake.SECRET_KEY},
        ("NGN", "100.00"),
    ),
    "remita": (
        {
            "merchant_id": remita_fake.MERCHANT_ID,
            "service_type_id": remita_fake.SERVICE_TYPE_ID,
            "api_key": remita_fake.API_KEY,
        },
        ("NGN", "50.00"),
    ),
}


async def account_at_fake(db: Database, processor: str, server: LiveServer) -> int:
    """The provider's account of ``processor``, pointed at its fake served by ``server``."""
    credentials, minimum = ACCOUNTS[processor]
    return await make_redirect_account(db, processor, server.url, credentials, [minimum])


@pytest.fixture
async def paypal_account(db: Database, paypal_server: LiveServer) -> int:
    return await account_at_fake(db, "paypal", paypal_server)


@pytest.fixture
async def skrill_account(db: Database, skrill_server: LiveServer) -> int:
    return await account_at_fake(db, "skrill", skrill_server)


@pytest.fixture
async def payarena_account(db: Database, payarena_server: LiveServer) -> int:
    return await account_at_fake(db, "payarena", payarena_server)


@pytest.fixture
async def remita_account(db: Database, remita_server: LiveServer) -> int:
    return await account_at_fake(db, "remita", remita_server)


@dataclass(frozen=True, slots=True)
class RedirectSystem:
    """One redirect system for tests parametrized over all four: its name, the provider's
    account at its fake, and the currency its customers pay in."""

    name: str
    account_id: int
    currency: str


@pytest.fixture(params=list(ACCOUNTS))
async def redirect_system(db: Database, request: pytest.FixtureRequest) -> RedirectSystem:
    """Each redirect system in turn, served by its (fresh) fake."""
    name = str(request.param)
    server: LiveServer = request.getfixturevalue(f"{name}_server")
    return RedirectSystem(name, await account_at_fake(db, name, server), ACCOUNTS[name][1][0])
