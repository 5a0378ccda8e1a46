"""The request context's session rules: one statement at a time, one transaction per
mutation, and a UserError rolls back everything the mutation wrote."""

from __future__ import annotations

import asyncio
import gc

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import customers
from billing.db import Database
from billing.errors import NotFound, UserError
from billing.models import Reseller, Role
from resolvers.context import Context
from schema.relay import encode_id
from settings import Settings
from tests.factories import admin_viewer, make_customer, make_distributor, user_with_login
from tests.graphql_support import signed_in_api
from tests.statements import statements

pytest_plugins = ["tests.graphql_fixtures"]


async def _resellers(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count(Reseller.id))) or 0)


async def test_a_user_error_rolls_back_what_was_already_flushed(
    settings: Settings, db: Database
) -> None:
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


async def test_not_found_is_reported_against_the_input_field(
    settings: Settings, db: Database
) -> None:
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


async def test_concurrent_fields_take_turns_on_the_session(
    settings: Settings, db: Database
) -> None:
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


async def test_a_cancelled_field_lets_its_statement_finish(
    settings: Settings, db: Database
) -> None:
    """GraphQL cancels the siblings of a field that fails (a distributor asking for a
    customer's balance and its cards): a statement cut off half-way would leave the
    connection unusable, so the cancelled read waits for it, and the session carries on."""
    async with db.session() as session:
        ctx = Context(settings=settings, db=db, session=session, viewer=admin_viewer())
        finished = asyncio.Event()

        async def slow(session: AsyncSession) -> int:
            started.set()
            await asyncio.sleep(0.05)
            value = int(await session.scalar(select(func.count(Reseller.id))) or 0)
            finished.set()
            return value

        started = asyncio.Event()
        field = asyncio.ensure_future(ctx.read(slow))
        await started.wait()
        field.cancel()
        results = await asyncio.gather(field, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError)
        assert finished.is_set()  # the statement ran to its end before the field gave up
        assert await ctx.read(lambda s: s.scalar(select(func.count(Reseller.id)))) == 0
    assert await _resellers(db) == 0


async def test_a_refused_field_leaves_no_read_behind(http: httpx.AsyncClient, db: Database) -> None:
    """A distributor asks for a customer's balance (a DataLoader batch, in a task of its own)
    and its cards (refused): the batch still runs after GraphQL has given up on it, and must
    be over before the request's session closes, or it would run on a closed session — on
    PostgreSQL, opening a transaction on a connection nobody returns."""
    async with db.transaction() as session:
        distributor = await make_distributor(session, "Corner shop")
        customer = await make_customer(session, distributor_id=distributor.id)
    email = await user_with_login(
        db, "shop@example.com", Role.DISTRIBUTOR, distributor_id=distributor.id
    )
    api = await signed_in_api(http, email)
    for _ in range(3):
        response = await api.post(
            "query($id: ID!) { customer(id: $id) { balance { amount } paymentMethods { id } "
            "ledgerTransactions { totalCount } } }",
            {"id": encode_id("Customer", customer.id)},
        )
        body = response.json()
        assert body["data"] == {"customer": None}
        assert {error["extensions"]["code"] for error in body["errors"]} == {"FORBIDDEN"}
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_requests_session_holds_what_it_loaded(settings: Settings, db: Database) -> None:
    """The identity map references objects weakly: without the request's session holding
    them, a customer one service loaded and dropped is read again by the next."""
    async with db.transaction() as session:
        customer_id = (await make_customer(session)).id
    viewer = admin_viewer()

    async def load(session: AsyncSession) -> None:
        await customers.get_customer(session, viewer, customer_id)
        gc.collect()  # nothing else references it now

    async with db.session() as session:
        ctx = Context(settings=settings, db=db, session=session, viewer=viewer)
        with statements(db) as seen:
            for _ in range(3):
                await ctx.read(load)
        assert len(seen) == 1
    async with db.session() as session:  # a job's session: not held
        with statements(db) as seen:
            for _ in range(2):
                await load(session)
        assert len(seen) == 2


async def test_a_request_that_writes_reads_afresh(settings: Settings, db: Database) -> None:
    """Once a request writes, what it held may be out of date (its own transactions, or
    jobs run in sessions of their own, changed it): it is read again."""
    async with db.transaction() as session:
        customer_id = (await make_customer(session, name="Before")).id
    viewer = admin_viewer()

    async def name(session: AsyncSession) -> str:
        return (await customers.get_customer(session, viewer, customer_id)).name

    async with db.session() as session:
        ctx = Context(settings=settings, db=db, session=session, viewer=viewer)
        async with ctx.transaction() as writing:  # a first mutation, committed
            assert await name(writing) == "Before"
        async with db.transaction() as elsewhere:  # as advanceTestClock's jobs do
            (await customers.get_customer(elsewhere, viewer, customer_id)).name = "After"
        async with ctx.transaction() as writing:
            assert await name(writing) == "After"
