"""Opaque global ids and Relay-style connections.

A global id is ``base64("Type:pk")``: clients treat it as opaque, and the type inside lets a
customer id given where an invoice id belongs answer "not found" instead of finding invoice
no. 12.  Lists page by keyset (``id < after``, newest first), which stays fast and stable
while rows are being added, unlike OFFSET paging.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry
from graphql import GraphQLError
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from billing.errors import NotFound
from resolvers.context import Info

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

NodeType = TypeVar("NodeType")


def _pack(kind: str, pk: int) -> str:
    return base64.b64encode(f"{kind}:{pk}".encode()).decode()


def _unpack(text: str, kind: str) -> int | None:
    """The key packed in ``text`` if it is ``kind:<digits>`` in base64, else None."""
    try:
        found, _, pk = base64.b64decode(text.encode(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    if found != kind or not pk.isascii() or not pk.isdigit() or len(pk) > 18:
        return None
    return int(pk)


def encode_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(_pack(type_name, pk))


def decode_id(global_id: str, type_name: str, field: str = "id") -> int:
    """The primary key inside ``global_id``; garbage or another type's id is NOT_FOUND."""
    pk = _unpack(global_id, type_name)
    if pk is None:
        raise NotFound(re.sub(r"(?<!^)(?=[A-Z])", " ", type_name).lower(), field)
    return pk


def decode_optional_id(global_id: str | None, type_name: str, field: str) -> int | None:
    """For optional id arguments and filters: ``None`` stays ``None``."""
    return None if global_id is None else decode_id(global_id, type_name, field)


def bad_argument(message: str, field: str) -> GraphQLError:
    """A top-level error for a malformed query argument (a client bug, not a user mistake)."""
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT", "field": field})


def _cursor_pk(cursor: str) -> int:
    pk = _unpack(cursor, "cursor")
    if pk is None:
        raise bad_argument("after is not a cursor from this API", "after")
    return pk


def page_size(first: int | None, maximum: int = MAX_PAGE_SIZE) -> int:
    """``first`` checked against the page limit (a top-level error when out of range)."""
    size = DEFAULT_PAGE_SIZE if first is None else first
    if not 0 <= size <= maximum:
        raise bad_argument(f"first must be between 0 and {maximum}", "first")
    return size


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeType]):
    cursor: str
    node: NodeType


@strawberry.type
class Connection(Generic[NodeType]):
    """One page of a list, newest first."""

    edges: list[Edge[NodeType]]
    page_info: PageInfo
    count_query: strawberry.Private[Select[Any]]

    @strawberry.field(description="How many items the whole list has, across all pages.")
    async def total_count(self, info: Info) -> int:
        return int(await info.context.read(lambda session: session.scalar(self.count_query)) or 0)


async def paginate(
    info: Info,
    query: Select[Any],
    id_column: InstrumentedAttribute[int],
    first: int | None,
    after: str | None,
    to_node: Callable[[Any], NodeType],
    *,
    whole_rows: bool = False,
) -> Connection[NodeType]:
    """Run ``query`` (one entity per row) as a keyset page ordered by ``id_column`` descending.

    One row more than asked is fetched to know whether a next page exists; the total count
    is a separate query, run only when ``totalCount`` is selected.  With ``whole_rows`` the
    query selects columns rather than an entity (an aggregate beside them, say), and
    ``to_node`` gets each whole row, which must have an ``id`` column.
    """
    size = page_size(first)
    count_query = select(func.count()).select_from(query.order_by(None).subquery())
    page = query.order_by(id_column.desc()).limit(size + 1)
    if after is not None:
        page = page.where(id_column < _cursor_pk(after))

    async def fetch(session: AsyncSession) -> Sequence[Any]:
        rows: Sequence[Any] = (
            (await session.execute(page)).all()
            if whole_rows
            else (await session.scalars(page)).all()
        )
        return rows

    rows = await info.context.read(fetch)
    has_next = len(rows) > size
    rows = rows[:size]
    edges = [Edge(cursor=_pack("cursor", row.id), node=to_node(row)) for row in rows]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_next,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        count_query=count_query,
    )
