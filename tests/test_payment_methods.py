"""Stored cards: only token and display details kept, one default, who may handle them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import payments
from billing.access import Viewer
from billing.card_charges import within
from billing.db import Database
from billing.errors import Forbidden, UserError
from billing.models import ApiKeyScope, Base, PaymentMethod, Role
from billing.payment_methods import (
    add_card,
    payment_methods_for,
    remove_payment_method,
    set_default_payment_method,
)
from tests.factories import (
    APPROVE,
    Party,
    admin_viewer,
    card_details,
    customer_viewer,
    distributor_viewer,
    make_distributor,
    make_reseller,
    new_party,
    reseller_viewer,
    store_card,
)

ADMIN = admin_viewer()


async def listed(db: Database, party: Party, viewer: Viewer = ADMIN) -> list[tuple[int, bool]]:
    """The customer's cards as (id, is_default), in listing order."""
    async with db.session() as session:
        return [(m.id, m.is_default) for m in await payment_methods_for(session, viewer, party.id)]


async def test_first_card_becomes_the_default_and_later_ones_do_not(db: Database) -> None:
    party = await new_party(db)
    first = await store_card(db, party)
    second = await store_card(db, party)
    assert await listed(db, party) == [(first.id, True), (second.id, False)]


async def test_a_card_added_as_default_takes_the_default_over(db: Database) -> None:
    party = await new_party(db)
    first = await store_card(db, party)
    second = await store_card(db, party, make_default=True)
    assert await listed(db, party) == [(second.id, True), (first.id, False)]
    async with db.transaction() as session:
        await set_default_payment_method(session, ADMIN, first.id)
    assert await listed(db, party) == [(first.id, True), (second.id, False)]


async def test_removing_the_default_passes_it_to_the_newest_remaining_card(db: Database) -> None:
    party = await new_party(db)
    default, older, newest = (
        await store_card(db, party),
        await store_card(db, party),
        await store_card(db, party),
    )
    async with db.transaction() as session:
        removed = await remove_payment_method(session, ADMIN, default.id)
    assert removed.removed_at is not None and not removed.is_default
    assert await listed(db, party) == [(newest.id, True), (older.id, False)]


async def test_removing_another_card_keeps_the_default(db: Database) -> None:
    party = await new_party(db)
    default, other = await store_card(db, party), await store_card(db, party)
    async with db.transaction() as session:
        await remove_payment_method(session, ADMIN, other.id)
    assert await listed(db, party) == [(default.id, True)]


async def test_removed_cards_are_neither_listed_nor_usable(db: Database) -> None:
    party = await new_party(db)
    card = await store_card(db, party)
    async with db.transaction() as session:
        await remove_payment_method(session, ADMIN, card.id)
    assert await listed(db, party) == []
    calls: list[Callable[[AsyncSession], Awaitable[object]]] = [
        lambda s: remove_payment_method(s, ADMIN, card.id),
        lambda s: set_default_payment_method(s, ADMIN, card.id),
        lambda s: payments.pay_with_payment_method(
            within(s), ADMIN, party.id, 100, None, card.id, "k"
        ),
    ]
    for call in calls:
        with pytest.raises(UserError) as caught:
            async with db.transaction() as session:
                await call(session)
        assert caught.value.code == "NOT_FOUND"
    with pytest.raises(UserError) as caught:  # no default left to charge either
        async with db.transaction() as session:
            await payments.pay_with_payment_method(
                within(session), ADMIN, party.id, 100, None, None, "k"
            )
    assert caught.value.code == "NO_PAYMENT_METHOD"


async def test_only_token_brand_last4_and_expiry_are_stored(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    party = await new_party(db)
    caplog.set_level(logging.DEBUG)
    card = await store_card(db, party)
    async with db.transaction() as session:
        await payments.pay_with_payment_method(
            within(session), ADMIN, party.id, 100, None, None, "k"
        )
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 12, 2030)
    assert card.token.startswith("sim_tok_")
    assert set(PaymentMethod.__table__.columns.keys()) == {
        "id",
        "customer_id",
        "processor",
        "processor_account_id",
        "token",
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "is_default",
        "created_at",
        "removed_at",
    }
    rows: list[str] = []
    async with db.session() as session:
        for table in Base.metadata.sorted_tables:
            rows.extend(repr(row) for row in (await session.execute(table.select())).all())
    everything = "\n".join(rows)
    assert "4242" in everything  # the dump really contains the card's row …
    assert APPROVE not in everything  # … but nowhere the full number
    assert APPROVE not in caplog.text


async def test_an_invalid_card_is_refused_without_echoing_it(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    party = await new_party(db)
    caplog.set_level(logging.DEBUG)
    bad = "4242424242424241"  # fails the Luhn check
    with pytest.raises(UserError) as caught:
        async with db.transaction() as session:
            await add_card(session, ADMIN, party.id, card_details(bad))
    assert caught.value.code == "INVALID_CARD_NUMBER"
    assert bad not in str(caught.value) and bad not in repr(caught.value)
    assert bad not in caplog.text
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(PaymentMethod)) == 0


async def test_a_customer_handles_its_own_cards_only(db: Database) -> None:
    party, other = await new_party(db), await new_party(db, name="Other")
    mine = await store_card(db, party, viewer=customer_viewer(party.id))
    theirs = await store_card(db, other)
    assert await listed(db, party, customer_viewer(party.id)) == [(mine.id, True)]
    calls: list[Callable[[AsyncSession], Awaitable[object]]] = [
        lambda s: add_card(s, customer_viewer(party.id), other.id, card_details()),
        lambda s: payment_methods_for(s, customer_viewer(party.id), other.id),
        lambda s: remove_payment_method(s, customer_viewer(party.id), theirs.id),
        lambda s: set_default_payment_method(s, customer_viewer(party.id), theirs.id),
    ]
    for call in calls:
        with pytest.raises(UserError) as caught:
            async with db.transaction() as session:
                await call(session)
        assert caught.value.code == "NOT_FOUND"


async def test_another_resellers_staff_see_no_cards(db: Database) -> None:
    party = await new_party(db)
    card = await store_card(db, party)
    async with db.transaction() as session:
        reseller = await make_reseller(session)
    for call in (
        lambda s: payment_methods_for(s, reseller_viewer(reseller.id), party.id),
        lambda s: remove_payment_method(s, reseller_viewer(reseller.id), card.id),
    ):
        with pytest.raises(UserError, match="not found"):
            async with db.transaction() as session:
                await call(session)


async def test_a_distributor_may_not_handle_its_customers_cards(db: Database) -> None:
    async with db.transaction() as session:
        distributor = await make_distributor(session)
    party = await new_party(db, distributor_id=distributor.id)
    card = await store_card(db, party)
    viewer = distributor_viewer(distributor.id)
    for call in (
        lambda s: payment_methods_for(s, viewer, party.id),
        lambda s: add_card(s, viewer, party.id, card_details()),
        lambda s: set_default_payment_method(s, viewer, card.id),
        lambda s: payments.pay_with_payment_method(
            within(s), viewer, party.id, 100, None, None, "k"
        ),
    ):
        with pytest.raises(Forbidden):
            async with db.transaction() as session:
                await call(session)


async def test_a_read_only_key_may_list_cards_but_not_change_them(db: Database) -> None:
    party = await new_party(db)
    card = await store_card(db, party)
    read_only = Viewer(role=Role.ADMIN, api_key_id=7, scope=ApiKeyScope.READ)
    assert await listed(db, party, read_only) == [(card.id, True)]
    with pytest.raises(Forbidden):
        async with db.transaction() as session:
            await add_card(session, read_only, party.id, card_details())
