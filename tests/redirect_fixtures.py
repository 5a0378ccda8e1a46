"""Fixtures for redirect payment tests (``pytest_plugins = ["tests.redirect_fixtures"]``): the
PayPal, Payarena and Remita fakes served over real HTTP on loopback, and a processor account of
the provider's for each, pointed at its fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from billing.db import Database
from billing.processor_accounts import AccountInput, create_account
from processors.fakes import payarena as payarena_fake
from processors.fakes import paypal as paypal_fake
from processors.fakes import remita as remita_fake
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
def paypal_server(paypal: paypal_fake.FakePayPal) -> Iterator[LiveServer]:
    with serving(paypal.app) as live:
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


@pytest.fixture
async def paypal_account(db: Database, paypal_server: LiveServer) -> int:
    credentials = {
        "client_id": paypal_fake.CLIENT_ID,
        "client_secret": paypal_fake.CLIENT_SECRET,
        "webhook_id": paypal_fake.WEBHOOK_ID,
    }
    return await make_redirect_account(
        db, "paypal", paypal_server.url, credentials, [("USD", "1.00")]
    )


@pytest.fixture
async def payarena_account(db: Database, payarena_server: LiveServer) -> int:
    credentials = {"merchant_id": payarena_fake.MERCHANT_ID, "secret_key": payarena_fake.SECRET_KEY}
    return await make_redirect_account(
        db, "payarena", payarena_server.url, credentials, [("NGN", "100.00")]
    )


@pytest.fixture
async def remita_account(db: Database, remita_server: LiveServer) -> int:
    credentials = {
        "merchant_id": remita_fake.MERCHANT_ID,
        "service_type_id": remita_fake.SERVICE_TYPE_ID,
        "api_key": remita_fake.API_KEY,
    }
    return await make_redirect_account(
        db, "remita", remita_server.url, credentials, [("NGN", "50.00")]
    )
