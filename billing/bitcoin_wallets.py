"""Bitcoin wallet settings: per owner of customers (the provider, and each reseller).

An owner's administrators set the account key its customers' addresses are derived from
(:mod:`billing.bitcoin` says which keys are accepted and why), the minimum payment credited,
the confirmations a payment needs, and where exchange rates come from — fixed rates typed
here, or a price endpoint per currency that a job polls.  A reseller's administrators reach
only their own settings; the provider's reach every owner's (:func:`letterheads.owner_in_scope`).

Saving replaces every setting and writes nothing unless all of them are valid.  A new key
(or address type) starts a new :class:`~billing.models.BitcoinWallet` at index 0; going back
to a key used before picks its wallet up where it stopped, so no index is handed out twice.
Fixed rates are stored in ``rates`` at once, as a polled rate will be.

The account key and the rate configuration are sealed at rest
(:mod:`billing.secrets_at_rest`): :func:`wallet_account_key` and :func:`rate_config_of` open
them, and the key is found by its keyed digest (:func:`account_key_digest`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing import bitcoin, clock, jobs, ledger, money, secrets_at_rest, validation
from billing.access import Viewer, require_staff
from billing.bitcoin import AddressType, BitcoinNetwork
from billing.errors import UserError
from billing.letterheads import owner_in_scope
from billing.models import (
    BitcoinAddress,
    BitcoinRateSource,
    BitcoinSettings,
    BitcoinWallet,
    Rate,
)
from settings import Settings

#: Until the owner says otherwise: 10,000 satoshi, below which a payment costs a noticeable
#: share of itself in fees to spend later.
DEFAULT_MINIMUM_SATOSHI = 10_000
DEFAULT_CONFIRMATIONS = 1
#: More is possible but pointless: six is what exchanges wait for large amounts.
MAX_CONFIRMATIONS = 100
MAX_RATE_CURRENCIES = 20
URL_LENGTH = 500
JSON_PATH_LENGTH = 200
#: ``data.amount``, ``bitcoin.usd``, ``0.price``: keys and array indexes, dot-separated.
_JSON_PATH_RE = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")
#: The job that polls an owner's price endpoints (:mod:`billing.bitcoin_prices`).
PRICE_JOB = "bitcoin_prices"


def price_job_key(owner_key: str) -> str:
    """One polling job per owner."""
    return f"{PRICE_JOB}:{owner_key}"


ZERO_CONFIRMATIONS_WARNING = (
    "Payments are credited as soon as they are seen, before any confirmation: until it is "
    "mined, the sender can still replace or double-spend a transaction."
)


@dataclass(frozen=True, slots=True)
class PriceEndpoint:
    """Where the price of one bitcoin in ``currency`` is read: ``json_path`` in the JSON
    that ``url`` answers (``data.amount`` for ``{"data": {"amount": "65000.00"}}``)."""

    currency: str
    url: str
    json_path: str


@dataclass(frozen=True, slots=True)
class WalletInput:
    """Everything an owner sets; ``minimum`` None is the default minimum, ``address_type``
    None the type the key implies (:func:`billing.bitcoin.check_account_key`)."""

    account_key: str
    address_type: AddressType | None = None
    minimum: str | None = None
    minimum_currency: str = "BTC"
    confirmations: int = DEFAULT_CONFIRMATIONS
    rate_source: BitcoinRateSource = BitcoinRateSource.FIXED
    #: (currency, decimal price of one bitcoin), for FIXED.
    fixed_rates: Sequence[tuple[str, str]] = ()
    #: For HTTP.
    price_endpoints: Sequence[PriceEndpoint] = ()


@dataclass(frozen=True, slots=True)
class WalletDetails:
    """An owner's settings as shown; ``reseller_id`` None is the provider.

    ``account_key`` None: the owner has set nothing yet (the rest are the defaults).
    ``unfunded_addresses`` is the gap-limit figure: addresses of the current wallet handed
    out that never received anything (``docs/bitcoin.md``).
    """

    reseller_id: int | None
    network: BitcoinNetwork
    account_key: str | None = None
    address_type: AddressType = AddressType.NATIVE_SEGWIT
    minimum_amount: int = DEFAULT_MINIMUM_SATOSHI
    minimum_currency: str = "BTC"
    confirmations: int = DEFAULT_CONFIRMATIONS
    rate_source: BitcoinRateSource = BitcoinRateSource.FIXED
    #: (currency, minor units per bitcoin).
    fixed_rates: tuple[tuple[str, int], ...] = ()
    price_endpoints: tuple[PriceEndpoint, ...] = ()
    addresses_allocated: int = 0
    unfunded_addresses: int = 0
    updated_at: datetime | None = None
    warnings: tuple[str, ...] = field(default=())


def installation_network(session: AsyncSession) -> BitcoinNetwork:
    """The network this installation takes payments on (``KASSA_BITCOIN_NETWORK``)."""
    settings: Settings = session.info["settings"]
    return BitcoinNetwork(settings.bitcoin_network.upper())


def _keys(session: AsyncSession) -> secrets_at_rest.Keys:
    settings: Settings = session.info["settings"]
    return secrets_at_rest.keys_for(settings)


def account_key_digest(session: AsyncSession, key: str) -> str:
    """What a wallet's account key is found (and kept unique) by."""
    return secrets_at_rest.lookup_digest(_keys(session), secrets_at_rest.WALLET_ACCOUNT_KEY, key)


