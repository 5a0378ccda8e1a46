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
from typing import TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from kassa.billing.access import Viewer
from kassa.billing.errors import NotFound, UserError
from kassa.db import Database, lock_for_writing
from kassa.resolvers.loaders import Loaders
from kassa.settings import Settings

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

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.read)

    async def read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` on the request's session, never alongside another field's query."""
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
        """The request's session inside a transaction of its own (see the module docstring)."""
        async with self._lock:
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
