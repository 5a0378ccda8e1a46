"""Fixtures for the GraphQL and app tests (``pytest_plugins = ["tests.graphql_fixtures"]``).

The app is given the test's ``db`` fixture, so no lifespan is needed; ``tests/test_app.py``
runs the lifespan itself where that is what it tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from app import create_app
from billing.db import Database
from settings import Settings
from tests.graphql_support import BASE_URL, Api, api_key


@pytest.fixture
async def http(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as client:
        yield client


@pytest.fixture
async def strawberry_http(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The same app with compiled reads off: every operation through Strawberry (to
    compare compiled, prepared and JSON reads with)."""
    app = create_app(replace(settings, compiled_reads=False), database=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as client:
        yield client


@pytest.fixture
async def api(http: httpx.AsyncClient, db: Database) -> Api:
    """The provider's partner: a READ_WRITE API key that sees every customer."""
    return Api(http, await api_key(db))
