"""Fuzzing the GraphQL API: schemathesis generates queries and mutations from the schema and
sends them, as the provider's administrator, to the real app on a database with customers,
accounts, invoices, payments and cards; no answer may be a 5xx or an internal error.

Why: the other tests send what their authors thought of; a fuzzer sends what nobody did —
huge numbers, odd Unicode, dates in year 1, ids of the wrong type, every optional argument
at once — and each must be refused as the caller's mistake (a ``UserError``, a validation
error, "not found") or done, never crash.  Ids are drawn half from the objects that exist
and half at random; strings a third each from values the business rules accept
(:data:`PLAUSIBLE`), from decimal amounts and at random — so mutations reach real rows and
get past their first check often enough to fuzz the rules behind it.

Bounded for CI: :data:`EXAMPLES` cases per operation (``KASSA_FUZZ_EXAMPLES``, default 10,
about two minutes for the whole schema on two cores); raise it to fuzz for longer.  The
installation is not in test mode: moving the test clock to a random date (year 9999) would
run every bill run on the way, which is what the clock is for, not a bug.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.graphql import nodes
from schemathesis.schemas import APIOperation

from app import create_app
from billing.db import Database
from schema import schema as strawberry_schema
from schema.relay import encode_id
from settings import Settings
from tests.factories import (
    ADMIN_EMAIL,
    APPROVE,
    DECLINE,
    PASSWORD,
    admin_with_login,
    customer_with_login,
    issue_invoice,
    new_party,
    settle_in_cash,
    store_card,
)
from tests.graphql_support import BASE_URL, api_key

EXAMPLES = int(os.environ.get("KASSA_FUZZ_EXAMPLES", "10"))

#: Strawberry's MaskErrors answer for a bug (the app runs outside development, as in
#: production); a code of its own would be INTERNAL_ERROR.
MASKED = "Unexpected error."

SCHEMA = schemathesis.graphql.from_file(str(strawberry_schema))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations() if isinstance(result, Ok)]

#: Global ids of the objects of the test's world, filled in by the ``world`` fixture before
#: the first case is drawn (the ``ID`` strategy reads it as it draws).
KNOWN_IDS: list[str] = []


def _known_id(index: int) -> str:
    return KNOWN_IDS[index % len(KNOWN_IDS)] if KNOWN_IDS else ""


#: Strings a business rule accepts — currencies, time zones, card numbers, addresses, the
#: test users' credentials — so that mutations get past the first check now and then.
PLAUSIBLE = (
    "USD",
    "EUR",
    "JPY",
    "BTC",
    "usd",
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Mobile",
    APPROVE,
    DECLINE,
    "123",
    "fuzz-1@fuzz.example",
    ADMIN_EMAIL,
    PASSWORD,
)

schemathesis.graphql.scalar(
    "ID",
    st.one_of(st.integers(min_value=0).map(_known_id), st.text(max_size=40)).map(nodes.String),
)
schemathesis.graphql.scalar(
    "String",
    st.one_of(
        st.sampled_from(PLAUSIBLE),
        st.from_regex(r"-?[0-9]{1,22}(\.[0-9]{1,10})?", fullmatch=True),  # amounts
        st.text(),
    ).map(nodes.String),
)


@pytest.fixture
async def world(db: Database) -> AsyncIterator[None]:
    """Two customers of the provider, each with a login, an account, an invoice part paid in
    cash and a card, and a neighbour without any; an administrator who signs in."""
    ids: list[str] = []
    for number in ("FUZZ-1", "FUZZ-2"):
        party = await customer_with_login(db, f"{number.lower()}@fuzz.example")
        await new_party(db, name=f"Neighbour of {number}")
        invoice = await issue_invoice(db, party, 2500, 1200)
        payment = await settle_in_cash(db, party, 1000)
        card = await store_card(db, party, make_default=True)
        ids += [
            encode_id("Customer", party.id),
            encode_id("Account", party.account.id),
            encode_id("Invoice", invoice.id),
            encode_id("Payment", payment.id),
            encode_id("PaymentMethod", card.id),
        ]
    await admin_with_login(db)
    KNOWN_IDS[:] = ids
    yield
    KNOWN_IDS.clear()


@pytest.fixture
async def admin(settings: Settings, db: Database, world: None) -> AsyncIterator[httpx.AsyncClient]:
    """The app outside test mode, called with a READ_WRITE key of the provider."""
    app = create_app(settings.with_(test_mode=False), database=db)
    headers = {"authorization": f"Bearer {await api_key(db)}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=headers
    ) as client:
        yield client


def _failure(response: httpx.Response) -> str | None:
    """What is wrong with an answer: a 5xx, or an error that is a bug."""
    if response.status_code >= 500:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    body: dict[str, Any] = response.json()
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if error.get("message") == MASKED or code == "INTERNAL_ERROR":
            return f"internal error: {error}"
    return None


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(data=st.data())
async def test_no_operation_crashes_the_server(
    operation: APIOperation[Any, Any, Any, Any], admin: httpx.AsyncClient, data: st.DataObject
) -> None:
    """:data:`EXAMPLES` generated documents of one root field, each answered without a bug:
    valid ones, and invalid ones (a required argument left out, a value of the wrong type)
    that GraphQL's validation must refuse.  The examples share the world: what one mutation
    changed, the next one meets."""
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    document = str(data.draw(cases, label="case").body)
    problem = _failure(await admin.post("/graphql", json={"query": document}))
    assert problem is None, f"{problem}\n{document}"
