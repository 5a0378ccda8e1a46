"""Processor accounts: the payment systems each owner of customers has configured, and which
one a customer pays through.

A processor account belongs to the provider or to a reseller (``owner_key`` like a
letterhead's).  It names a processor from the registry, holds that processor's credentials
(sealed at rest with :mod:`billing.secrets_at_rest`, opened only to make the processor for a
call, never shown back: readers learn only *which* credentials are set), test or live mode,
where the processor's API is when not its own address (a local fake in tests and the demo),
the currencies it takes with the minimum payment in each, and the payment methods it offers.

Saving checks everything before writing anything: the processor must be installed, every
currency known, every minimum zero or more, at least one method offered, and every method
one the processor can take (an e-check needs :attr:`Capability.BANK_ACCOUNT`).

**Routing** (:func:`route`): a customer of a reseller pays through the reseller's enabled
accounts first and through the provider's only when the reseller allows it
(``Reseller.processor_fallback``); a customer of the provider through the provider's.  The
first account (oldest first) that takes the currency, offers the method and whose processor
can do the flow wins.  When none of those owners has any enabled account at all,
:func:`route` answers None and callers keep today's behaviour (the process-wide default
processor), so an installation that configured nothing works as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, ledger, money, payment_systems, processing, secrets_at_rest, validation
from billing.access import Viewer, require_staff
from billing.errors import NotFound, UserError
from billing.letterheads import owner_in_scope, owner_of_key
from billing.models import Customer, ProcessorAccount, Reseller
from billing.payment_systems import Capability, MethodKind, Mode, ProcessorConfig
from billing.processing import CardProcessor
from settings import Settings

NAME_LENGTH = 100
URL_LENGTH = 500
MAX_CREDENTIALS = 20
CREDENTIAL_LENGTH = 2000
MAX_CURRENCIES = 50
#: ``api_login_id``, ``transaction_key``, ``webhook_secret``: lower-case snake names.
_CREDENTIAL_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,49}")
#: The method kinds that need the processor to store bank accounts.
_BANK_METHODS = frozenset({MethodKind.ECHECK, MethodKind.DIRECT_DEBIT})


@dataclass(frozen=True, slots=True)
class AccountInput:
    """What an administrator sets.  ``credentials`` None keeps the stored ones; otherwise its
    entries replace the stored ones of the same name and an empty value removes one (so a
    form's blank password field changes nothing)."""

    name: str
    processor: str
    mode: Mode = Mode.TEST
    credentials: Mapping[str, str] | None = None
    base_url: str | None = None
    #: (currency, minimum payment as a decimal string) for each currency taken.
    minimums: Sequence[tuple[str, str]] = ()
    method_kinds: Sequence[MethodKind] = ()
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class AccountDetails:
    """A processor account as shown: never the credentials' values, only their names."""

    id: int
    reseller_id: int | None
    name: str
    processor: str
    mode: Mode
    base_url: str | None
    #: (currency, minimum payment in minor units), by currency.
    minimums: tuple[tuple[str, int], ...]
    method_kinds: tuple[MethodKind, ...]
    enabled: bool
    credentials_set: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


def _keys(session: AsyncSession) -> secrets_at_rest.Keys:
    settings: Settings = session.info["settings"]
    return secrets_at_rest.keys_for(settings)


def credentials_of(session: AsyncSession, account: ProcessorAccount) -> dict[str, str]:
    """The account's credentials, opened: only to hand them to its processor."""
    opened: dict[str, str] = json.loads(
        secrets_at_rest.open_sealed(
            _keys(session), secrets_at_rest.PROCESSOR_CREDENTIALS, account.credentials_sealed
        )
    )
    return opened


def details(session: AsyncSession, account: ProcessorAccount) -> AccountDetails:
    """``account`` as shown (credential names only)."""
    return AccountDetails(
        id=account.id,
        reseller_id=owner_of_key(account.owner_key),
        name=account.name,
        processor=account.processor,
        mode=account.mode,
        base_url=account.base_url,
        minimums=tuple(sorted((c, int(v)) for c, v in account.minimums.items())),
        method_kinds=tuple(MethodKind(k) for k in account.method_kinds),
        enabled=account.enabled,
        credentials_set=tuple(sorted(credentials_of(session, account))),
        created_at=account.created_at,
        updated_at=account.updated_at,
    )


def config_of(session: AsyncSession, account: ProcessorAccount) -> ProcessorConfig:
    """What the account's processor is made with (credentials opened in memory only)."""
    settings: Settings = session.info["settings"]
    return ProcessorConfig(
        credentials=credentials_of(session, account),
        mode=account.mode,
        base_url=account.base_url,
        account_id=account.id,
        public_url=settings.public_url,
    )


def make_processor(name: str, config: ProcessorConfig | None) -> CardProcessor:
    """The processor to call for a payment or stored method: made for its processor account
    when it has one (``config``), else processor ``name`` with its process-wide settings (the
    cards and payments made before processor accounts existed)."""
    if config is None:
        return processing.processor_named(name)
    return payment_systems.catalog().processor_for(name, config)


async def configs_for(
    session: AsyncSession, account_ids: Iterable[int | None]
) -> dict[int, ProcessorConfig]:
    """The processor configs of these accounts (Nones skipped), in one query."""
    wanted = {i for i in account_ids if i is not None}
    if not wanted:
        return {}
    rows = await session.scalars(select(ProcessorAccount).where(ProcessorAccount.id.in_(wanted)))
    return {row.id: config_of(session, row) for row in rows}


# --- validating -----------------------------------------------------------------------------


def _processor(name: str) -> payment_systems.ProcessorInfo:
    info = payment_systems.catalog().describe((name or "").strip())
    if info is None:
        raise UserError("UNKNOWN_PROCESSOR", f"no payment processor named {name!r}", "processor")
    return info


def _minimums(given: Sequence[tuple[str, str]]) -> dict[str, int]:
    if not given:
        raise UserError("REQUIRED", "give at least one currency the account takes", "currencies")
    if len(given) > MAX_CURRENCIES:
        raise UserError("TOO_MANY", f"at most {MAX_CURRENCIES} currencies", "currencies")
    found: dict[str, int] = {}
    for currency, minimum in given:
        code = money.validate_currency(currency, "currencies")
        if code in found:
            raise UserError("DUPLICATE_CURRENCY", f"{code} is given twice", "currencies")
        amount = money.parse_amount(minimum or "0", code, "minimums")
        if amount < 0:
            raise UserError("NEGATIVE_MINIMUM", "a minimum payment cannot be negative", "minimums")
        found[code] = amount
    return found


def _method_kinds(
    info: payment_systems.ProcessorInfo, kinds: Sequence[MethodKind]
) -> list[MethodKind]:
    if not kinds:
        if not info.method_kinds:  # a wallet or a terminal network: nothing to choose from
            return []
        raise UserError("REQUIRED", "offer at least one payment method", "methodKinds")
    chosen = sorted(set(kinds))
    for kind in chosen:
        needs_bank = kind in _BANK_METHODS and Capability.BANK_ACCOUNT not in info.capabilities
        if needs_bank or kind not in info.method_kinds:
            raise UserError(
                "METHOD_NOT_SUPPORTED",
                f"{info.name} cannot take {kind.value} payments",
                "methodKinds",
            )
    return chosen


def _base_url(value: str | None, mode: Mode) -> str | None:
    url = validation.text(value, "baseUrl", URL_LENGTH)
    if url is None:
        return None
    parts = urlsplit(url)
    schemes = ("https",) if mode == Mode.LIVE else ("https", "http")
    if parts.scheme not in schemes or not parts.hostname or parts.username or parts.password:
        raise UserError(
            "INVALID_URL",
            "the API address is an https:// address without a user name"
            + (" (http:// in test mode)" if mode == Mode.TEST else ""),
            "baseUrl",
        )
    return url.rstrip("/")


def _credentials(stored: Mapping[str, str], given: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(stored)
    for name, value in (given or {}).items():
        if not _CREDENTIAL_NAME_RE.fullmatch(name):
            raise UserError(
                "INVALID_CREDENTIAL_NAME",
                "a credential's name is lower-case letters, digits and _",
                "credentials",
            )
        if len(value) > CREDENTIAL_LENGTH:
            raise UserError("TOO_LONG", "a credential is too long", "credentials")
        if value.strip():
            merged[name] = value.strip()
        else:
            merged.pop(name, None)
    if len(merged) > MAX_CREDENTIALS:
        raise UserError("TOO_MANY", f"at most {MAX_CREDENTIALS} credentials", "credentials")
    return merged


async def _apply(
    session: AsyncSession, account: ProcessorAccount, data: AccountInput, now: datetime
) -> None:
    """Check everything in ``data``, then write it onto ``account`` (nothing on a refusal)."""
    name = validation.required_text(data.name, "name", NAME_LENGTH)
    info = _processor(data.processor)
    minimums = _minimums(data.minimums)
    kinds = _method_kinds(info, data.method_kinds)
    base_url = _base_url(data.base_url, data.mode)
    stored = credentials_of(session, account) if account.credentials_sealed else {}
    credentials = _credentials(stored, data.credentials)
    clash = await session.scalar(
        select(ProcessorAccount.id).where(
            ProcessorAccount.owner_key == account.owner_key,
            ProcessorAccount.name == name,
            ProcessorAccount.id != (account.id or 0),
        )
    )
    if clash is not None:
        raise UserError("NAME_TAKEN", "another processor account has this name", "name")
    account.name = name
    account.processor = info.name
    account.mode = data.mode
    account.base_url = base_url
    account.minimums = minimums
    account.method_kinds = [k.value for k in kinds]
    account.enabled = data.enabled
    account.credentials_sealed = secrets_at_rest.seal(
        _keys(session),
        secrets_at_rest.PROCESSOR_CREDENTIALS,
        json.dumps(credentials, sort_keys=True),
    )
    account.updated_at = now


# --- administering --------------------------------------------------------------------------


async def list_accounts(
    session: AsyncSession, viewer: Viewer, reseller_id: int | None = None
) -> list[AccountDetails]:
    """The accounts the viewer administers: the provider's staff see every owner's (or, with
    ``reseller_id``, that reseller's), a reseller's staff their own.  Oldest first."""
    require_staff(viewer)
    query = select(ProcessorAccount).order_by(ProcessorAccount.id)
    if viewer.reseller_id is not None or reseller_id is not None:
        owner = await owner_in_scope(session, viewer, reseller_id)
        query = query.where(ProcessorAccount.owner_key == ledger.system_owner_key(owner))
    return [details(session, row) for row in await session.scalars(query)]


async def _account_in_scope(
    session: AsyncSession, viewer: Viewer, account_id: int, *, lock: bool = False
) -> ProcessorAccount:
    query = select(ProcessorAccount).where(ProcessorAccount.id == account_id)
    if viewer.reseller_id is not None:
        query = query.where(
            ProcessorAccount.owner_key == ledger.system_owner_key(viewer.reseller_id)
        )
    if lock:
        query = query.with_for_update()
    account = await session.scalar(query)
    if account is None:
        raise NotFound("processor account", "id")
    return account


async def get_account(session: AsyncSession, viewer: Viewer, account_id: int) -> AccountDetails:
    """One account the viewer administers, else NOT_FOUND."""
    require_staff(viewer)
    return details(session, await _account_in_scope(session, viewer, account_id))


async def create_account(
    session: AsyncSession, viewer: Viewer, data: AccountInput, reseller_id: int | None = None
) -> AccountDetails:
    """A new account of reseller ``reseller_id`` or, when None, of the viewer's own owner."""
    require_staff(viewer, write=True)
    owner = await owner_in_scope(session, viewer, reseller_id)
    now = await clock.now(session)
    account = ProcessorAccount(
        owner_key=ledger.system_owner_key(owner), credentials_sealed="", created_at=now
    )
    await _apply(session, account, data, now)
    session.add(account)
    await session.flush()
    return details(session, account)


async def update_account(
    session: AsyncSession, viewer: Viewer, account_id: int, data: AccountInput
) -> AccountDetails:
    """Replace an account's settings (credentials merged, see :class:`AccountInput`)."""
    require_staff(viewer, write=True)
    account = await _account_in_scope(session, viewer, account_id, lock=True)
    await _apply(session, account, data, await clock.now(session))
    await session.flush()
    return details(session, account)


async def disable_account(session: AsyncSession, viewer: Viewer, account_id: int) -> AccountDetails:
    """Stop routing new payments to the account.  Its stored methods and payments keep it:
    lookups, refunds and callbacks still reach the processor."""
    require_staff(viewer, write=True)
    account = await _account_in_scope(session, viewer, account_id, lock=True)
    account.enabled = False
    account.updated_at = await clock.now(session)
    await session.flush()
    return details(session, account)


async def set_fallback(
    session: AsyncSession, viewer: Viewer, reseller_id: int | None, allowed: bool
) -> bool:
    """Whether the reseller's customers may pay through the provider's accounts (the
    reseller's own staff or the provider's decide).  Returns the new setting."""
    require_staff(viewer, write=True)
    owner = await owner_in_scope(session, viewer, reseller_id)
    if owner is None:
        raise UserError("NOT_A_RESELLER", "the provider has no one to fall back to", "resellerId")
    reseller = await session.get(Reseller, owner)
    assert reseller is not None
    reseller.processor_fallback = allowed
    await session.flush()
    return allowed


async def fallback_of(session: AsyncSession, viewer: Viewer, reseller_id: int | None) -> bool:
    """The reseller's fallback setting (False for the provider, who has nothing above it)."""
    require_staff(viewer)
    owner = await owner_in_scope(session, viewer, reseller_id)
    if owner is None:
        return False
    return bool(
        await session.scalar(select(Reseller.processor_fallback).where(Reseller.id == owner))
    )


# --- routing --------------------------------------------------------------------------------


async def _owner_chain(session: AsyncSession, reseller_id: int | None) -> list[str]:
    """The owners whose accounts a customer of ``reseller_id`` may pay through, in order."""
    if reseller_id is None:
        return [ledger.system_owner_key(None)]
    fallback = await session.scalar(
        select(Reseller.processor_fallback).where(Reseller.id == reseller_id)
    )
    chain = [ledger.system_owner_key(reseller_id)]
    return [*chain, ledger.system_owner_key(None)] if fallback else chain


def _fits(
    account: ProcessorAccount,
    currency: str,
    method_kind: MethodKind | None,
    capability: Capability,
) -> bool:
    info = payment_systems.catalog().describe(account.processor)
    return (
        info is not None
        and capability in info.capabilities
        and currency in account.minimums
        and (method_kind is None or method_kind.value in account.method_kinds)
    )


async def route(
    session: AsyncSession,
    customer: Customer,
    currency: str,
    method_kind: MethodKind | None = None,
    capability: Capability = Capability.TOKEN_CHARGE,
) -> ProcessorAccount | None:
    """The processor account ``customer`` pays ``currency`` through by ``method_kind`` (any
    method when None) with ``capability``: see the module's docstring.

    None when none of the customer's owners has an enabled account with ``capability`` (use
    the default processor, as before accounts existed: a provider offering only PayPal or a
    terminal network still stores cards); NO_PROCESSOR_ACCOUNT when they have such accounts
    but none fits the currency or method.
    """
    chain = await _owner_chain(session, customer.reseller_id)
    catalog = payment_systems.catalog()
    accounts = [
        account
        for account in await session.scalars(
            select(ProcessorAccount)
            .where(ProcessorAccount.owner_key.in_(chain), ProcessorAccount.enabled)
            .order_by(ProcessorAccount.id)
        )
        if (info := catalog.describe(account.processor)) is not None
        and capability in info.capabilities
    ]
    if not accounts:
        return None
    accounts.sort(key=lambda a: chain.index(a.owner_key))
    for account in accounts:
        if _fits(account, currency, method_kind, capability):
            return account
    what = f"{method_kind.value} payments" if method_kind is not None else "payments"
    raise UserError(
        "NO_PROCESSOR_ACCOUNT",
        f"no payment system here takes {what} in {currency}",
        "paymentMethod",
    )


async def accounts_for(
    session: AsyncSession, customer: Customer, currency: str, capability: Capability
) -> list[ProcessorAccount]:
    """Every enabled account ``customer`` may pay ``currency`` through with ``capability``, in
    :func:`route`'s order: the choices a customer picks from (redirect systems)."""
    chain = await _owner_chain(session, customer.reseller_id)
    accounts = list(
        await session.scalars(
            select(ProcessorAccount)
            .where(ProcessorAccount.owner_key.in_(chain), ProcessorAccount.enabled)
            .order_by(ProcessorAccount.id)
        )
    )
    accounts.sort(key=lambda a: chain.index(a.owner_key))
    return [a for a in accounts if _fits(a, currency, None, capability)]


def check_minimum(account: ProcessorAccount | None, amount: int, currency: str) -> None:
    """AMOUNT_BELOW_MINIMUM when ``amount`` is below the account's minimum in ``currency``
    (no account: no minimum beyond the processor's own)."""
    if account is None:
        return
    minimum = int(account.minimums.get(currency, 0))
    if amount < minimum:
        raise UserError(
            "AMOUNT_BELOW_MINIMUM",
            f"the smallest payment taken is {money.format_amount(minimum, currency)} {currency}",
            "amount",
        )