def wallet_account_key(session: AsyncSession, wallet: BitcoinWallet) -> str:
    """The wallet's account key, opened (:class:`secrets_at_rest.SecretsError` under a wrong
    ``KASSA_ENCRYPTION_KEY``).  For deriving addresses and the administrators' page only."""
    return secrets_at_rest.open_sealed(
        _keys(session), secrets_at_rest.WALLET_ACCOUNT_KEY, wallet.account_key_sealed
    )


def rate_config_of(session: AsyncSession, row: BitcoinSettings) -> dict[str, Any]:
    """The owner's rate configuration, opened: currency → fixed price, or currency →
    ``{"url", "jsonPath"}``."""
    config: dict[str, Any] = json.loads(
        secrets_at_rest.open_sealed(_keys(session), secrets_at_rest.RATE_CONFIG, row.rate_config)
    )
    return config


def price_endpoints_of(session: AsyncSession, row: BitcoinSettings) -> tuple[PriceEndpoint, ...]:
    """The price endpoints an owner with HTTP rates polls (none for fixed rates)."""
    return _rates_from(session, row)[1]


def warnings_for(confirmations: int) -> tuple[str, ...]:
    """What the administrator should know about these settings before relying on them."""
    return (ZERO_CONFIRMATIONS_WARNING,) if confirmations == 0 else ()


# --- reading --------------------------------------------------------------------------------


async def settings_of(session: AsyncSession, reseller_id: int | None) -> BitcoinSettings | None:
    """The owner's settings row (None: Bitcoin not set up)."""
    return await session.get(BitcoinSettings, ledger.system_owner_key(reseller_id))


def _rates_from(
    session: AsyncSession, row: BitcoinSettings
) -> tuple[tuple[tuple[str, int], ...], tuple[PriceEndpoint, ...]]:
    config = rate_config_of(session, row)
    if row.rate_source == BitcoinRateSource.FIXED:
        fixed = tuple((c, money.parse_amount(v, c)) for c, v in sorted(config.items()))
        return fixed, ()
    endpoints = tuple(PriceEndpoint(c, v["url"], v["jsonPath"]) for c, v in sorted(config.items()))
    return (), endpoints


async def _details(
    session: AsyncSession, reseller_id: int | None, row: BitcoinSettings | None
) -> WalletDetails:
    network = installation_network(session)
    if row is None:
        return WalletDetails(reseller_id, network)
    wallet = await session.get(BitcoinWallet, row.wallet_id)
    assert wallet is not None
    unfunded = await session.scalar(
        select(func.count())
        .select_from(BitcoinAddress)
        .where(BitcoinAddress.wallet_id == wallet.id, BitcoinAddress.first_funded_at.is_(None))
    )
    fixed, endpoints = _rates_from(session, row)
    return WalletDetails(
        reseller_id=reseller_id,
        network=network,
        account_key=wallet_account_key(session, wallet),
        address_type=wallet.address_type,
        minimum_amount=row.minimum_amount,
        minimum_currency=row.minimum_currency,
        confirmations=row.confirmations,
        rate_source=row.rate_source,
        fixed_rates=fixed,
        price_endpoints=endpoints,
        addresses_allocated=wallet.next_index,
        unfunded_addresses=unfunded or 0,
        updated_at=row.updated_at,
        warnings=warnings_for(row.confirmations),
    )


