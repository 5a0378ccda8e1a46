"""Bitcoin wallet settings: the keys accepted and refused (and nothing stored when refused),
the address type a key implies, rates, confirmations, and one key per owner."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from billing.bitcoin import AddressType
from billing.bitcoin_wallets import WalletInput, get_wallet, set_wallet
from billing.db import Database
from billing.errors import UserError
from billing.models import BitcoinRateSource, BitcoinWallet, Rate
from settings import Settings
from tests.bitcoin_keys import (
    BIP49_TPRV,
    BIP84_ROOT_ZPUB,
    BIP84_ZPRV,
    BIP84_ZPUB,
    MNEMONIC,
    SLIP132_YPUB,
    TESTNET_TPUB,
    TESTNET_UPUB,
    TESTNET_VPUB,
    VPUB_VERSION,
    WIF,
    reencoded,
    with_typo,
)
from tests.factories import admin_viewer, make_reseller
from tests.graphql_support import Api, row_counts

pytest_plugins = ["tests.graphql_fixtures"]

WALLET_FIELDS = """resellerId network accountKey addressType minimumPayment { amount currency }
    confirmationsRequired rateSource fixedRates { currency price { amount currency } }
    priceEndpoints { currency url jsonPath } addressesAllocated unfundedAddresses warnings
    updatedAt"""
USD_RATE = [{"currency": "USD", "price": "65000.00"}]


async def set_bitcoin_wallet(api: Api, **fields: Any) -> dict[str, Any]:
    given = {"accountKey": TESTNET_VPUB, "fixedRates": USD_RATE, **fields}
    return await api.mutate("setBitcoinWallet", given, f"bitcoinWallet {{ {WALLET_FIELDS} }}")


async def test_an_account_key_is_set_with_the_defaults(api: Api, db: Database) -> None:
    payload = await set_bitcoin_wallet(api)
    assert payload["errors"] == []
    wallet = payload["bitcoinWallet"]
    assert wallet["accountKey"] == TESTNET_VPUB
    assert (wallet["network"], wallet["addressType"]) == ("TESTNET", "NATIVE_SEGWIT")
    assert wallet["minimumPayment"] == {"amount": "0.00010000", "currency": "BTC"}
    assert (wallet["confirmationsRequired"], wallet["warnings"]) == (1, [])
    assert wallet["fixedRates"] == [
        {"currency": "USD", "price": {"amount": "65000.00", "currency": "USD"}}
    ]
    assert (wallet["addressesAllocated"], wallet["unfundedAddresses"]) == (0, 0)
    assert (await api.run(f"{{ bitcoinWallet {{ {WALLET_FIELDS} }} }}"))["bitcoinWallet"] == wallet
    async with db.session() as session:
        rates = (await session.scalars(select(Rate))).all()
    assert [(r.owner_key, r.currency, r.minor_per_btc, r.source) for r in rates] == [
        ("provider", "USD", 6_500_000, BitcoinRateSource.FIXED)
    ]


async def test_before_anything_is_set_the_settings_are_the_defaults(api: Api) -> None:
    wallet = (await api.run(f"{{ bitcoinWallet {{ {WALLET_FIELDS} }} }}"))["bitcoinWallet"]
    assert (wallet["accountKey"], wallet["updatedAt"], wallet["fixedRates"]) == (None, None, [])


#: Each refused key, the code it gets and why.
REFUSED = [
    pytest.param(with_typo(TESTNET_VPUB), None, "BAD_CHECKSUM", id="mistyped"),
    pytest.param(BIP84_ZPUB, None, "NETWORK_MISMATCH", id="mainnet key on testnet"),
    pytest.param(BIP49_TPRV, None, "PRIVATE_KEY_REFUSED", id="tprv"),
    pytest.param(BIP84_ZPRV, None, "PRIVATE_KEY_REFUSED", id="zprv"),
    pytest.param(WIF, None, "PRIVATE_KEY_REFUSED", id="WIF private key"),
    pytest.param("ab" * 32, None, "PRIVATE_KEY_REFUSED", id="hex private key"),
    pytest.param(MNEMONIC, None, "SEED_REFUSED", id="mnemonic"),
    pytest.param(reencoded(BIP84_ROOT_ZPUB, VPUB_VERSION), None, "NOT_ACCOUNT_KEY", id="root key"),
    pytest.param(TESTNET_VPUB, "LEGACY", "ADDRESS_TYPE_MISMATCH", id="vpub as legacy"),
    pytest.param(TESTNET_UPUB, "NATIVE_SEGWIT", "ADDRESS_TYPE_MISMATCH", id="upub as native"),
    pytest.param(reencoded(TESTNET_VPUB, "02575483"), None, "MULTISIG_KEY_REFUSED", id="Vpub"),
    pytest.param(reencoded(TESTNET_VPUB, "019da462"), None, "UNKNOWN_KEY_VERSION", id="Ltub"),
    pytest.param("not a key at all", None, "INVALID_KEY", id="words"),
    pytest.param("tpub0OIl", None, "INVALID_KEY", id="not base58"),
    pytest.param("  ", None, "REQUIRED", id="blank"),
]


@pytest.mark.parametrize(("key", "address_type", "code"), REFUSED)
async def test_a_refused_key_is_named_and_never_stored(
    api: Api, db: Database, key: str, address_type: str | None, code: str
) -> None:
    before = await row_counts(db)
    payload = await set_bitcoin_wallet(api, accountKey=key, addressType=address_type)
    assert payload["bitcoinWallet"] is None
    [error] = payload["errors"]
    assert error["code"] == code
    assert error["field"] == ("addressType" if code == "ADDRESS_TYPE_MISMATCH" else "accountKey")
    assert key.strip() == "" or key not in error["message"]  # a secret is never echoed
    assert await row_counts(db) == before


async def test_an_xpub_may_be_used_for_any_address_type(api: Api) -> None:
    """A tpub says nothing of its script: native segwit unless another type is chosen."""
    payload = await set_bitcoin_wallet(api, accountKey=TESTNET_TPUB)
    assert payload["bitcoinWallet"]["addressType"] == "NATIVE_SEGWIT"
    payload = await set_bitcoin_wallet(api, accountKey=TESTNET_TPUB, addressType="LEGACY")
    assert payload["bitcoinWallet"]["addressType"] == "LEGACY"
    payload = await set_bitcoin_wallet(api, accountKey=TESTNET_UPUB)
    assert payload["bitcoinWallet"]["addressType"] == "NESTED_SEGWIT"


async def test_zero_confirmations_are_allowed_with_a_warning(api: Api) -> None:
    payload = await set_bitcoin_wallet(api, confirmationsRequired=0)
    [warning] = payload["bitcoinWallet"]["warnings"]
    assert "before any confirmation" in warning
    payload = await set_bitcoin_wallet(api, confirmationsRequired=101)
    assert [e["code"] for e in payload["errors"]] == ["OUT_OF_RANGE"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"minimumPayment": "0.000000001"}, "TOO_MANY_DECIMALS"),
        ({"minimumPayment": "0"}, "AMOUNT_NOT_POSITIVE"),
        ({"minimumPaymentCurrency": "EUR"}, "REQUIRED"),
        ({"fixedRates": []}, "REQUIRED"),
        ({"fixedRates": [{"currency": "USD", "price": "65000.001"}]}, "TOO_MANY_DECIMALS"),
        ({"fixedRates": [*USD_RATE, *USD_RATE]}, "DUPLICATE_CURRENCY"),
        ({"fixedRates": [{"currency": "BTC", "price": "1"}]}, "INVALID_CURRENCY"),
        ({"rateSource": "HTTP"}, "NOT_FOR_THIS_SOURCE"),
        (
            {
                "rateSource": "HTTP",
                "fixedRates": None,
                "priceEndpoints": [{"currency": "USD", "url": "ftp://x.example", "jsonPath": "a"}],
            },
            "INVALID_URL",
        ),
        (
            {
                "rateSource": "HTTP",
                "fixedRates": None,
                "priceEndpoints": [
                    {"currency": "USD", "url": "https://p.example", "jsonPath": "$..price"}
                ],
            },
            "INVALID_JSON_PATH",
        ),
    ],
)
async def test_other_settings_are_checked_before_anything_is_written(
    api: Api, db: Database, fields: dict[str, Any], code: str
) -> None:
    before = await row_counts(db)
    payload = await set_bitcoin_wallet(api, **fields)
    assert [e["code"] for e in payload["errors"]] == [code]
    assert await row_counts(db) == before


async def test_a_price_endpoint_and_a_minimum_in_a_currency(api: Api, db: Database) -> None:
    endpoint = {"currency": "EUR", "url": "https://prices.example/btc", "jsonPath": "data.amount"}
    payload = await set_bitcoin_wallet(
        api,
        rateSource="HTTP",
        fixedRates=None,
        priceEndpoints=[endpoint],
        minimumPayment="5.00",
        minimumPaymentCurrency="eur",
    )
    wallet = payload["bitcoinWallet"]
    assert (wallet["rateSource"], wallet["priceEndpoints"]) == ("HTTP", [endpoint])
    assert wallet["minimumPayment"] == {"amount": "5.00", "currency": "EUR"}
    assert (await row_counts(db))["rates"] == 0  # polled later, by a job


async def test_changing_the_key_starts_a_new_wallet_and_going_back_resumes_the_old(
    db: Database,
) -> None:
    admin = admin_viewer()
    data = WalletInput(account_key=TESTNET_VPUB, fixed_rates=[("USD", "65000.00")])
    async with db.transaction() as session:
        await set_wallet(session, admin, data)
        first = await session.scalar(select(BitcoinWallet))
        assert first is not None
        first.next_index = 7  # as if seven addresses were handed out
        await set_wallet(session, admin, WalletInput(TESTNET_UPUB, fixed_rates=data.fixed_rates))
        assert (await get_wallet(session, admin)).addresses_allocated == 0
        await set_wallet(session, admin, data)
        again = await get_wallet(session, admin)
    assert (again.account_key, again.addresses_allocated) == (TESTNET_VPUB, 7)


async def test_a_key_serves_one_owner_only(db: Database) -> None:
    """Two owners with one key would hand the same addresses to two customers."""
    rates = [("USD", "65000.00")]
    async with db.transaction() as session:
        reseller = await make_reseller(session)
        await set_wallet(session, admin_viewer(), WalletInput(TESTNET_TPUB, fixed_rates=rates))
    async with db.transaction() as session:
        with pytest.raises(UserError) as refused:
            await set_wallet(
                session,
                admin_viewer(reseller.id),
                WalletInput(TESTNET_TPUB, AddressType.LEGACY, fixed_rates=rates),
            )
    assert refused.value.code == "KEY_IN_USE"


async def test_a_mainnet_installation_takes_mainnet_keys_only(
    settings: Settings, db: Database
) -> None:
    """The same database, under settings that take payments on mainnet."""
    mainnet = Database(settings.with_(bitcoin_network="mainnet"))
    rates = [("USD", "65000.00")]
    try:
        async with mainnet.transaction() as session:
            details = await set_wallet(
                session, admin_viewer(), WalletInput(SLIP132_YPUB, fixed_rates=rates)
            )
            assert (details.network.value, details.address_type) == (
                "MAINNET",
                AddressType.NESTED_SEGWIT,
            )
            with pytest.raises(UserError) as refused:
                await set_wallet(session, admin_viewer(), WalletInput(TESTNET_VPUB))
            assert refused.value.code == "NETWORK_MISMATCH"
            await session.rollback()
    finally:
        await mainnet.dispose()
