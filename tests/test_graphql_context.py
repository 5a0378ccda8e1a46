"""The request context's session rules: one statement at a time, one transaction per
mutation, and a UserError rolls back everything the mutation wrote."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kassa.billing.errors import NotFound, UserError
from kassa.billing.models import Reseller
from kassa.db import Database
from kassa.resolvers.context import Context
from kassa.settings import Settings
from tests.factories import admin_viewer


async def _resellers(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count(Reseller.id))) or 0)


async def test_a_user_error_rolls_back_what_was_already_flushed(settings: Settings,
                                                                db: Database) -> None:
    async with db.session() as session:
        ctx = Context(settings=settings, db=db, session=session, viewer=admin_viewer())

        async def half_done(session: AsyncSession) -> Reseller:
            session.add(Reseller(name="written, then refused"))
            await session.flush()
            raise UserError("NOPE", "refused after writing", "name")

        result = await ctx.attempt(half_done)
        assert isinstance(result, UserError) and result.code == "NOPE"
        assert await _resellers(db) == 0

        async def fine(session: AsyncSession) -> Reseller:
            reseller = Reseller(name="kept")
            session.add(reseller)
            await session.flush()
            return reseller

        kept = await ctx.attempt(fine)
        assert isinstance(kept, Reseller) and kept.name == "kept"  # usable after commit
    assert await _resellers(db) == 1


async def test_not_found_is_reported_against_the_input_field(settings: Settings,
                                                             db: Database) -> None:
    async def missing(session: AsyncSession) -> Reseller:
        raise NotFound("customer")

    async with db.session() as session:
        ctx = Context(settings=settings, db=db, session=session, viewer=admin_viewer())
        error = await ctx.attempt(missing, id_field="customerId")
        assert isinstance(error, NotFound) and error.field == "customerId"
        assert await ctx.find(missing) is None


async def test_mutations_start_afresh_after_reads_and_drop_the_loader_caches(
    settings: Settings, db: Database
) -> None:
    async with db.session() as session:
        ctx = Context(settings=settings, db=db, session=session, viewer=admin_viewer())
        await ctx.read(lambda s: s.scalar(select(func.count(Reseller.id))))
        assert session.in_transaction()  # a read transaction is open…
        loaders = ctx.loaders
        await ctx.attempt(lambda s: s.scalar(select(1)))  # …and does not get in the way
        assert ctx.loaders is not loaders


async def test_concurrent_fields_take_turns_on_the_session(settings: Settings,
                                                           db: Database) -> None:
    """Sibling fields resolve concurrently; the session must never see two at once."""
    async with db.session() as session:
        ctx = Context(settings=settings, db=db, session=session, viewer=admin_viewer())
        running = 0

        async def query(session: AsyncSession) -> int:
            nonlocal running
            running += 1
            assert running == 1
            value = int(await session.scalar(select(func.count(Reseller.id))) or 0)
            await asyncio.sleep(0)
            running -= 1
            return value

        assert await asyncio.gather(*(ctx.read(query) for _ in range(10))) == [0] * 10
