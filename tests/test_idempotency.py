"""Idempotency keys belong to their caller (the signed-in user or the API key), as Stripe's
belong to an account: two partners sending ``fee-1`` never meet, while one caller sending a
request again gets its first result back."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from billing.db import Database
from billing.models import Charge, IdempotencyRecord, Payment
from schema.relay import encode_id
from tests.factories import admin_with_login, new_party
from tests.graphql_support import Api, api_key, signed_in_api

pytest_plugins = ["tests.graphql_fixtures"]


def _charge(account_id: int, amount: str, key: str) -> dict[str, str]:
    return {
        "accountId": encode_id("Account", account_id),
        "description": "Monthly fee",
        "amount": amount,
        "currency": "USD",
        "idempotencyKey": key,
    }


async def _count(db: Database, model: type[Charge] | type[Payment]) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count(model.id))) or 0)


async def test_two_callers_with_the_same_key_get_two_effects(
    http: httpx.AsyncClient, db: Database, api: Api
) -> None:
    party = await new_party(db)
    other_partner = api.as_(await api_key(db))
    administrator = await signed_in_api(http, await admin_with_login(db))

    made = [
        await caller.mutate(
            "postCharge", _charge(party.account.id, amount, "fee-1"), "charge { id }"
        )
        for caller, amount in ((api, "29.99"), (other_partner, "5.00"), (administrator, "1.00"))
    ]
    assert [payload["errors"] for payload in made] == [[], [], []]
    assert len({payload["charge"]["id"] for payload in made}) == 3
    assert await _count(db, Charge) == 3
    async with db.session() as session:
        scopes = (await session.scalars(select(IdempotencyRecord.scope))).all()
    assert len(set(scopes)) == 3


async def test_one_caller_replays_its_key_and_cannot_reuse_it_for_something_else(
    db: Database, api: Api
) -> None:
    party = await new_party(db)
    first = await api.mutate(
        "postCharge", _charge(party.account.id, "29.99", "fee-1"), "charge { id }"
    )
    again = await api.mutate(
        "postCharge", _charge(party.account.id, "29.99", "fee-1"), "charge { id }"
    )
    assert again == first and await _count(db, Charge) == 1

    other_customer = await new_party(db, name="Second customer")
    reused = await api.mutate(
        "postCharge", _charge(other_customer.account.id, "29.99", "fee-1"), "charge { id }"
    )
    assert [error["code"] for error in reused["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    assert await _count(db, Charge) == 1


async def test_payments_with_the_same_key_from_two_partners_are_two_payments(
    db: Database, api: Api
) -> None:
    party = await new_party(db)
    other_partner = api.as_(await api_key(db))
    payment = {
        "customerId": encode_id("Customer", party.id),
        "amount": "10.00",
        "currency": "USD",
        "method": "CASH",
        "idempotencyKey": "pay-1",
    }
    ids = set()
    for caller in (api, other_partner, api):
        recorded = await caller.mutate("recordPayment", payment, "payment { id }")
        assert recorded["errors"] == []
        ids.add(recorded["payment"]["id"])
    assert len(ids) == 2 and await _count(db, Payment) == 2
