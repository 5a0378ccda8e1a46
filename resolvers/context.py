"""The per-request context every resolver receives, and how resolvers touch the database.

One request, one :class:`~sqlalchemy.ext.asyncio.AsyncSession`.  Two rules keep it sound:

* **One operation at a time.**  GraphQL resolves sibling fields concurrently, and an
  AsyncSession must never run two statements at once, so every use of the session goes
  through :meth:`Context.read` or :meth:`Context.transaction`, which share one lock.
* **One mutation, one transaction.**  :meth:`Context.transaction` ends whatever read-only
  transaction earlier fields began, runs the mutation's work in a fresh transaction that
  commits when the block exits cleanly and rolls back on any exception — a ``UserError``
  included, so a refused mutation never leaves half its writes behind — and then drops the
  DataLoader caches, which may hold rows the mutation changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from billing.access import Viewer
from billing.db import Database, keep_loaded, let_go, lock_for_writing
from billing.errors import NotFound, UserError
from resolvers.loaders import Loaders
from settings import Settings

T = TypeVar("T")


@dataclass(eq=False)
class Context:
    settings: Settings
    db: Database
    session: AsyncSession
    viewer: Viewer
    #: The HTTP request and the response headers it will get (cookies); None off HTTP.
    request: Request | None = None
    response: Response | None = None
    loaders: Loaders = field(init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    #: Reads under way, so :meth:`settle` can wait for them; after it, reads are refused.
    _reads: set[asyncio.Future[Any]] = field(default_factory=set, init=False)
    _settled: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.read)
        keep_loaded(self.session)

    async def read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` on the request's session, never alongside another field's query.

        When a field fails, GraphQL cancels its siblings still running.  A statement cut off
        half-way leaves the database connection unusable (the session's closing rollback
        then fails), so the work is shielded: a cancelled caller waits for it to finish,
        then gives up as asked.  A DataLoader batch runs in a task of its own, which the
        cancellation does not reach: :meth:`settle` waits for it.
        """
        if self._settled:
            raise RuntimeError("this request is over: its database session is closing")
        task = asyncio.ensure_future(self._locked_read(work))
        self._reads.add(task)
        task.add_done_callback(self._reads.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.gather(task, return_exceptions=True)
            raise

    async def settle(self) -> None:
        """Wait for every read still under way and refuse any later one.

        Whoever made the context calls this before closing its session.  A field that
        failed leaves its siblings' DataLoader batches running (or just scheduled); were
        the session closed under them, the statement would fail — or, on PostgreSQL, open
        a new transaction on a connection nobody returns, holding its locks for good.
        """
        if self._settled and not self._reads:  # settled already: nothing can have begun
            return
        await asyncio.sleep(0)  # a batch scheduled by a cancelled field starts its read now
        self._settled = True
        while self._reads:
            await asyncio.gather(*self._reads, return_exceptions=True)

    async def _locked_read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self._lock:
            return await work(self.session)

    async def find(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T | None:
        """Like :meth:`read`, for a lookup by id: NOT_FOUND (unknown, garbage or out of
        scope) is simply ``None``, as a query field answers it."""
        try:
            return await self.read(work)
        except NotFound:
            return None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The request's session inside a transaction of its own (see the module docstring).

        From the first one on, the session no longer holds what it loaded (``let_go``):
        a mutation's own transactions, and the jobs some run in sessions of their own
        (``advanceTestClock``), change rows the request read before, which must then be
        read again.
        """
        async with self._lock:
            let_go(self.session)
            if self.session.in_transaction():
                # Only reads happened since the last commit: there is nothing to keep.
                await self.session.rollback()
            try:
                async with self.session.begin():
                    await lock_for_writing(self.session)
                    yield self.session
            finally:
                self.loaders = Loaders(self.read)

    async def attempt(
        self, work: Callable[[AsyncSession], Awaitable[T]], id_field: str | None = None
    ) -> T | UserError:
        """Run one mutation's ``work`` in :meth:`transaction`; a UserError comes back as a value.

        Returning the error (rather than raising it) is what lets the resolver put it in the
        payload's ``errors`` after the rollback has already happened.  Services report an
        unknown object against ``id``; ``id_field`` names the input field that carried it
        when that is not ``id`` (``customerId`` in ``createAccount``, say).
        """
        try:
            async with self.transaction() as session:
                return await work(session)
        except UserError as error:
            if id_field is not None and isinstance(error, NotFound) and error.field == "id":
                error.field = id_field
            return error


#: What resolvers declare as their ``info`` parameter: strawberry's Info with our Context.
Info = strawberry.Info[Context, None]
