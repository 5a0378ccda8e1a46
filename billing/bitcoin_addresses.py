"""A customer's bitcoin receiving addresses: each one fresh, none ever shared.

A customer (or staff for it) asks for an address; it gets the next unused index of its
owner's current wallet, on the external chain (``0/i``).  The index is taken by one atomic
``UPDATE … SET next_index = next_index + 1 … RETURNING``: on PostgreSQL the row lock it
takes makes concurrent requests for the same wallet queue until the first commits, and on
SQLite the one writer does the same, so two customers never get one index.  The unique
``(wallet_id, index)`` and ``address`` constraints are the backstop.

Each request gives a new address (privacy: payments to one address are linked to each
other on the chain for anyone to see); the old ones stay the customer's and stay watched.
A customer holds at most :data:`MAX_UNFUNDED` addresses that never received anything, so no
one can push the owner's wallet past its gap limit (``docs/bitcoin.md``) by asking again and
again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import bitcoin, clock, jobs
from billing.access import Viewer, require_self_or_staff, scope_customers
from billing.bitcoin import EXTERNAL_CHAIN, HARDENED
from billing.bitcoin_wallets import installation_network, settings_of, wallet_account_key
from billing.errors import NotFound, UserError
from billing.models import BitcoinAddress, BitcoinWallet, Customer, table_of

#: The job that watches every address (:mod:`billing.bitcoin_payments`, which reads the
#: addresses from here), and how often it runs.
SCAN_JOB = "bitcoin_scan"
SCAN_EVERY = timedelta(minutes=1)
#: Addresses a customer may hold that never received funds.
MAX_UNFUNDED = 5


async def _customer(session: AsyncSession, viewer: Viewer, customer_id: int) -> Customer:
    customer = await session.scalar(
        scope_customers(select(Customer).where(Customer.id == customer_id), viewer)
    )
    if customer is None:
        raise NotFound("customer", "customerId")
    return customer


async def _take_index(session: AsyncSession, wallet_id: int) -> int:
    """The wallet's next unused index, taken (its row stays locked until commit)."""
    wallets = table_of(BitcoinWallet)
    taken = await session.scalar(
        update(wallets)
        .where(wallets.c.id == wallet_id)
        .values(next_index=wallets.c.next_index + 1)
        .returning(wallets.c.next_index)
    )
    assert taken is not None
    return int(taken) - 1


async def request_address(
    session: AsyncSession, viewer: Viewer, customer_id: int
) -> BitcoinAddress:
    """A fresh receiving address for the customer, from its owner's current wallet.

    The customer itself or staff (not its distributor).  ``NO_BITCOIN_WALLET`` when the
    owner has set none up; ``TOO_MANY_UNFUNDED_ADDRESSES`` when the customer already holds
    :data:`MAX_UNFUNDED` addresses nothing was paid to (it should use one of those).
    """
    customer = await _customer(session, viewer, customer_id)
    require_self_or_staff(viewer, customer, write=True)
    settings = await settings_of(session, customer.reseller_id)
    if settings is None:
        raise UserError(
            "NO_BITCOIN_WALLET", "Bitcoin payments are not set up for this customer", "customerId"
        )
    wallet = await session.get(BitcoinWallet, settings.wallet_id)
    assert wallet is not None
    network = installation_network(session)
    if wallet.network != network:
        raise UserError(
            "WALLET_NETWORK_CHANGED",
            f"the wallet was set up for {wallet.network.value.lower()}, but payments are now "
            f"taken on {network.value.lower()}: its administrator must set a key again",
            "customerId",
        )
    index = await _take_index(session, wallet.id)
    # Counted after the lock above, so two requests of one customer cannot both slip under.
    unfunded = await session.scalar(
        select(func.count())
        .select_from(BitcoinAddress)
        .where(BitcoinAddress.customer_id == customer.id, BitcoinAddress.first_funded_at.is_(None))
    )
    if (unfunded or 0) >= MAX_UNFUNDED:
        raise UserError(
            "TOO_MANY_UNFUNDED_ADDRESSES",
            f"you already have {MAX_UNFUNDED} addresses nothing was paid to: use one of them",
            "customerId",
        )
    if index >= HARDENED:
        raise UserError(
            "WALLET_FULL", "this wallet has handed out every address it has", "customerId"
        )
    derived = bitcoin.address_deriver().derive(
        wallet_account_key(session, wallet),
        wallet.network,
        wallet.address_type,
        EXTERNAL_CHAIN,
        index,
    )
    now = await clock.now(session)
    row = BitcoinAddress(
        wallet_id=wallet.id,
        customer_id=customer.id,
        index=index,
        address=derived.address,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    # The scan runs while any address is watched: make sure one is planned.
    await jobs.schedule(session, SCAN_JOB, now + SCAN_EVERY, unique_key=SCAN_JOB)
    return row


def addresses_of(customer_ids: Sequence[int]) -> Select[BitcoinAddress]:
    """The customers' addresses, newest first (each one's first is the one to show)."""
    return (
        select(BitcoinAddress)
        .where(BitcoinAddress.customer_id.in_(customer_ids))
        .order_by(BitcoinAddress.created_at.desc(), BitcoinAddress.id.desc())
    )