async def get_wallet(
    session: AsyncSession, viewer: Viewer, reseller_id: int | None = None
) -> WalletDetails:
    """The Bitcoin settings of reseller ``reseller_id`` or, when None, of the viewer's own
    owner.  Administrators only: the settings name the owner's wallet."""
    require_staff(viewer)
    owner = await owner_in_scope(session, viewer, reseller_id)
    return await _details(session, owner, await settings_of(session, owner))


# --- validating -----------------------------------------------------------------------------


def _minimum(data: WalletInput) -> tuple[int, str]:
    currency = money.validate_currency(data.minimum_currency, "minimumCurrency")
    if data.minimum is None:
        if currency != "BTC":
            raise UserError(
                "REQUIRED", "give the minimum payment with its currency", "minimumPayment"
            )
        return DEFAULT_MINIMUM_SATOSHI, currency
    return money.parse_positive_amount(data.minimum, currency, "minimumPayment"), currency


def _rate_currency(currency: str, seen: set[str], field: str) -> str:
    code = money.validate_currency(currency, field)
    if code == "BTC":
        raise UserError(
            "INVALID_CURRENCY", "a rate is the price of a bitcoin in another currency", field
        )
    if code in seen:
        raise UserError("DUPLICATE_CURRENCY", f"{code} is given twice", field)
    seen.add(code)
    return code


