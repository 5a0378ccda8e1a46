"""A page that is one list the API pages through: its first page, or the one after the
``?after=`` cursor its "more" link carries.

The administrators' lists of things to look at (run problems, flagged payments) are each a
query of one connection drawn by one template; this is what they share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from portals import graphql, rendering

#: Rows a page shows.
PAGE_SIZE = 50


async def listing(
    request: Request,
    query: str,
    field: str,
    template: str,
    name: str,
    path: str,
    fragment: str | None = None,
    variables: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """``query`` (taking ``$first`` and ``$after``, and any other ``variables``) run as the
    visitor, and its connection ``field`` drawn by ``template`` as ``name``, with the page's
    ``path`` for its links and whatever else ``context`` gives the template."""
    data = await graphql.execute(
        request,
        query,
        {
            **(variables or {}),
            "first": PAGE_SIZE,
            "after": request.query_params.get("after") or None,
        },
    )
    return rendering.render(
        request,
        template,
        {**(context or {}), name: data[field], "path": path},
        fragment=fragment,
        status_code=status_code,
    )
