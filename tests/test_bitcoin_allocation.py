"""A customer's receiving addresses: the next unused index of its owner's wallet, a fresh one
on each request, never one address for two customers — even with many requests at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from billing.bitcoin_addresses import MAX_UNFUNDED, request_address
from billing.bitcoin_wallets import WalletInput, set_wallet
from billing.db import Database
from billing.errors import UserError
from billing.models import BitcoinAddress
from tests.bitcoin_keys import TESTNET_TPUB, TESTNET_VPUB
from tests.factories import admin_viewer, customer_viewer, make_customer, make_reseller
from tests.graphql_support import Api, create_customer, row_counts

pytest_plugins = ["tests.graphql_fixtures"]

#: BIP84's account 0 on testnet: its receiving addresses 0/0 and 0/1.
FIRST = "tb1qcr8te4kr609gcawutmrza0j4xv80jy8zmfp6l0"
SECOND = "tb1qnjg0jd8228aq7egyzacy8cys3knf9xvrn9d67m"
RATES = [("USD", "65000.00")]
ADDRESS = "address addressType network createdAt firstFundedAt"


async def _provider_wallet(db: Database, key: str = TESTNET_VPUB) -> None:
    async with db.transaction() as session:
        await set_wallet(session, admin_viewer(), WalletInput(key, fixed_rates=RATES))


async def _request(api: Api, customer_id: str) -> dict[str, Any]:
    return await api.mutate(
        "requestBitcoinAddress", {"customerId": customer_id}, f"bitcoinAddress {{ {ADDRESS} }}"
    )


async def test_each_request_gives_the_next_unused_address(api: Api, db: Database) -> None:
    await _provider_wallet(db)
    ada = (await create_customer(api))["id"]
    first = await _request(api, ada)
    assert first["errors"] == []
    assert first["bitcoinAddress"]["address"] == FIRST
    assert first["bitcoinAddress"]["addressType"] == "NATIVE_SEGWIT"
    second = await _request(api, ada)
    assert second["bitcoinAddress"]["address"] == SECOND
    seen = await api.run(
        "query($id: ID!) { customer(id: $id) { bitcoinAddress { address } "
        "bitcoinAddresses { address firstFundedAt } } }",
        {"id": ada},
    )
    assert seen["customer"]["bitcoinAddress"] == {"address": SECOND}
    assert seen["customer"]["bitcoinAddresses"] == [
        {"address": SECOND, "firstFundedAt": None},
        {"address": FIRST, "firstFundedAt": None},
    ]
    wallet = await api.run("{ bitcoinWallet { addressesAllocated unfundedAddresses } }")
    assert wallet["bitcoinWallet"] == {"addressesAllocated": 2, "unfundedAddresses": 2}


async def test_no_address_without_a_wallet(api: Api, db: Database) -> None:
    ada = (await create_customer(api))["id"]
    before = await row_counts(db)
    payload = await _request(api, ada)
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [
        ("NO_BITCOIN_WALLET", "customerId")
    ]
    assert await row_counts(db) == before


async def test_a_customer_holds_a_bounded_number_of_unfunded_addresses(db: Database) -> None:
    """So that asking again and again cannot push the wallet past its gap limit."""
    await _provider_wallet(db)
    async with db.transaction() as session:
        customer = await make_customer(session)
    me = customer_viewer(customer.id)
    for _ in range(MAX_UNFUNDED):
        async with db.transaction() as session:
            await request_address(session, me, customer.id)
    with pytest.raises(UserError) as refused:
        async with db.transaction() as session:
            await request_address(session, me, customer.id)
    assert refused.value.code == "TOO_MANY_UNFUNDED_ADDRESSES"
    async with db.transaction() as session:  # one is paid to: another may be asked for
        row = await session.scalar(select(BitcoinAddress).limit(1))
        assert row is not None
        row.first_funded_at = row.created_at
    async with db.transaction() as session:
        added = await request_address(session, me, customer.id)
    assert added.index == MAX_UNFUNDED


async def test_each_owner_hands_out_its_own_wallet(db: Database) -> None:
    await _provider_wallet(db)
    async with db.transaction() as session:
        reseller = await make_reseller(session)
        await set_wallet(
            session, admin_viewer(reseller.id), WalletInput(TESTNET_TPUB, fixed_rates=RATES)
        )
        theirs = await make_customer(session, reseller_id=reseller.id)
        ours = await make_customer(session)
        their_address = await request_address(session, admin_viewer(), theirs.id)
        our_address = await request_address(session, admin_viewer(), ours.id)
    assert (their_address.index, our_address.index) == (0, 0)
    assert our_address.address == FIRST and their_address.address != FIRST


async def test_simultaneous_requests_never_share_an_address(db: Database) -> None:
    """Forty requests from twenty customers at once, each in its own transaction: on
    PostgreSQL they really run side by side, so only the wallet row's lock keeps them apart."""
    await _provider_wallet(db)
    async with db.transaction() as session:
        customers = [await make_customer(session, name=f"C{n}") for n in range(20)]

    async def ask(customer_id: int) -> BitcoinAddress:
        async with db.transaction() as session:
            return await request_address(session, admin_viewer(), customer_id)

    given = await asyncio.gather(*(ask(c.id) for c in customers * 2))
    assert sorted(a.index for a in given) == list(range(40))
    assert len({a.address for a in given}) == 40
    async with db.session() as session:
        rows = (await session.scalars(select(BitcoinAddress))).all()
    assert len(rows) == 40 and len({r.address for r in rows}) == 40