def _fixed_rates(rates: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Currency → minor units per bitcoin: exact decimals, as many as the currency has."""
    seen: set[str] = set()
    return {
        _rate_currency(currency, seen, "fixedRates"): money.parse_positive_amount(
            price, currency, "fixedRates"
        )
        for currency, price in rates
    }


def _url(value: str, development: bool) -> str:
    url = validation.required_text(value, "priceEndpoints", URL_LENGTH)
    parts = urlsplit(url)
    schemes = ("https", "http") if development else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise UserError(
            "INVALID_URL",
            "a price endpoint is an https:// address"
            + (" (http:// in development)" if development else ""),
            "priceEndpoints",
        )
    if parts.username or parts.password:
        raise UserError(
            "INVALID_URL", "put no user name or password in a price endpoint", "priceEndpoints"
        )
    return url


def _json_path(value: str) -> str:
    path = validation.required_text(value, "priceEndpoints", JSON_PATH_LENGTH)
    if not _JSON_PATH_RE.fullmatch(path):
        raise UserError(
            "INVALID_JSON_PATH",
            "the JSON path names the price's keys, dot-separated (data.amount, 0.price)",
            "priceEndpoints",
        )
    return path


def _endpoints(endpoints: Sequence[PriceEndpoint], development: bool) -> dict[str, PriceEndpoint]:
    seen: set[str] = set()
    return {
        (code := _rate_currency(e.currency, seen, "priceEndpoints")): PriceEndpoint(
            code, _url(e.url, development), _json_path(e.json_path)
        )
        for e in endpoints
    }


def _rate_config(data: WalletInput, development: bool) -> tuple[str, dict[str, int]]:
    """The canonical JSON of the rate source, and the fixed rates to store now."""
    wrong, given = (
        ("priceEndpoints", data.price_endpoints)
        if data.rate_source == BitcoinRateSource.FIXED
        else ("fixedRates", data.fixed_rates)
    )
    if given:
        raise UserError(
            "NOT_FOR_THIS_SOURCE", f"{wrong} is not used with {data.rate_source.value} rates", wrong
        )
    used = "fixedRates" if data.rate_source == BitcoinRateSource.FIXED else "priceEndpoints"
    count = len(data.fixed_rates) + len(data.price_endpoints)
    if count == 0:
        raise UserError("REQUIRED", "give the rate of at least one currency", used)
    if count > MAX_RATE_CURRENCIES:
        raise UserError("TOO_MANY", f"at most {MAX_RATE_CURRENCIES} currencies", used)
    if data.rate_source == BitcoinRateSource.FIXED:
        fixed = _fixed_rates(data.fixed_rates)
        config = {c: money.format_amount(v, c) for c, v in fixed.items()}
        return json.dumps(config, sort_keys=True), fixed
    endpoints = _endpoints(data.price_endpoints, development)
    config_http = {c: {"url": e.url, "jsonPath": e.json_path} for c, e in endpoints.items()}
    return json.dumps(config_http, sort_keys=True), {}


# --- setting --------------------------------------------------------------------------------


async def _wallet_for(
    session: AsyncSession,
    owner_key: str,
    key: str,
    address_type: AddressType,
    network: BitcoinNetwork,
) -> BitcoinWallet:
    """The owner's wallet for this key and type (made at index 0 the first time); a key
    another owner uses is refused, since two owners would hand out the same addresses."""
    digest = account_key_digest(session, key)
    rows = list(
        await session.scalars(
            select(BitcoinWallet).where(BitcoinWallet.account_key_digest == digest)
        )
    )
    if any(row.owner_key != owner_key for row in rows):
        raise UserError(
            "KEY_IN_USE",
            "this key is already used for another owner's customers: give each owner a "
            "wallet (or account) of its own",
            "accountKey",
        )
    for row in rows:
        if row.address_type == address_type and row.network == network:
            return row
    wallet = BitcoinWallet(
        owner_key=owner_key,
        account_key_sealed=secrets_at_rest.seal(
            _keys(session), secrets_at_rest.WALLET_ACCOUNT_KEY, key
        ),
        account_key_digest=digest,
        network=network,
        address_type=address_type,
        next_index=0,
        created_at=await clock.now(session),
    )
    session.add(wallet)
    await session.flush()
    return wallet


async def _store_fixed_rates(
    session: AsyncSession, owner_key: str, rates: dict[str, int], now: datetime
) -> None:
    """A new ``rates`` row for each fixed rate that is not already the latest one."""
    for currency, minor in rates.items():
        latest = await session.scalar(
            select(Rate)
            .where(Rate.owner_key == owner_key, Rate.currency == currency)
            .order_by(Rate.fetched_at.desc(), Rate.id.desc())
            .limit(1)
        )
        if latest is None or (latest.minor_per_btc, latest.source) != (
            minor,
            BitcoinRateSource.FIXED,
        ):
            session.add(
                Rate(
                    owner_key=owner_key,
                    currency=currency,
                    minor_per_btc=minor,
                    source=BitcoinRateSource.FIXED,
                    fetched_at=now,
                )
            )


async def set_wallet(
    session: AsyncSession, viewer: Viewer, data: WalletInput, reseller_id: int | None = None
) -> WalletDetails:
    """Set the Bitcoin settings of reseller ``reseller_id`` or, when None, of the viewer's
    own owner (administrators; a reseller's only its own).  Every setting is checked before
    anything is written; a refused key is never stored."""
    require_staff(viewer, write=True)
    owner = await owner_in_scope(session, viewer, reseller_id)
    settings: Settings = session.info["settings"]
    network = installation_network(session)
    key, address_type = bitcoin.account_key(data.account_key, network, data.address_type)
    minimum, minimum_currency = _minimum(data)
    confirmations = validation.non_negative_int(
        data.confirmations, "confirmationsRequired", MAX_CONFIRMATIONS
    )
    rate_config, fixed = _rate_config(data, settings.development)

    owner_key = ledger.system_owner_key(owner)
    wallet = await _wallet_for(session, owner_key, key, address_type, network)
    now = await clock.now(session)
    values: dict[str, Any] = {
        "wallet_id": wallet.id,
        "minimum_amount": minimum,
        "minimum_currency": minimum_currency,
        "confirmations": confirmations,
        "rate_source": data.rate_source,
        "rate_config": secrets_at_rest.seal(
            _keys(session), secrets_at_rest.RATE_CONFIG, rate_config
        ),
        "updated_at": now,
    }
    insert = (
        postgresql_insert
        if session.bind.dialect.name == "postgresql"  # type: ignore[union-attr]
        else sqlite_insert
    )(BitcoinSettings)
    # An upsert, so two administrators saving at once both land (the later one wins).
    await session.execute(
        insert.values(owner_key=owner_key, **values).on_conflict_do_update(
            index_elements=[BitcoinSettings.owner_key], set_=values
        )
    )
    await _store_fixed_rates(session, owner_key, fixed, now)
    if data.rate_source == BitcoinRateSource.HTTP:
        # Poll now: until the first price is stored, payments wait (no rate).
        await jobs.schedule(
            session, PRICE_JOB, now, {"owner_key": owner_key}, unique_key=price_job_key(owner_key)
        )
    row = await session.get(BitcoinSettings, owner_key, populate_existing=True)
    return await _details(session, owner, row)
